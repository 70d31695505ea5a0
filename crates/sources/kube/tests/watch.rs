//! The watcher against an API server played by a tower-test mock, in the style of kube's own
//! mock tests. No Kubernetes API server can run here: the initial pod list is the real one
//! recorded from a kind v1.34 cluster (shared/fixtures/k8s/api-replays-v1-34/pod-list.json);
//! what the recordings lack is scripted, shaped like the recorded objects — the coredns pod
//! going Running → Terminated(Error) → Waiting(CrashLoopBackOff) with rising restartCount,
//! a watch ended by an in-stream `410 Gone` that forces a relist, a BackOff Event updated in
//! place with a rising count, and a 403 on the list.

use std::path::Path;
use std::time::Duration;

use crashscope_kube::watch::{changes, Change, Selection};
use crashscope_model::Catalog;
use crashscope_store::{EventQuery, SqlStore, Store};
use crashscope_store::{Feed, Ingest};
use futures::StreamExt;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

const POD: &str = "coredns-66bc5c9577-2g8hl";

fn recorded(file: &str) -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/fixtures/k8s/api-replays-v1-34")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The recorded kube-system pod list, with coredns at `restarts` and the list at `rv`.
fn pod_list(restarts: u32, rv: &str) -> Value {
    let body = recorded("pod-list.json")[0]["response_body"]
        .as_str()
        .unwrap()
        .to_string();
    let mut list: Value = serde_json::from_str(&body).unwrap();
    list["metadata"]["resourceVersion"] = json!(rv);
    for item in list["items"].as_array_mut().unwrap() {
        if item["metadata"]["name"] == POD {
            *item = crashing(item.clone(), restarts, rv);
        }
    }
    list
}

/// The pod after `restarts` crashes: the last one terminated with Error, now backing off.
fn crashing(mut pod: Value, restarts: u32, rv: &str) -> Value {
    pod["metadata"]["resourceVersion"] = json!(rv);
    if restarts > 0 {
        let cs = &mut pod["status"]["containerStatuses"][0];
        cs["restartCount"] = json!(restarts);
        cs["ready"] = json!(false);
        cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
            "message": "back-off 10s restarting failed container=coredns"}});
        cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
            "startedAt": "2025-10-01T10:00:00Z", "finishedAt": format!("2025-10-01T10:0{restarts}:00Z")}});
    }
    pod
}

fn watch_line(kind: &str, mut obj: Value, api_version: &str, k: &str) -> String {
    obj["kind"] = json!(k);
    obj["apiVersion"] = json!(api_version);
    format!("{}\n", json!({"type": kind, "object": obj}))
}

/// The coredns pod of the recorded list after `restarts` crashes.
fn coredns(restarts: u32, rv: &str) -> Value {
    let list = pod_list(restarts, rv);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == POD)
        .unwrap()
        .clone()
}

fn pod_event(restarts: u32, rv: &str) -> String {
    watch_line("MODIFIED", coredns(restarts, rv), "v1", "Pod")
}

