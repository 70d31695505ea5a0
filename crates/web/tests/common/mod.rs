//! What the UI's tests share: a real server with the UI over an in-memory SQLite store, and
//! the check of vendored files against their recorded digests.

#![allow(dead_code)]

pub mod browser;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crashscope_rules::RuleFile;
use crashscope_server::{Config, Running, Tokens};
use crashscope_store::SqlStore;
use sha2::{Digest as _, Sha256};

/// A server with the UI on a free port, accepting `tokens` (a token file's text); its base
/// URL and store.
pub async fn start(tokens: &str) -> (Running, String, Arc<SqlStore>) {
    let (srv, base, store, _) = start_with_dir(tokens).await;
    (srv, base, store)
}

/// [`start`], and the server's data directory.
pub async fn start_with_dir(tokens: &str) -> (Running, String, Arc<SqlStore>, std::path::PathBuf) {
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    let dir = tempfile::tempdir().unwrap().keep();
    let srv = crashscope_server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: store.clone(),
        tokens: Tokens::parse("test", tokens).unwrap(),
        rules: RuleFile::parse("no rules", "rules: []\n").unwrap(),
        channels: vec![],
        interval: Duration::from_secs(3600),
        data_dir: dir.clone(),
        tls: None,
        limits: Default::default(),
        ui: Some(crashscope_web::router),
        clusters: Vec::new(),
    })
    .await
    .unwrap();
    let base = format!("http://{}", srv.addr);
    (srv, base, store, dir)
}

/// Posts a custom event through the API.
pub async fn post_event(base: &str, token: &str, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Every file of `dir` is listed in its `SHA256SUMS` with its digest (READMEs and licences
/// aside).
pub fn check_digests(dir: &Path) {
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line.split_once("  ").unwrap();
        let got: String = Sha256::digest(std::fs::read(dir.join(name)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            got, want,
            "{name} is not the file its digest was recorded for"
        );
        listed.push(name.to_string());
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let doc = name == "SHA256SUMS" || name == "README.md" || name.starts_with("LICENSE");
        assert!(
            doc || listed.contains(&name),
            "{name} has no recorded digest"
        );
    }
}

/// A pod of Deployment `web` whose container exited 1 four times and is in back-off.
pub fn crashing_pod() -> serde_json::Value {
    let now = jiff::Timestamp::now();
    let before = now - jiff::SignedDuration::from_secs(20);
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d9c", "namespace": "shop", "uid": "u-1",
                     "creationTimestamp": (now - jiff::SignedDuration::from_secs(300)).to_string()},
        "spec": {"containers": [{"name": "app", "image": "shop/web:1.4.2",
                                 "command": ["/bin/web", "--config", "/etc/web/config.yaml"]}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "shop/web:1.4.2", "imageID": "", "ready": false,
            "restartCount": 4, "started": false,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                      "message": "back-off 1m20s restarting failed container=app pod=web-7d9c_shop(u-1)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                          "startedAt": before.to_string(), "finishedAt": now.to_string()}}
        }]}
    })
}

/// Stores [`crashing_pod`] as the local runtime does: its object and its state.
pub async fn store_crashing_pod(store: &SqlStore) -> crashscope_model::PodState {
    use crashscope_store::Store as _;
    let pod = crashing_pod();
    store
        .put_object("Pod", "shop", "web-7d9c", &pod)
        .await
        .unwrap();
    let kube: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
    let state = crashscope_model::PodState::from_pod(&kube);
    store
        .record_pod(jiff::Timestamp::now(), &state)
        .await
        .unwrap();
    state
}

/// Uploads the fixture `sample.scap` as pod shop/web-1's capture, as a node agent does; its id.
pub async fn upload_sample(base: &str, token: &str) -> i64 {
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scap/sample.scap"
    ))
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/captures?namespace=shop&pod=web-1&container=web&from=2026-11-28T10:00:00Z&to=2026-11-28T10:00:35Z"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(sample)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// A restart alert of `workload` in namespace shop, about two pods.
pub fn alert(
    group: &str,
    workload: &str,
    state: crashscope_model::alert::AlertPhase,
) -> crashscope_store::AlertRecord {
    let now = jiff::Timestamp::now();
    crashscope_store::AlertRecord {
        id: 0,
        rule: "PodRestartingFrequently".into(),
        group_key: group.into(),
        state,
        severity: crashscope_model::Severity::Error,
        labels: [
            ("namespace", "shop"),
            ("workload", workload),
            ("pods", "web-7d9c,web-8e1f"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        summary: format!("{workload} restarted 4 times within 15m"),
        value: 4.0,
        active_since: now,
        fired_at: Some(now),
        resolved_at: None,
        last_notified_at: None,
        updated_at: now,
    }
}
