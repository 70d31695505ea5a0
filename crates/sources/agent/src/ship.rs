//! What the agent exchanges with the server — captures sent (with what they cover and the
//! request they fulfil), capture requests read — and the retention of captures kept on
//! the node.

use std::path::Path;

use crashscope_model::capture::{ContainerRef, RequestState, WrittenCapture};
use crashscope_store::{CaptureRecord, CaptureRequest};

use crate::AgentError;

type Result<T> = std::result::Result<T, AgentError>;

/// The crashscope server, as an agent talks to it.
pub struct Server {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// The cluster the captures come from.
    cluster: Option<String>,
}

/// Why a capture was taken, for the server's index.
pub struct Taken<'a> {
    pub who: &'a ContainerRef,
    pub capture: &'a WrittenCapture,
    pub reason: &'a str,
    pub request: Option<i64>,
    pub node: &'a str,
}

impl Server {
    pub fn new(base: &str, token: Option<String>, cluster: Option<String>) -> Result<Server> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            // The server closes a connection idle for its --header-timeout (10 s by default);
            // dropping ours sooner means a request never races that close.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(AgentError::Client)?;
        Ok(Server {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            cluster,
        })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a capture file; the server stores and indexes it and answers with its entry.
    pub async fn send(&self, t: &Taken<'_>) -> Result<CaptureRecord> {
        let c = t.capture;
        let body = tokio::fs::read(&c.path)
            .await
            .map_err(|source| AgentError::Read {
                path: c.path.clone(),
                source,
            })?;
        let mut query = vec![
            ("namespace", t.who.namespace.clone()),
            ("pod", t.who.pod.clone()),
            ("container", t.who.container.clone()),
            ("restart", t.who.instance.to_string()),
            ("from", c.from.to_string()),
            ("to", c.to.to_string()),
            ("events", c.events.to_string()),
            ("drops", c.drops.to_string()),
            ("reason", t.reason.to_string()),
            ("node", t.node.to_string()),
        ];
        if let Some(r) = t.request {
            query.push(("request", r.to_string()));
        }
        if let Some(c) = &self.cluster {
            query.push(("cluster", c.clone()));
        }
        let url = format!("{}/api/v1/captures", self.base);
        let req = self
            .http
            .post(&url)
            .query(&query)
            .header("content-type", "application/octet-stream")
            .body(body);
        self.call(req, &url)
            .await?
            .json()
            .await
            .map_err(|source| AgentError::Answer {
                what: "the server's answer to a capture is not its index entry".into(),
                source,
            })
    }

    /// Sends a request, answering with its response when the status is a success.
    async fn call(&self, req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response> {
        let resp = self
            .auth(req)
            .send()
            .await
            .map_err(|source| AgentError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(AgentError::Refused {
                url: url.to_string(),
                status: status.to_string(),
                body,
            });
        }
        Ok(resp)
    }

    /// Tells the server a request could not be fulfilled.
    pub async fn give_up(&self, request: i64) -> Result<()> {
        self.set_state(request, RequestState::Failed).await
    }

    /// Takes a request, so that the server shows it being taken.
    pub async fn claim(&self, request: i64) -> Result<()> {
        self.set_state(request, RequestState::Taking).await
    }

    async fn set_state(&self, request: i64, state: RequestState) -> Result<()> {
        let url = format!("{}/api/v1/capture-requests/{request}", self.base);
        let req = self
            .http
            .patch(&url)
            .json(&serde_json::json!({ "state": state }));
        self.call(req, &url).await.map(drop)
    }

    /// Capture requests no agent has taken, newer than `after`; the server holds the
    /// question up to `wait` until one is made.
    pub async fn open_requests(
        &self,
        after: Option<i64>,
        wait: std::time::Duration,
    ) -> Result<Vec<CaptureRequest>> {
        let mut url = format!(
            "{}/api/v1/capture-requests?state=requested&wait={}s",
            self.base,
            wait.as_secs()
        );
        if let Some(a) = after {
            url.push_str(&format!("&after={a}"));
        }
        let resp = self.call(self.http.get(&url), &url).await?;
        #[derive(serde::Deserialize)]
        struct Items {
            items: Vec<CaptureRequest>,
        }
        let items = resp
            .json::<Items>()
            .await
            .map_err(|source| AgentError::Answer { what: url, source })?;
        Ok(items.items)
    }
}

/// Deletes the oldest captures in `dir` beyond the newest `keep`; returns how many went.
pub fn retain(dir: &Path, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "scap"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    files
        .iter()
        .take(excess)
        .filter(|(_, p)| std::fs::remove_file(p).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_captures_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            let p = dir.path().join(format!("c{i}.scap"));
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        assert_eq!(retain(dir.path(), 2), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["c3.scap", "c4.scap", "notes.txt"]);
        assert_eq!(retain(&dir.path().join("missing"), 1), 0);
    }
}
