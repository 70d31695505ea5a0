//! The rollback action against a store as the local runtime leaves it (applied Deployment,
//! its ReplicaSets by revision, its pods): a dry run says what it would do and changes
//! nothing; a real one puts revision 1's template back; a previous revision that crashed
//! too is left alone — each with its event on the feed.

use crashscope_local::history;
use crashscope_local::runtime::applied_kind;
use crashscope_model::change::Change;
use crashscope_model::Catalog;
use crashscope_rules::rule::RollbackAction;
use crashscope_server::remedy::Remedy;
use crashscope_store::{Ingest, SqlStore, Store};
use jiff::Timestamp;
use serde_json::json;
use std::time::Duration;

fn template(command: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", command]}]}})
}

async fn store(old_restarts: i32, now: Timestamp) -> SqlStore {
    let store = SqlStore::in_memory().await.unwrap();
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
    let mut ingest = Ingest::new(&store, Catalog::builtin()).keeping_pods();
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
    store
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
    let r = Remedy { store: &s };
    let ev = r
        .rollback(
            "Restarts",
            &action(true),
            ("shop", "web"),
            &crashing,
            began,
            now,
        )
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
        .rollback(
            "Restarts",
            &action(false),
            ("shop", "web"),
            &crashing,
            began,
            now,
        )
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
    let ev = Remedy { store: &s }
        .rollback(
            "Restarts",
            &action(false),
            ("shop", "web"),
            &crashing,
            began,
            now,
        )
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