/// A BackOff Event for the coredns container, as the kubelet reports it.
fn backoff_event(count: u32, rv: &str) -> Value {
    json!({
        "metadata": {"name": format!("{POD}.18a2b3c4d5e6f708"), "namespace": "kube-system",
                     "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "resourceVersion": rv},
        "involvedObject": {"kind": "Pod", "namespace": "kube-system", "name": POD,
                           "uid": "f0b4a8b6-3c1f-4b8a-9d7e-2a1c0e5d6f70", "apiVersion": "v1",
                           "fieldPath": "spec.containers{coredns}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container coredns in pod coredns-66bc5c9577-2g8hl_kube-system(f0b4a8b6-3c1f-4b8a-9d7e-2a1c0e5d6f70)",
        "source": {"component": "kubelet", "host": "v1.34-control-plane"},
        "firstTimestamp": "2025-10-01T10:01:00Z",
        "lastTimestamp": format!("2025-10-01T10:0{count}:30Z"),
        "count": count,
        "type": "Warning",
        "reportingComponent": "kubelet",
        "reportingInstance": "v1.34-control-plane"
    })
}

/// An Event as events.k8s.io/v1 serves the same object.
fn as_v1(core: Value) -> Value {
    json!({
        "metadata": core["metadata"], "regarding": core["involvedObject"],
        "reason": core["reason"], "note": core["message"], "type": core["type"],
        "eventTime": null, "deprecatedCount": core["count"],
        "deprecatedFirstTimestamp": core["firstTimestamp"],
        "deprecatedLastTimestamp": core["lastTimestamp"], "deprecatedSource": core["source"],
        "reportingController": core["reportingComponent"],
        "reportingInstance": core["reportingInstance"]
    })
}

fn gone() -> String {
    format!(
        "{}\n",
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "too old resource version: 558 (600)",
            "reason": "Expired", "code": 410}})
    )
}

enum Reply {
    Body(u16, String),
    /// Leave the request open (a watch with nothing to say).
    Hold,
}

/// Serves requests with `route` until the client goes away; returns the requests seen.
fn serve(
    route: impl Fn(&str, &str, usize) -> Reply + Send + 'static,
) -> (kube::Client, tokio::task::JoinHandle<Vec<String>>) {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut held = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            seen.push(format!("{path}?{query}"));
            let n = seen.iter().filter(|s| s.starts_with(&path)).count();
            match route(&path, &query, n) {
                Reply::Body(code, body) => send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(body.into_bytes()))
                        .unwrap(),
                ),
                Reply::Hold => held.push(send),
            }
        }
        seen
    });
    (kube::Client::new(mock, "default"), task)
}

fn rv_of(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("resourceVersion="))
}

