//! Helpers for the server's tests: a server on a free port over a given store, a webhook
//! receiver that records what it is sent, pods whose restart count rises.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use crashscope_model::PodState;
use crashscope_rules::RuleFile;
use crashscope_server::{ChannelConfig, Config, Running, Tokens};
use crashscope_store::SqlStore;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const READ_TOKEN: &str = "read-only-token-0123456789";

pub async fn server(store: Arc<SqlStore>, rules: &str, channels: Vec<ChannelConfig>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    crashscope_server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        store,
        tokens: Tokens::parse("test", &format!("{TOKEN}\n{READ_TOKEN} read\n")).unwrap(),
        rules: RuleFile::parse("test rules", rules).unwrap(),
        channels,
        interval: Duration::from_millis(100),
        data_dir: dir.keep(),
        tls: None,
        limits: Default::default(),
        ui: None,
        clusters: Vec::new(),
    })
    .await
    .unwrap()
}

/// What a receiver got: headers and body of each POST.
pub type Received = Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>;

/// An HTTP receiver on a free port that answers 200 to every POST and keeps it.
pub async fn receiver() -> (SocketAddr, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            keep.lock().unwrap().push((headers, v));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

/// Waits up to `secs` for `f` to find something in what was received.
pub async fn wait_for<T>(
    got: &Received,
    secs: u64,
    f: impl Fn(&[(HeaderMap, serde_json::Value)]) -> Option<T>,
) -> Option<T> {
    for _ in 0..secs * 20 {
        if let Some(v) = f(&got.lock().unwrap()) {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Pod `name` of Deployment `nginx` whose container has restarted `restarts` times, the last
/// time just now.
pub fn pod(name: &str, restarts: i32) -> PodState {
    let now = jiff::Timestamp::now().to_string();
    let last = if restarts > 0 {
        serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}})
    } else {
        serde_json::json!({})
    };
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": {"app": "nginx"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "nginx-7d9f6b8c5d", "uid": "rs", "controller": true}]},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "nginx", "image": "nginx", "imageID": "", "ready": false,
            "restartCount": restarts, "lastState": last,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    }))
    .unwrap();
    let mut state = PodState::from_pod(&p);
    // As the watcher records it once the ReplicaSet names its Deployment.
    state.owners.links.push(crashscope_model::OwnerLink {
        kind: "Deployment".into(),
        name: "nginx".into(),
        uid: None,
        inferred: false,
    });
    state
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET `url` with `token`, as JSON.
pub async fn get_json(url: impl reqwest::IntoUrl, token: &str) -> serde_json::Value {
    authed_get(url, token).await.json().await.unwrap()
}

async fn authed_get(url: impl reqwest::IntoUrl, token: &str) -> reqwest::Response {
    client().get(url).bearer_auth(token).send().await.unwrap()
}

/// GET `url` with `token`, as text (`/metrics`).
pub async fn get_text(url: impl reqwest::IntoUrl, token: &str) -> String {
    authed_get(url, token).await.text().await.unwrap()
}
