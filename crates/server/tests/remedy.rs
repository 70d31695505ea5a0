//! The rollback action against a store as the local runtime leaves it (applied Deployment,
//! its ReplicaSets by revision, its pods): a dry run says what it would do and changes
//! nothing; a real one puts revision 1's template back; a previous revision that crashed
//! too is left alone — each with its event on the feed. And against a watched cluster (an
//! API server in kube's mock-service style: none can run here): the revisions read from its
//! ReplicaSets, kubectl's JSON patch sent, a refusal left on the feed as `RollbackFailed`
//! naming the role to grant.

use crashscope_local::history;
use crashscope_local::runtime::applied_kind;
use crashscope_model::change::Change;
use crashscope_model::Catalog;
use crashscope_rules::rule::RollbackAction;
use crashscope_server::remedy::{ClusterClient, Remedy, Target};
use crashscope_store::{Ingest, SqlStore, Store};
use jiff::Timestamp;
use serde_json::json;
use std::time::Duration;

fn template(command: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", command]}]}})
}

fn target() -> Target<'static> {
    Target {
        cluster: None,
        namespace: "shop",
        deployment: "web",
    }
}

async fn store(old_restarts: i32, now: Timestamp) -> SqlStore {
    let store = SqlStore::in_memory().await.unwrap();
    applied(&store, now).await;
    pods(&store, old_restarts, now).await;
    store
}

/// The Deployment and its ReplicaSets as the local runtime keeps them.
async fn applied(store: &SqlStore, now: Timestamp) {
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d-1", "annotations": {"kubernetes.io/change-cause": "v2"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("exit 1")}});
    store
        .put_object(&applied_kind("Deployment"), "shop", "web", &d)
        .await
        .unwrap();
    let hour_ago = now
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let minute_ago = now
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    for (rev, hash, command, created) in [
        (1, "h1", "sleep 3600", hour_ago),
        (2, "h2", "exit 1", minute_ago),
    ] {
        let mut t = template(command);
        t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "namespace": "shop",
                "creationTimestamp": created.to_string(),
                "labels": {"app": "web", "pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": rev.to_string(),
                                "kubernetes.io/change-cause": format!("v{rev}")},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "d-1", "controller": true}]},
            "spec": {"replicas": 1, "template": t}});
        store
            .put_object("ReplicaSet", "shop", &format!("web-{hash}"), &rs)
            .await
            .unwrap();
    }
}

/// Revision 1's pod (started an hour ago, `old_restarts` restarts) and revision 2's (a
/// minute ago, crash-looping).
async fn pods(store: &SqlStore, old_restarts: i32, now: Timestamp) {
    let hour_ago = now
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let minute_ago = now
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    let mut ingest = Ingest::new(store, Catalog::builtin()).keeping_pods();
    for (name, hash, restarts, created) in [
        ("web-h1-aaaaa", "h1", old_restarts, hour_ago),
        ("web-h2-bbbbb", "h2", 5, minute_ago),
    ] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": name,
                "creationTimestamp": created.to_string(),
                "labels": {"app": "web", "pod-template-hash": hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("web-{hash}"),
                                     "uid": hash, "controller": true}]},
            "spec": {"containers": [{"name": "web", "image": "busybox"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "web", "image": "busybox",
                "imageID": "", "ready": restarts == 0, "restartCount": restarts,
                "state": {"running": {"startedAt": created.to_string()}}}]}});
        ingest
            .record(Change::Pod(Box::new(serde_json::from_value(pod).unwrap())))
            .await
            .unwrap();
    }
}

fn action(dry_run: bool) -> RollbackAction {
    RollbackAction {
        namespaces: ["shop".to_string()].into(),
        window: Duration::from_secs(900),
        healthy_for: Duration::from_secs(600),
        dry_run,
    }
}

async fn command_of(store: &SqlStore) -> serde_json::Value {
    let d = history::applied(store, "shop", "web").await.unwrap();
    serde_json::to_value(d.spec.unwrap().template).unwrap()["spec"]["containers"][0]["command"][2]
        .clone()
}

#[tokio::test]
async fn a_dry_run_changes_nothing_a_real_one_goes_back_and_a_crashed_revision_is_left_alone() {
    let now = Timestamp::now();
    let began = now
        .checked_sub(jiff::SignedDuration::from_secs(30))
        .unwrap();
    let crashing = ["web-h2-bbbbb".to_string()];

    let s = store(0, now).await;
    let r = Remedy {
        store: &s,
        clusters: &[],
    };
    let ev = r
        .rollback("Restarts", &action(true), target(), &crashing, began, now)
        .await
        .unwrap();
    assert_eq!(ev.reason, "RolledBack");
    assert!(
        ev.message
            .starts_with("Dry run: would roll back deployment web from revision 2 to 1"),
        "{}",
        ev.message
    );
    assert_eq!(command_of(&s).await, "exit 1");

    let ev = r
        .rollback("Restarts", &action(false), target(), &crashing, began, now)
        .await
        .unwrap();
    assert!(
        ev.message.starts_with(
            "Rolled back deployment web from revision 2 to 1 (rule Restarts): the crash loop began"
        ),
        "{}",
        ev.message
    );
    assert_eq!(command_of(&s).await, "sleep 3600");
    let feed = s
        .events(&crashscope_store::EventQuery::default())
        .await
        .unwrap();
    assert_eq!(
        feed.iter()
            .filter(|e| e.event.reason == "RolledBack")
            .count(),
        2
    );

    // Revision 1 restarted too: going back would not help.
    let s = store(3, now).await;
    let ev = Remedy {
        store: &s,
        clusters: &[],
    }
    .rollback("Restarts", &action(false), target(), &crashing, began, now)
    .await
    .unwrap();
    assert_eq!(ev.reason, "RollbackSkipped");
    assert!(
        ev.message.contains("revision 1 crashed too"),
        "{}",
        ev.message
    );
    assert_eq!(command_of(&s).await, "exit 1");
}