#[tokio::test]
async fn crash_loop_restarts_and_events_survive_a_410_relist_without_double_counting() {
    let (client, server) = serve(|path, query, _| {
        let watch = query.contains("watch=true");
        match (path, watch, rv_of(query)) {
            ("/api/v1/namespaces/kube-system/pods", false, _) => {
                // The first list is the recording; the relist after 410 sees one restart.
                let relist = !query.contains("continue") && RELISTED.swap(true, SeqCst);
                let list = if relist {
                    pod_list(1, "601")
                } else {
                    pod_list(0, "558")
                };
                Reply::Body(200, list.to_string())
            }
            ("/api/v1/namespaces/kube-system/pods", true, Some("558")) => {
                Reply::Body(200, format!("{}{}", pod_event(1, "600"), gone()))
            }
            ("/api/v1/namespaces/kube-system/pods", true, Some("601")) => {
                Reply::Body(200, pod_event(2, "602"))
            }
            ("/api/v1/namespaces/kube-system/events", false, _) => Reply::Body(
                200,
                json!({"kind": "EventList", "apiVersion": "v1",
                       "metadata": {"resourceVersion": "700"}, "items": [backoff_event(1, "690")]})
                .to_string(),
            ),
            // The same BackOff object through events.k8s.io/v1: it must not count twice.
            ("/apis/events.k8s.io/v1/namespaces/kube-system/events", false, _) => Reply::Body(
                200,
                json!({"kind": "EventList", "apiVersion": "events.k8s.io/v1",
                       "metadata": {"resourceVersion": "702"}, "items": [as_v1(backoff_event(3, "702"))]})
                .to_string(),
            ),
            ("/apis/apps/v1/namespaces/kube-system/deployments", false, _) => Reply::Body(
                200,
                recorded("deployment-list.json")[0]["response_body"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            ("/api/v1/namespaces/kube-system/events", true, Some("700")) => Reply::Body(
                200,
                format!(
                    "{}{}",
                    watch_line("MODIFIED", backoff_event(2, "701"), "v1", "Event"),
                    watch_line("MODIFIED", backoff_event(3, "702"), "v1", "Event")
                ),
            ),
            _ => Reply::Hold,
        }
    });
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    static RELISTED: AtomicBool = AtomicBool::new(false);

    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&dir.path().join("s.db")).await.unwrap();
    let mut rec = Ingest::new(&store, Catalog::builtin());
    let sel = Selection {
        namespace: Some("kube-system".into()),
        ..Selection::default()
    };
    let mut stream = Box::pin(changes(&client, &sel));
    let mut feed = Vec::new();
    let mut relists = 0;
    let mut synced = std::collections::HashSet::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(c) = stream.next().await {
            if matches!(c, Change::Relist("pods")) {
                relists += 1;
            }
            if let Change::Synced(r) = c {
                synced.insert(r);
            }
            feed.extend(rec.record(c).await.unwrap());
            let restarts = feed
                .iter()
                .filter(|f| matches!(f, Feed::Restart(_)))
                .count();
            let added: u32 = feed
                .iter()
                .map(|f| match f {
                    Feed::Event { added, .. } => *added,
                    _ => 0,
                })
                .sum();
            let lists_done = ["deployments", "events.events.k8s.io"]
                .iter()
                .all(|r| synced.contains(r));
            if restarts >= 2 && added >= 3 && lists_done {
                break;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "timed out; feed so far: {feed:#?}");
    drop(stream);
    drop(client);
    let requests = server.await.unwrap();

    // The 410 made the pod watcher list again.
    assert_eq!(relists, 2, "{requests:#?}");
    assert!(feed
        .iter()
        .any(|f| matches!(f, Feed::Warning { message } if message.contains("410 Gone"))));
    // Restarts 1 and 2 once each: the relist (restartCount 1 again) added no sample.
    let now = jiff::Timestamp::now();
    let samples: Vec<u32> = store
        .restart_samples(jiff::Timestamp::UNIX_EPOCH, now)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.pod == POD)
        .map(|s| s.restart_count)
        .collect();
    assert_eq!(samples, vec![0, 1, 2]);
    let restarts: Vec<_> = feed
        .iter()
        .filter_map(|f| match f {
            Feed::Restart(r) => Some((r.restart_count, r.last_exit_code, r.last_reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        restarts,
        vec![
            (1, Some(1), Some("Error".into())),
            (2, Some(1), Some("Error".into()))
        ]
    );
    // One BackOff occurrence whose count rose in place to 3 (the exporter-style loss of counts
    // does not happen), scoped to the pod's container.
    let events = store.events(&EventQuery::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.reason, "BackOff");
    assert_eq!(events[0].event.count, 3);
    // The recorded Deployment is in the store for the workload views.
    let deployments = store.objects("Deployment").await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["metadata"]["name"], "coredns");
    assert!(requests
        .iter()
        .any(|r| r.starts_with("/apis/events.k8s.io/v1/namespaces/kube-system/events")));
}

#[tokio::test]
async fn a_403_names_the_missing_permission() {
    let (client, server) = serve(|path, query, _| {
        if path.ends_with("/pods") && !query.contains("watch=true") {
            Reply::Body(
                403,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "pods is forbidden: User \"system:serviceaccount:default:crashscope\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\"",
                       "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
                .to_string(),
            )
        } else {
            Reply::Hold
        }
    });
    let sel = Selection {
        namespace: Some("kube-system".into()),
        ..Selection::default()
    };
    let mut stream = Box::pin(changes(&client, &sel));
    let msg = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Change::Error { message, .. }) = stream.next().await {
                return message;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        msg.starts_with("forbidden: crashscope may not list pods in namespace kube-system"),
        "{msg}"
    );
    assert!(
        msg.contains("deploy/rbac.yaml") && msg.contains("cannot list resource"),
        "{msg}"
    );
    drop(stream);
    drop(client);
    server.await.unwrap();
}

#[test]
fn the_shipped_role_grants_what_the_watcher_asks_for() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use serde::Deserialize;
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../deploy/rbac.yaml");
    let text = std::fs::read_to_string(p).unwrap();
    let role = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap())
        .find(|v| v["kind"] == "ClusterRole")
        .map(|v| serde_yaml_ng::from_value::<ClusterRole>(v).unwrap())
        .unwrap();
    let grants = |group: &str, resource: &str, verb: &str| {
        role.rules.iter().flatten().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (g, r) in [
        ("", "pods"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("", "nodes"),
        ("apps", "replicasets"),
        ("apps", "deployments"),
    ] {
        for v in ["get", "list", "watch"] {
            assert!(grants(g, r, v), "{v} {g}/{r}");
        }
    }
    assert!(grants("", "pods/log", "get"));
    // Read only: nothing that writes.
    assert!(!role.rules.iter().flatten().any(|r| r
        .verbs
        .iter()
        .any(|v| ["create", "update", "patch", "delete", "*"].contains(&v.as_str()))));
}

/// Pod, ReplicaSet and Node objects fed to the recorder as the watchers deliver them.
mod recorder {
    use super::*;

    fn rs(owner_kind: &str, owner_name: &str) -> Change {
        Change::ReplicaSet(Box::new(
            serde_json::from_value(json!({
                "metadata": {"name": "coredns-66bc5c9577", "namespace": "kube-system",
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": owner_kind,
                        "name": owner_name, "uid": "0f1e2d3c", "controller": true}]}
            }))
            .unwrap(),
        ))
    }

    fn recorded_pod(restarts: u32) -> Change {
        Change::Pod(Box::new(
            serde_json::from_value(coredns(restarts, "600")).unwrap(),
        ))
    }

    #[tokio::test]
    async fn the_replicaset_object_confirms_or_corrects_the_inferred_workload() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open(&dir.path().join("s.db")).await.unwrap();
        let mut rec = Ingest::new(&store, Catalog::builtin());
        // Before the ReplicaSet is known, the Deployment is inferred from the template hash.
        rec.record(recorded_pod(0)).await.unwrap();
        // The ReplicaSet says it belongs to an Argo Rollout, not a Deployment.
        rec.record(rs("Rollout", "coredns")).await.unwrap();
        let feed = rec.record(recorded_pod(1)).await.unwrap();
        assert!(
            matches!(&feed[..], [Feed::Restart(r)] if r.workload_kind.as_deref() == Some("Rollout"))
        );
        let history = store.pod_history("kube-system", POD).await.unwrap();
        let first = &history[0].1.owners.links;
        let last = &history.last().unwrap().1.owners.links;
        assert_eq!(
            (first[1].kind.as_str(), first[1].inferred),
            ("Deployment", true)
        );
        assert_eq!(
            (last[1].kind.as_str(), last[1].inferred),
            ("Rollout", false)
        );
        assert_eq!(last[1].uid.as_deref(), Some("0f1e2d3c"));
    }

    #[tokio::test]
    async fn a_node_going_not_ready_is_news_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open(&dir.path().join("s.db")).await.unwrap();
        let mut rec = Ingest::new(&store, Catalog::builtin());
        let node = |status: &str| {
            Change::Node(Box::new(
                serde_json::from_value(json!({
                    "metadata": {"name": "v1.34-control-plane"},
                    "status": {"conditions": [{"type": "Ready", "status": status,
                        "reason": if status == "True" { "KubeletReady" } else { "NodeStatusUnknown" }}]}
                }))
                .unwrap(),
            ))
        };
        assert!(rec.record(node("True")).await.unwrap().is_empty());
        let feed = rec.record(node("Unknown")).await.unwrap();
        assert!(
            matches!(&feed[..], [Feed::Node { ready: false, reason: Some(r), .. }] if r == "NodeStatusUnknown"),
            "{feed:?}"
        );
        assert!(rec.record(node("Unknown")).await.unwrap().is_empty());
        assert_eq!(store.objects("Node").await.unwrap().len(), 1);
    }
}
