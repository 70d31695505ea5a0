//! Input that must not break the server, found by an adversarial run: times out of range,
//! rows the store cannot decode, panicking queries, concurrent uploads of one container,
//! reused idempotency keys, impersonated sources, oversized requests — each answered with a
//! JSON error naming the problem, and the feed and the rules still working after it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use crashscope_model::{Event, EventType, Scope, Severity};
use crashscope_store::{SqlStore, Store};

const BACKOFF_RULE: &str = "rules:\n- name: KubeletBackOff\n  severity: warning\n  \
    event: {reason: [BackOff], source: [kubernetes, local], window: 5m}\n  group_by: pod\n";

async fn start(rules: &str) -> (crashscope_server::Running, String, Arc<SqlStore>) {
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    let srv = server(store.clone(), rules, vec![]).await;
    let base = format!("http://{}", srv.addr);
    (srv, base, store)
}

async fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = client()
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = client().get(url).bearer_auth(TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_time_out_of_range_is_refused_where_it_enters_and_a_bad_row_never_breaks_the_feed() {
    let (srv, base, store) = start("rules: []\n").await;
    let far = "9999-12-30T22:00:00.5Z";
    let (status, body) = post(
        &format!("{base}/api/v1/events"),
        serde_json::json!({"name": "x", "timestamp": far}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "timestamp");
    let (status, body) = post(
        &format!("{base}/api/v1/silences"),
        serde_json::json!({"matchers": [{"name": "pod", "value": "a"}], "ends_at": far}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "ends_at");
    let r = client()
        .post(format!(
            "{base}/api/v1/captures?namespace=n&pod=p&container=c&from=2026-01-01T00:00:00Z&to={far}"
        ))
        .bearer_auth(TOKEN)
        .body(scap_bytes(b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "to");

    // A row written before these checks (or by hand) that cannot be read back.
    store.upsert_event(&custom("good", 0)).await.unwrap();
    sqlx::query("UPDATE events SET last_seen = 253402207200500, first_seen = 253402207200500")
        .execute(store.pool())
        .await
        .unwrap();
    store.upsert_event(&custom("later", 1)).await.unwrap();
    let (status, body) = get(&format!("{base}/api/v1/events")).await;
    assert_eq!(status, 200, "{body}");
    let reasons: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["later"]);
    let metrics = get_text(format!("{base}/metrics"), TOKEN).await;
    // Counted each time a listing skips it (the rule engine reads the feed too).
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("crashscope_store_rows_skipped "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(skipped >= 1, "{metrics}");
    // The rule engine reads the same rows and keeps running.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = client().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(metrics.contains("crashscope_rule_evaluation_failures_total 0"));
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn queries_that_used_to_panic_are_answered_with_400() {
    let (srv, base, _) = start("rules: []\n").await;
    let q = format!("{base}/api/v1/metrics/query?name=kubernetes.pod.restart.count");
    for extra in [
        "&step=100000000h",
        "&window=9999999999h",
        "&to=1e300",
        "&from=-1e300",
        "&to=9999-12-31T00:00:00Z",
        "&window=200000000000d",
    ] {
        let (status, body) = get(&format!("{q}{extra}")).await;
        assert!(status == 400 || status == 200, "{extra}: {status} {body}");
        assert!(body.is_object(), "{extra}: no JSON answer");
    }
    let (status, _) = get(&format!("{q}&window=9999999999h")).await;
    assert_eq!(status, 400);
    srv.shutdown().await.unwrap();
}

/// The smallest body that passes as a capture: a section header's type and magic.
fn scap_bytes(tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
    b.extend_from_slice(tail);
    b
}

#[tokio::test]
async fn concurrent_uploads_of_one_container_are_each_kept_privately() {
    let (srv, base, _) = start("rules: []\n").await;
    let url = format!(
        "{base}/api/v1/captures?namespace={}&pod={}&container=c&restart=3\
         &from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:01Z",
        "n".repeat(63),
        "p".repeat(110)
    );
    let uploads = (0..60).map(|i| {
        let url = url.clone();
        async move {
            let body = scap_bytes(format!("upload number {i}").as_bytes());
            let r = client()
                .post(&url)
                .bearer_auth(TOKEN)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let rec: serde_json::Value = r.json().await.unwrap();
            (rec, body)
        }
    });
    let done = futures::future::join_all(uploads).await;
    let mut paths = std::collections::BTreeSet::new();
    for (rec, body) in &done {
        let id = rec["id"].as_i64().unwrap();
        let got = client()
            .get(format!("{base}/api/v1/captures/{id}/file"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], &body[..], "capture {id} returned other bytes");
        let path = std::path::PathBuf::from(rec["path"].as_str().unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        paths.insert(path);
    }
    assert_eq!(paths.len(), 60);
    let (_, list) = get(&format!("{base}/api/v1/captures")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 60);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_event_is_refused() {
    let (srv, base, _) = start("rules: []\n").await;
    let send = |body: serde_json::Value| {
        let url = format!("{base}/api/v1/events");
        async move {
            let r = client()
                .post(url)
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", "deploy-42")
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    let deploy = serde_json::json!({"name": "deploy", "description": "1.4.2", "source": "ci"});
    assert_eq!(send(deploy.clone()).await, 201);
    assert_eq!(send(deploy).await, 200, "a retry is the same event");
    let other = serde_json::json!({"name": "deploy", "description": "1.4.3", "source": "ci"});
    assert_eq!(send(other).await, 422);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_custom_event_cannot_pass_for_the_kubelet() {
    let (srv, base, store) = start(BACKOFF_RULE).await;
    for source in ["Kubernetes", "LOCAL", " crashscope"] {
        let (status, body) = post(
            &format!("{base}/api/v1/events"),
            serde_json::json!({"name": "x", "source": source}),
        )
        .await;
        assert_eq!(status, 400, "{source}: {body}");
        assert_eq!(body["field"], "source");
    }
    // A custom event that happens to be named like the kubelet's reason.
    let (status, _) = post(
        &format!("{base}/api/v1/events"),
        serde_json::json!({"name": "BackOff", "scope": {"namespace": "default", "pod": "web"}}),
    )
    .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, alerts) = get(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(alerts["items"].as_array().unwrap().len(), 0, "{alerts}");
    // The kubelet's own BackOff does fire it: the rule works, it only ignored the impostor.
    let mut kubelet = custom("BackOff", 0);
    kubelet.source = "kubernetes".into();
    kubelet.scope.pod = Some("web".into());
    kubelet.last_seen = jiff::Timestamp::now();
    kubelet.first_seen = kubelet.last_seen;
    store.upsert_event(&kubelet).await.unwrap();
    let mut fired = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, alerts) = get(&format!("{base}/api/v1/alerts")).await;
        if !alerts["items"].as_array().unwrap().is_empty() {
            fired = true;
            break;
        }
    }
    assert!(fired, "the kubelet's BackOff raised no alert");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_requests_get_json_errors() {
    let (srv, base, _) = start("rules: []\n").await;
    let long = "a".repeat(10_000);
    let r = client()
        .get(format!("{base}/api/v1/events?q={long}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 414);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = client()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("x-padding", "b".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{}\"}}", "c".repeat(200_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = client()
        .put(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    srv.shutdown().await.unwrap();
}

fn custom(reason: &str, secs: i64) -> Event {
    let at = jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap();
    Event {
        source: "ci".into(),
        reporter: None,
        reason: reason.into(),
        message: String::new(),
        event_type: EventType::Normal,
        severity: Severity::Info,
        scope: Scope {
            namespace: Some("default".into()),
            ..Scope::default()
        },
        involved: None,
        count: 1,
        first_seen: at,
        last_seen: at,
        source_id: None,
        tags: Default::default(),
    }
}

#[tokio::test]
async fn a_refused_body_closes_the_connection_so_no_client_reuses_it() {
    let (srv, base, _) = start("rules: []\n").await;
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // Refused before any handler (a URI over the limit) with an upload behind it.
    let r = client()
        .post(format!("{base}/api/v1/captures?pod={}", "x".repeat(10_000)))
        .bearer_auth(TOKEN)
        .body(vec![0u8; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 414);
    assert_eq!(
        r.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // A request without a body keeps its connection.
    let r = client()
        .get(format!("{base}/api/v1/events?limit=0"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("connection").is_none());
    srv.shutdown().await.unwrap();
}
