//! The one ingest writer, as the local runtime and `ingest` use it: pod objects kept and
//! removed by uid, restart samples and event counts tallied, events without a time skipped.

use crashscope_model::change::Change;
use crashscope_model::Catalog;
use crashscope_store::testing::stores;
use crashscope_store::{Ingest, Store};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};

fn pod(uid: &str, restarts: i32) -> Box<Pod> {
    Box::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": "nginx", "imageID": "", "ready": false,
                "restartCount": restarts, "state": {"waiting": {"reason": "CrashLoopBackOff"}}
            }]}
        }))
        .unwrap(),
    )
}

fn event(last: Option<&str>) -> Box<KubeEvent> {
    Box::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container",
            "count": 1, "firstTimestamp": last, "lastTimestamp": last,
        }))
        .unwrap(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn kept_pods_leave_only_when_no_newer_pod_took_the_name() {
    rt().block_on(async {
        for (backend, store) in stores().await {
            let at: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
            let mut ingest = Ingest::new(&store, Catalog::builtin())
                .keeping_pods()
                .at(at);
            ingest.record(Change::Pod(pod("old", 0))).await.unwrap();
            ingest.record(Change::Pod(pod("new", 2))).await.unwrap();
            // The old pod's deletion arrives after the new one took the name: it stays.
            ingest
                .record(Change::PodDeleted(pod("old", 0)))
                .await
                .unwrap();
            let kept = store.objects("Pod").await.unwrap();
            assert_eq!(kept.len(), 1, "{backend}");
            assert_eq!(kept[0]["metadata"]["uid"], "new", "{backend}");
            ingest
                .record(Change::PodDeleted(pod("new", 2)))
                .await
                .unwrap();
            assert!(store.objects("Pod").await.unwrap().is_empty(), "{backend}");

            ingest
                .record(Change::Event(event(Some("2026-12-01T10:00:00Z"))))
                .await
                .unwrap();
            ingest.record(Change::Event(event(None))).await.unwrap();
            let t = ingest.tally;
            assert_eq!((t.pods, t.events), (2, 2), "{backend}");
            assert_eq!((t.events_new, t.events_skipped), (1, 1), "{backend}");
            assert!(t.samples >= 2, "{backend}: {t:?}");
        }
    });
}

#[test]
fn a_source_without_kept_pods_stores_states_only() {
    rt().block_on(async {
        for (backend, store) in stores().await {
            let mut ingest = Ingest::new(&store, Catalog::builtin());
            let feed = ingest.record(Change::Pod(pod("a", 1))).await.unwrap();
            // A first sighting is history, not news.
            assert!(feed.is_empty(), "{backend}");
            let feed = ingest.record(Change::Pod(pod("a", 2))).await.unwrap();
            assert_eq!(feed.len(), 1, "{backend}: a restart is news");
            assert!(store.objects("Pod").await.unwrap().is_empty(), "{backend}");
        }
    });
}
