//! The server's records on both backends: alert episodes updated in place, silences that
//! expire, capture requests, the capture index, custom events stored once per idempotency key,
//! and the event feed's cursor.

use std::collections::BTreeMap;

use crashscope_model::alert::AlertPhase;
use crashscope_model::capture::{RequestEvent, RequestState};
use crashscope_model::{Event, EventType, Scope, Severity};
use crashscope_store::testing::stores;
use crashscope_store::{AlertRecord, CaptureRecord, Cursor, EventQuery, SqlStore, Store};
use jiff::Timestamp;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn custom(name: &str, at: i64) -> Event {
    Event {
        source: "jenkins".into(),
        reporter: None,
        reason: name.into(),
        message: format!("{name} by CI"),
        event_type: EventType::Normal,
        severity: Severity::Info,
        scope: Scope {
            namespace: Some("default".into()),
            ..Scope::default()
        },
        involved: None,
        count: 1,
        first_seen: t(at),
        last_seen: t(at),
        source_id: None,
        tags: BTreeMap::from([("version".to_string(), "1.4.2".to_string())]),
    }
}

#[test]
fn alerts_are_episodes_updated_in_place() {
    rt().block_on(async {
        for (backend, store) in stores().await {
            let mut a = AlertRecord {
                id: 0,
                rule: "PodRestartingFrequently".into(),
                group_key: "default/deployment/nginx".into(),
                state: AlertPhase::Firing,
                severity: Severity::Error,
                labels: BTreeMap::from([("namespace".to_string(), "default".to_string())]),
                summary: "nginx restarted 3 times".into(),
                value: 3.0,
                active_since: t(100),
                fired_at: Some(t(100)),
                resolved_at: None,
                last_notified_at: Some(t(100)),
                updated_at: t(100),
            };
            let id = store.save_alert(&a).await.unwrap();
            a.state = AlertPhase::Resolved;
            a.resolved_at = Some(t(400));
            a.updated_at = t(400);
            assert_eq!(store.save_alert(&a).await.unwrap(), id, "{backend}");
            let firing = store.alerts(Some(AlertPhase::Firing), 10).await.unwrap();
            assert!(firing.is_empty(), "{backend}");
            let all = store.alerts(None, 10).await.unwrap();
            assert_eq!(all.len(), 1, "{backend}");
            assert_eq!(all[0].resolved_at, Some(t(400)), "{backend}");
            assert_eq!(all[0].value, 3.0, "{backend}");
        }
    });
}