/// Requests the mock API server saw: "METHOD path content-type body".
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// An API server with Deployment shop/web at revision 2 (revision 1 an hour old); its
/// PATCH answers 403 once `forbid` is set.
async fn api_server(
    now: Timestamp,
    forbid: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, Seen) {
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;
    let seen: Seen = Default::default();
    let hour_ago = now
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let minute_ago = now
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d-1", "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("exit 1")}});
    let rs = |rev: u64, hash: &str, command: &str, created: Timestamp| {
        let mut t = template(command);
        t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "namespace": "shop",
                "creationTimestamp": created.to_string(),
                "labels": {"app": "web", "pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": rev.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "d-1", "controller": true}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
                     "template": t}})
    };
    let sets = json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
        "items": [rs(1, "h1", "sleep 3600", hour_ago), rs(2, "h2", "exit 1", minute_ago)]});
    let state = (seen.clone(), forbid, deployment, sets);
    type St = (
        Seen,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        serde_json::Value,
        serde_json::Value,
    );
    async fn answer(
        State((seen, forbid, d, sets)): State<St>,
        req: Request,
    ) -> axum::response::Response {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let ctype = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        seen.lock().unwrap().push(format!(
            "{method} {path} {ctype} {}",
            String::from_utf8_lossy(&body)
        ));
        match (method.as_str(), path.as_str()) {
            ("GET", "/apis/apps/v1/namespaces/shop/deployments/web") => {
                axum::Json(d).into_response()
            }
            ("GET", "/apis/apps/v1/namespaces/shop/replicasets") => {
                axum::Json(sets).into_response()
            }
            ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web")
                if forbid.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:crashscope:crashscope\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"",
                    "reason": "Forbidden", "code": 403});
                (axum::http::StatusCode::FORBIDDEN, axum::Json(status)).into_response()
            }
            ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web") => {
                axum::Json(d).into_response()
            }
            _ => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn in_a_watched_cluster_the_rollback_sends_kubectls_patch_and_a_refusal_is_on_the_feed() {
    let now = Timestamp::now();
    let began = now
        .checked_sub(jiff::SignedDuration::from_secs(30))
        .unwrap();
    let crashing = ["web-h2-bbbbb".to_string()];
    let forbid = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (url, seen) = api_server(now, forbid.clone()).await;
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let clusters = [ClusterClient { name: None, client }];
    // The store has the cluster's pods (as the watcher records them), no local Deployment.
    let s = SqlStore::in_memory().await.unwrap();
    pods(&s, 0, now).await;
    let r = Remedy {
        store: &s,
        clusters: &clusters,
    };
    let ev = r
        .rollback("Restarts", &action(false), target(), &crashing, began, now)
        .await
        .unwrap();
    assert_eq!(ev.reason, "RolledBack", "{}", ev.message);
    assert!(
        ev.message
            .starts_with("Rolled back deployment web from revision 2 to 1"),
        "{}",
        ev.message
    );
    let patches: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("PATCH "))
        .cloned()
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(
        patches[0].starts_with(
            "PATCH /apis/apps/v1/namespaces/shop/deployments/web application/json-patch+json ["
        ),
        "{}",
        patches[0]
    );
    // Revision 1's template goes back, without its pod-template-hash.
    let body: serde_json::Value =
        serde_json::from_str(patches[0].splitn(4, ' ').nth(3).unwrap()).unwrap();
    let template = body
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["path"] == "/spec/template")
        .unwrap();
    assert_eq!(
        template["value"]["spec"]["containers"][0]["command"][2],
        "sleep 3600"
    );
    assert!(template["value"]["metadata"]["labels"]
        .get("pod-template-hash")
        .is_none());

    // The cluster refuses: the feed says so, and which role would allow it.
    forbid.store(true, std::sync::atomic::Ordering::SeqCst);
    let ev = r
        .rollback("Restarts", &action(false), target(), &crashing, began, now)
        .await
        .unwrap();
    assert_eq!(ev.reason, "RollbackFailed");
    assert!(ev.message.contains("is forbidden"), "{}", ev.message);
    assert!(
        ev.message.contains("ClusterRole crashscope-rollback"),
        "{}",
        ev.message
    );
    let feed = s
        .events(&crashscope_store::EventQuery::default())
        .await
        .unwrap();
    assert!(feed.iter().any(|e| e.event.reason == "RollbackFailed"));

    // A named cluster the server does not watch: nothing to act on, said so.
    let elsewhere = Target {
        cluster: Some("east"),
        ..target()
    };
    let ev = r
        .rollback("Restarts", &action(false), elsewhere, &crashing, began, now)
        .await
        .unwrap();
    assert_eq!(ev.reason, "RollbackSkipped", "{}", ev.message);
}
