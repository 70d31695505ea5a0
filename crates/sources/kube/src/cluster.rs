//! One-shot reads from a cluster, for `get pods`, `describe pod`, `events` and `logs`
//! against the API server: the same objects kubectl reads, with errors an operator can act on.

use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

/// A read that failed, in words: what was asked and why the server refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(pub String);

/// Describes an API error the way kubectl would, naming what RBAC must grant on 403.
pub fn api_error(e: &kube::Error, verb: &str, resource: &str, ns: Option<&str>) -> String {
    let scope = match ns {
        Some(ns) => format!("in namespace {ns}"),
        None => "at cluster scope".into(),
    };
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "forbidden: crashscope may not {verb} {resource} {scope} (grant {verb} on \
             {resource}; deploy/rbac.yaml has the role): {}",
            s.message
        ),
        kube::Error::Api(s) if s.code == 401 => format!(
            "unauthorized: the credentials were refused (expired token or certificate?): {}",
            s.message
        ),
        kube::Error::Api(s) => format!("Error from server ({}): {}", s.reason, s.message),
        other => format!("cannot {verb} {resource} {scope}: {other}"),
    }
}

/// The API of `K` in one namespace, or across all.
pub(crate) fn namespaced<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Every page of a list (the server pages at 500, as kubectl asks).
async fn list_all<K>(
    api: &Api<K>,
    mut lp: ListParams,
    resource: &str,
    ns: Option<&str>,
) -> Result<Vec<K>, ClusterError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    lp = lp.limit(500);
    let mut out = Vec::new();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(|e| ClusterError(api_error(&e, "list", resource, ns)))?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return Ok(out),
        }
    }
}

/// Pods of a namespace (or all), optionally by label selector.
pub async fn pods(
    client: &Client,
    ns: Option<&str>,
    labels: Option<&str>,
) -> Result<Vec<Pod>, ClusterError> {
    let mut lp = ListParams::default();
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    list_all(&namespaced::<Pod>(client, ns), lp, "pods", ns).await
}

/// core/v1 Events of a namespace (or all).
pub async fn events(client: &Client, ns: Option<&str>) -> Result<Vec<KubeEvent>, ClusterError> {
    list_all(
        &namespaced::<KubeEvent>(client, ns),
        ListParams::default(),
        "events",
        ns,
    )
    .await
}

/// The events about one pod, selected by the server as `kubectl describe` does.
pub async fn pod_events(client: &Client, pod: &Pod) -> Result<Vec<KubeEvent>, ClusterError> {
    let ns = pod.namespace().unwrap_or_else(|| "default".into());
    let mut fields = format!(
        "involvedObject.name={},involvedObject.namespace={ns}",
        pod.name_any()
    );
    if let Some(uid) = pod.uid() {
        fields.push_str(&format!(",involvedObject.uid={uid}"));
    }
    list_all(
        &namespaced::<KubeEvent>(client, Some(&ns)),
        ListParams::default().fields(&fields),
        "events",
        Some(&ns),
    )
    .await
}

/// What `logs` should fetch.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    /// The instance before the last restart: what a crash-looping container printed.
    pub previous: bool,
    pub tail_lines: Option<i64>,
    /// Only lines written at or after this time.
    pub since_time: Option<jiff::Timestamp>,
    /// Each line starts with the time the runtime wrote it.
    pub timestamps: bool,
}

impl LogRequest {
    fn params(&self, follow: bool) -> LogParams {
        LogParams {
            container: self.container.clone(),
            previous: self.previous,
            tail_lines: self.tail_lines,
            since_time: self.since_time,
            timestamps: self.timestamps,
            follow,
            ..LogParams::default()
        }
    }

    fn error(&self, e: &kube::Error) -> ClusterError {
        ClusterError(match e {
            // The server's 400 says exactly what kubectl prints ("previous terminated
            // container ... not found").
            kube::Error::Api(s) if s.code == 400 || s.code == 404 => {
                format!("Error from server ({}): {}", s.reason, s.message)
            }
            other => api_error(other, "get", "pods/log", Some(&self.namespace)),
        })
    }

    /// The whole log.
    pub async fn fetch(&self, client: &Client) -> Result<String, ClusterError> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        api.logs(&self.pod, &self.params(false))
            .await
            .map_err(|e| self.error(&e))
    }

    /// The log as it grows, line by line (`logs -f`).
    pub async fn follow(
        &self,
        client: &Client,
    ) -> Result<impl Stream<Item = Result<String, ClusterError>> + use<>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let reader = api
            .log_stream(&self.pod, &self.params(true))
            .await
            .map_err(|e| self.error(&e))?;
        Ok(reader
            .lines()
            .map_err(|e| ClusterError(format!("log stream: {e}")))
            .boxed())
    }
}