#[test]
fn silences_requests_and_captures() {
    rt().block_on(async {
        for (backend, store) in stores().await {
            let m = serde_json::json!([{"name": "namespace", "value": "default"}]);
            let s = store
                .add_silence(&m, "deploying", "ops", t(0), t(1000))
                .await
                .unwrap();
            assert_eq!(store.silences(t(10)).await.unwrap().len(), 1, "{backend}");
            assert!(store.expire_silence(s.id, t(20)).await.unwrap());
            assert!(store.silences(t(30)).await.unwrap().is_empty(), "{backend}");
            assert!(
                !store.expire_silence(s.id, t(40)).await.unwrap(),
                "{backend}"
            );

            let r = store
                .request_capture(Some(7), "default", "nginx-1", None, 10_000, t(50))
                .await
                .unwrap();
            assert_eq!(r.state, RequestState::Requested);
            let open = store
                .capture_requests(Some(RequestState::Requested))
                .await
                .unwrap();
            assert_eq!(open.len(), 1, "{backend}");
            assert_eq!(open[0].alert_id, Some(7));
            // Claimed once, fulfilled by one capture per container, and no step back.
            let moved = |event, capture| store.move_capture_request(r.id, event, capture, t(60));
            let m = moved(RequestEvent::Claimed, None).await.unwrap().unwrap();
            assert_eq!(m.state, RequestState::Taking, "{backend}");
            assert!(
                moved(RequestEvent::Claimed, None).await.is_err(),
                "{backend}"
            );
            moved(RequestEvent::Captured, Some("/c/a.scap"))
                .await
                .unwrap();
            let m = moved(RequestEvent::Captured, Some("/c/b.scap"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.state, RequestState::Taken, "{backend}");
            assert_eq!(
                m.capture.as_deref(),
                Some("/c/a.scap,/c/b.scap"),
                "{backend}"
            );
            let stored = store.capture_request(r.id).await.unwrap().unwrap();
            assert_eq!(stored, m, "{backend}");
            assert!(store
                .move_capture_request(r.id + 1000, RequestEvent::GaveUp, None, t(61))
                .await
                .unwrap()
                .is_none());

            let c = CaptureRecord {
                cluster: None,
                id: 0,
                path: "/data/captures/default_nginx_nginx_1.scap".into(),
                namespace: Some("default".into()),
                pod: Some("nginx-1".into()),
                container: Some("nginx".into()),
                restart: Some(1),
                window_from: t(10),
                window_to: t(45),
                bytes: 123_456,
                events: 900,
                drops: 0,
                reason: "crash".into(),
                created_at: t(46),
            };
            store.index_capture(&c).await.unwrap();
            store.index_capture(&c).await.unwrap();
            let listed = store.captures().await.unwrap();
            assert_eq!(listed.len(), 1, "{backend}: same path indexed once");
            assert_eq!(listed[0].bytes, 123_456);
        }
    });
}

#[test]
fn custom_events_are_stored_once_per_idempotency_key_and_paged() {
    rt().block_on(async {
        for (backend, store) in stores().await {
            let (first, created) = store
                .insert_custom_event(&custom("deploy", 100), Some("build-42"))
                .await
                .unwrap();
            assert!(created);
            let (again, created) = store
                .insert_custom_event(&custom("deploy", 100), Some("build-42"))
                .await
                .unwrap();
            assert!(!created, "{backend}: a retried POST is stored once");
            assert_eq!(again.id, first.id);
            assert_eq!(
                again.event.tags.get("version").map(String::as_str),
                Some("1.4.2")
            );
            // Without a key, two deploys with the same text are two events.
            for at in [200, 300, 400] {
                store
                    .insert_custom_event(&custom("deploy", at), None)
                    .await
                    .unwrap();
            }
            let page1 = store
                .events(&EventQuery {
                    limit: Some(2),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(page1.len(), 2);
            assert_eq!(page1[0].event.last_seen, t(400));
            let page2 = store
                .events(&EventQuery {
                    limit: Some(2),
                    before: Some(Cursor::after(&page1[1])),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            let times: Vec<i64> = page2
                .iter()
                .map(|e| e.event.last_seen.as_second())
                .collect();
            assert_eq!(times, [200, 100], "{backend}");
            let text = store
                .events(&EventQuery {
                    text: Some("BY ci".into()),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(text.len(), 4, "{backend}: text search is case-insensitive");
        }
    });
}

#[test]
fn the_feed_is_counted_by_field_over_its_filters() {
    use crashscope_model::scope::WorkloadRef;
    use crashscope_store::Facet;
    rt().block_on(async {
        for (backend, store) in stores().await {
            let mut n = 0;
            let mut put = |reason: &str, ns: &str, sev: Severity, workload: Option<&str>| {
                n += 1;
                let mut e = custom(reason, 1_000 + n);
                e.message = format!("{reason} {n}");
                e.severity = sev;
                e.scope.namespace = Some(ns.into());
                e.scope.workload = workload.map(|w| WorkloadRef {
                    kind: "Deployment".into(),
                    name: w.into(),
                });
                e
            };
            let events = [
                put("BackOff", "shop", Severity::Warning, Some("web")),
                put("BackOff", "shop", Severity::Warning, Some("web")),
                put("BackOff", "batch", Severity::Warning, None),
                put("Pulled", "shop", Severity::Info, Some("api")),
            ];
            for e in &events {
                store.upsert_event(e).await.unwrap();
            }
            let facet = |q: EventQuery, f: Facet, top: usize| {
                let store = &store;
                async move {
                    store
                        .event_sample(&q, top)
                        .await
                        .unwrap()
                        .counts
                        .into_iter()
                        .find(|(g, _)| *g == f)
                        .unwrap()
                        .1
                }
            };
            let all = EventQuery::default();
            assert_eq!(
                facet(all.clone(), Facet::Reason, 10).await,
                [("BackOff".to_string(), 3), ("Pulled".to_string(), 1)],
                "{backend}"
            );
            let shop = EventQuery {
                namespace: Some("shop".into()),
                ..EventQuery::default()
            };
            assert_eq!(
                facet(shop.clone(), Facet::Workload, 10).await,
                [
                    ("Deployment/web".to_string(), 2),
                    ("Deployment/api".to_string(), 1)
                ],
                "{backend}"
            );
            let warnings = EventQuery {
                min_severity: Some(Severity::Warning),
                ..EventQuery::default()
            };
            assert_eq!(
                facet(warnings, Facet::Namespace, 1).await,
                [("shop".to_string(), 2)],
                "{backend}: the top value only"
            );
            // No node was given: nothing to count, not a row of nulls.
            assert!(facet(all, Facet::Node, 10).await.is_empty());
        }
    });
}

/// Two server replicas (two store handles: the in-process lock does not span them) claiming
/// the same capture request at once: one claims it, the other is refused.
#[test]
fn a_request_claimed_through_two_replicas_at_once_goes_to_one() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("crashscope.db");
        let mut pairs = vec![(
            "sqlite",
            SqlStore::open(&sqlite).await.unwrap(),
            SqlStore::open(&sqlite).await.unwrap(),
        )];
        if let Some(url) = crashscope_store::testing::postgres_url().await {
            pairs.push((
                "postgres",
                SqlStore::connect(&url).await.unwrap(),
                SqlStore::connect(&url).await.unwrap(),
            ));
        }
        for (backend, a, b) in pairs {
            for round in 0..10 {
                let r = a
                    .request_capture(None, "default", &format!("p-{round}"), None, 1000, t(1))
                    .await
                    .unwrap();
                let (x, y) = tokio::join!(
                    a.move_capture_request(r.id, RequestEvent::Claimed, None, t(2)),
                    b.move_capture_request(r.id, RequestEvent::Claimed, None, t(2)),
                );
                let claimed = [x.is_ok(), y.is_ok()];
                assert_eq!(
                    claimed.iter().filter(|c| **c).count(),
                    1,
                    "{backend} round {round}: {claimed:?}"
                );
            }
        }
    });
}
