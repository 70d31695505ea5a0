//! The store on SQLite (a real file) and on PostgreSQL: deduplication as the API server aggregates,
//! queries, pod history and restart samples, and reopening an existing store.

use crashscope_model::{Catalog, Event, PodState, Severity};
use crashscope_store::testing::stores;
use crashscope_store::{EventQuery, SqlStore, Store, Upsert};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};

fn kube_event(name: &str, reason: &str, count: i32, last: &str) -> Event {
    let ev: KubeEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-1", "uid": "u1",
                           "fieldPath": "spec.containers{nginx}"},
        "reason": reason, "type": "Warning",
        "message": format!("{reason} happened"),
        "count": count,
        "firstTimestamp": "2026-11-28T10:00:00Z", "lastTimestamp": last,
        "source": {"component": "kubelet", "host": "node-1"}
    }))
    .unwrap();
    Event::from_kube(&ev, &Catalog::builtin()).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn modified_event_with_higher_count_is_the_same_occurrence() {
    rt().block_on(async {
        for (_backend, store) in stores().await {
            let first = kube_event("e1", "BackOff", 1, "2026-11-28T10:00:00Z");
            let id = match store.upsert_event(&first).await.unwrap() {
                Upsert::Inserted { id } => id,
                other => panic!("{other:?}"),
            };
            // The watch replays the same object (e.g. after a relist): nothing new.
            assert_eq!(
                store.upsert_event(&first).await.unwrap(),
                Upsert::Unchanged { id }
            );
            // MODIFIED: the API server bumped count to 4.
            let bumped = kube_event("e1", "BackOff", 4, "2026-11-28T10:01:30Z");
            assert_eq!(
                store.upsert_event(&bumped).await.unwrap(),
                Upsert::Updated { id, added: 3 }
            );
            // A stale MODIFIED arriving late changes nothing.
            let stale = kube_event("e1", "BackOff", 2, "2026-11-28T10:00:30Z");
            assert_eq!(
                store.upsert_event(&stale).await.unwrap(),
                Upsert::Unchanged { id }
            );
            let all = store.events(&EventQuery::default()).await.unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(all[0].event.count, 4);
            assert_eq!(all[0].event.last_seen.to_string(), "2026-11-28T10:01:30Z");
            assert_eq!(all[0].event.first_seen.to_string(), "2026-11-28T10:00:00Z");
        }
    });
}

#[test]
fn a_new_event_object_for_the_same_occurrence_adds_to_the_count() {
    rt().block_on(async {
        for (_backend, store) in stores().await {
            store
                .upsert_event(&kube_event("e1", "BackOff", 5, "2026-11-28T10:05:00Z"))
                .await
                .unwrap();
            // The old Event object expired; the kubelet created a new one that counts from 1.
            let out = store
                .upsert_event(&kube_event("e2", "BackOff", 2, "2026-11-28T11:10:00Z"))
                .await
                .unwrap();
            assert!(matches!(out, Upsert::Updated { added: 2, .. }), "{out:?}");
            let all = store.events(&EventQuery::default()).await.unwrap();
            assert_eq!(all[0].event.count, 7);
        }
    });
}

#[test]
fn queries_filter_and_order_newest_first() {
    rt().block_on(async {
        for (_backend, store) in stores().await {
            store
                .upsert_event(&kube_event("a", "Pulled", 1, "2026-11-28T10:00:00Z"))
                .await
                .unwrap();
            store
                .upsert_event(&kube_event("b", "BackOff", 1, "2026-11-28T10:02:00Z"))
                .await
                .unwrap();
            store
                .upsert_event(&kube_event("c", "Started", 1, "2026-11-28T10:01:00Z"))
                .await
                .unwrap();
            let all = store.events(&EventQuery::default()).await.unwrap();
            let reasons: Vec<&str> = all.iter().map(|e| e.event.reason.as_str()).collect();
            assert_eq!(reasons, ["BackOff", "Started", "Pulled"]);
            let warnings = store
                .events(&EventQuery {
                    min_severity: Some(Severity::Warning),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].event.scope.container.as_deref(), Some("nginx"));
            let since: Timestamp = "2026-11-28T10:00:30Z".parse().unwrap();
            let recent = store
                .events(&EventQuery {
                    since: Some(since),
                    limit: Some(1),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(recent.len(), 1);
            assert_eq!(recent[0].event.reason, "BackOff");
            // Left out: a reason, and a column some events have no value in (kept).
            let without = store
                .events(&EventQuery {
                    excluded: vec![
                        (crashscope_store::Column::Reason, "BackOff".into()),
                        (crashscope_store::Column::Cluster, "east".into()),
                    ],
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            let reasons: Vec<&str> = without.iter().map(|e| e.event.reason.as_str()).collect();
            assert_eq!(reasons, ["Started", "Pulled"], "{_backend}");
        }
    });
}

fn pod(restarts: i32, waiting: &str) -> PodState {
    let p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx-7c5ddbdf54-x2x9q", "namespace": "default", "uid": "p1",
            "labels": {"pod-template-hash": "7c5ddbdf54"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "nginx-7c5ddbdf54", "uid": "rs", "controller": true}]},
        "spec": {"containers": [{"name": "nginx"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "nginx", "image": "nginx",
            "imageID": "", "ready": false, "restartCount": restarts,
            "state": {"waiting": {"reason": waiting}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "finishedAt": "2026-11-28T10:00:00Z"}}}]}
    }))
    .unwrap();
    PodState::from_pod(&p)
}

#[test]
fn pod_states_are_kept_when_they_change_and_restarts_are_sampled() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/crashscope.db");
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        {
            let store = SqlStore::open(&path).await.unwrap();
            let c = store
                .record_pod(t(0), &pod(1, "CrashLoopBackOff"))
                .await
                .unwrap();
            assert!(c.stored);
            assert_eq!(c.restarts.len(), 1, "first sight is a baseline sample");
            // Same state again: nothing stored.
            let c = store
                .record_pod(t(5), &pod(1, "CrashLoopBackOff"))
                .await
                .unwrap();
            assert!(!c.stored && c.restarts.is_empty());
            // Back-off over, container created: state changes, restart count does not.
            let c = store
                .record_pod(t(10), &pod(1, "ContainerCreating"))
                .await
                .unwrap();
            assert!(c.stored && c.restarts.is_empty());
            let c = store
                .record_pod(t(20), &pod(2, "CrashLoopBackOff"))
                .await
                .unwrap();
            assert_eq!(c.restarts.len(), 1);
            assert_eq!(c.restarts[0].restart_count, 2);
            assert_eq!(c.restarts[0].workload_name.as_deref(), Some("nginx"));
            assert_eq!(c.restarts[0].last_exit_code, Some(1));
        }
        // Reopening the file keeps everything and does not re-run migrations destructively.
        let store = SqlStore::open(&path).await.unwrap();
        let history = store
            .pod_history("default", "nginx-7c5ddbdf54-x2x9q")
            .await
            .unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].1.restarts(), 2);
        let samples = store.restart_samples(t(0), t(100)).await.unwrap();
        let counts: Vec<u32> = samples.iter().map(|s| s.restart_count).collect();
        assert_eq!(counts, [1, 2]);
        assert!(store
            .restart_samples(t(21), t(100))
            .await
            .unwrap()
            .is_empty());
    });
}

#[test]
fn unwritable_data_dir_is_a_clear_error() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let err = SqlStore::open(&file.join("sub/crashscope.db"))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("data directory") && err.contains("plain-file"),
            "{err}"
        );
        let not_db = dir.path().join("not-a-db");
        std::fs::write(
            &not_db,
            "this is not sqlite, just text that is long enough to matter",
        )
        .unwrap();
        let err = SqlStore::open(&not_db).await.err().unwrap().to_string();
        assert!(err.contains("not-a-db"), "{err}");
    });
}

#[test]
fn postgres_over_tls_when_the_url_asks_for_it() {
    rt().block_on(async {
        // Debian's PostgreSQL serves TLS with its snakeoil certificate: `sslmode=require`
        // encrypts without checking who signed it (verify-ca/verify-full check the system's
        // roots or `sslrootcert`).
        let Some(url) = crashscope_store::testing::postgres_url().await else {
            return;
        };
        let store = SqlStore::connect(&format!("{url}?sslmode=require"))
            .await
            .unwrap_or_else(|e| panic!("TLS connection: {e}"));
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(encrypted, "the connection is not encrypted");
        let ev = kube_event("e1", "BackOff", 1, "2026-11-28T10:00:00Z");
        assert!(matches!(
            store.upsert_event(&ev).await.unwrap(),
            Upsert::Inserted { .. }
        ));
    });
}

/// Commands started together on a data directory with no store yet (`crashscope run` and a
/// `get pods` polling it) all open it: one creates the schema, the others wait for it
/// instead of failing on a locked database or a half-made schema.
#[test]
fn processes_opening_a_new_store_at_once_all_get_it() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let path = dir.path().join(format!("data{round}/crashscope.db"));
        let opened: Vec<_> = rt.block_on(async {
            let tries = (0..6).map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqlStore::open(&path).await.map(|_| ()) })
            });
            futures::future::join_all(tries).await
        });
        for o in opened {
            if let Err(e) = o.unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}
