//! The API's contract: auth on every route but health, clear 4xx for bad input, the OpenAPI
//! document matching the routes, and the metric query.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use crashscope_model::capture::RequestState;
use crashscope_store::{SqlStore, Store};

const NO_RULES: &str = "rules: []\n";

async fn start() -> (crashscope_server::Running, String, Arc<SqlStore>) {
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    let srv = server(store.clone(), NO_RULES, vec![]).await;
    let base = format!("http://{}", srv.addr);
    (srv, base, store)
}

#[tokio::test]
async fn every_route_but_health_needs_a_token_and_read_only_tokens_only_read() {
    let (srv, base, _) = start().await;
    let http = client();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(READ_TOKEN)
        .json(&serde_json::json!({"name": "deploy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_a_4xx_that_names_the_problem() {
    let (srv, base, store) = start().await;
    let http = client();
    let post = |body: String| {
        http.post(format!("{base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("{\"name\": ".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(
        b["error"].as_str().unwrap().contains("not valid JSON"),
        "{b}"
    );

    let r = post(r#"{"name": "deploy", "severity": "loud"}"#.into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["field"], "severity", "{b}");

    let r = post(r#"{"severity": "warning"}"#.into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["field"], "name", "a missing field is named: {b}");

    let r = post(r#"{"name": "deploy", "colour": "red"}"#.into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("colour"), "{b}");

    let r = post(r#"{"name": "deploy", "source": "kubernetes"}"#.into())
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "a client cannot pose as the Kubernetes source"
    );

    let big = format!(
        r#"{{"name": "deploy", "description": "{}"}}"#,
        "x".repeat(100_000)
    );
    let r = post(big).await.unwrap();
    assert_eq!(r.status(), 413);

    let r = http
        .get(format!("{base}/api/v1/events?limit=0"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{base}/api/v1/events?limit=abc"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("limit"), "{b}");
    let r = http
        .get(format!("{base}/api/v1/metrics/query?name=cpu"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{base}/api/v1/nothing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A content type that is not JSON is refused, before the body is read.
    let r = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(r#"{"name": "deploy"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Nothing was stored by the refused requests.
    let all = store.events(&Default::default()).await.unwrap();
    assert!(all.is_empty(), "{all:?}");
    // What `curl -d '{…}'` sends (the form type) is read as the JSON it is.
    let r = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name": "deploy web 1.4.2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    srv.shutdown().await.unwrap();
}

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_mapping().unwrap() {
        for (method, _) in ops.as_mapping().unwrap() {
            documented.insert((
                method.as_str().unwrap().to_string(),
                path.as_str().unwrap().to_string(),
            ));
        }
    }
    let mut served: BTreeSet<(String, String)> = crashscope_server::api::routes()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    served.extend(
        crashscope_server::api::OPEN_ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    assert_eq!(documented, served);
}

#[tokio::test]
async fn the_restart_metric_is_a_time_series() {
    let (srv, base, store) = start().await;
    let t0 = jiff::Timestamp::now();
    for n in 0..=2 {
        store
            .record_pod(
                t0 + std::time::Duration::from_secs(n as u64 * 10),
                &pod("nginx-a", n),
            )
            .await
            .unwrap();
    }
    let from = t0.as_second();
    let to = from + 60;
    let r: serde_json::Value = get_json(format!(
            "{base}/api/v1/metrics/query?name=kubernetes.pod.restart.count&from={from}&to={to}&step=30s&window=30s&by=workload"
        ), TOKEN).await;
    let s = &r["series"][0];
    assert_eq!(s["labels"]["workload"], "nginx", "{r}");
    let values: Vec<f64> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.0, 2.0, 0.0], "{r}");
    srv.shutdown().await.unwrap();
}

/// With a certificate the API is HTTPS only; a client trusting the certificate gets answers.
#[tokio::test]
async fn https_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl must work under CI: {other:?}"
            );
            eprintln!("skipping: cannot make a certificate with openssl: {other:?}");
            return;
        }
    }
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    let srv = crashscope_server::start(crashscope_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        store,
        tokens: crashscope_server::Tokens::parse("t", TOKEN).unwrap(),
        rules: crashscope_rules::RuleFile {
            notify: vec![],
            rules: vec![],
        },
        channels: vec![],
        interval: std::time::Duration::from_secs(60),
        data_dir: dir.path().to_path_buf(),
        tls: Some(crashscope_server::tls::TlsFiles {
            cert: cert.clone(),
            key,
        }),
        limits: Default::default(),
        ui: None,
        clusters: Vec::new(),
    })
    .await
    .unwrap();
    let pem = std::fs::read(&cert).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = https
        .get(format!("https://{}/api/v1/alerts", srv.addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP to the TLS port gets no answer.
    let plain = client()
        .get(format!("http://{}/healthz", srv.addr))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_agent_sends_a_capture_for_a_request_or_gives_the_request_up() {
    let (srv, base, store) = start().await;
    let http = client();
    let now = jiff::Timestamp::now();
    let req = store
        .request_capture(None, "shop", "web-1", None, 10_000, now)
        .await
        .unwrap();
    let other = store
        .request_capture(None, "shop", "web-2", None, 10_000, now)
        .await
        .unwrap();
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scap/sample.scap"
    ))
    .unwrap();
    let upload = |body: Vec<u8>, query: String| {
        http.post(format!("{base}/api/v1/captures?{query}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let q = |extra: &str| {
        format!("namespace=shop&pod=web-1&container=web&restart=3&from=2026-11-28T10:00:00Z&to=2026-11-28T10:00:35Z&events=12&node=n1{extra}")
    };
    // Not a capture: refused, nothing stored.
    let r = upload(b"hello".to_vec(), q("")).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = upload(sample.clone(), q("&request=999")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(store.captures().await.unwrap().is_empty());

    let r = upload(
        sample.clone(),
        q(&format!("&reason=request&request={}", req.id)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let stored: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (stored["pod"].as_str(), stored["restart"].as_i64()),
        (Some("web-1"), Some(3))
    );
    let id = stored["id"].as_i64().unwrap();
    let file = http
        .get(format!("{base}/api/v1/captures/{id}/file"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), sample.as_slice());
    let taken = store
        .capture_requests(Some(RequestState::Taken))
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), vec![req.id]);
    // Taken stays taken: giving it up afterwards is a conflict, not a silent change.
    let r = http
        .patch(format!("{base}/api/v1/capture-requests/{}", req.id))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"state": "failed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    let patch = |id: i64, body: &'static str| {
        http.patch(format!("{base}/api/v1/capture-requests/{id}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = patch(other.id, r#"{"state": "taken"}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = patch(123_456, r#"{"state": "failed"}"#).await.unwrap();
    assert_eq!(r.status(), 404);
    // An agent takes the request; no one takes it twice.
    let r = patch(other.id, r#"{"state": "taking"}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = patch(other.id, r#"{"state": "taking"}"#).await.unwrap();
    assert_eq!(r.status(), 409);
    let r = patch(other.id, r#"{"state": "failed"}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    let failed = store
        .capture_requests(Some(RequestState::Failed))
        .await
        .unwrap();
    assert_eq!(
        failed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![other.id]
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn agents_long_poll_for_requests_they_have_not_seen() {
    let (srv, base, store) = start().await;
    let http = client();
    let list = |query: String| {
        http.get(format!("{base}/api/v1/capture-requests?{query}"))
            .bearer_auth(TOKEN)
            .send()
    };
    let r = list("state=done".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let first = store
        .request_capture(None, "shop", "web-1", None, 10_000, jiff::Timestamp::now())
        .await
        .unwrap();
    // Nothing newer than the first: the poll is held until a request is made.
    let poll = tokio::spawn(list(format!("state=requested&after={}&wait=20s", first.id)));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the poll answered before any request was made"
    );
    // An operator asks through the API: the held poll wakes with it.
    let made = http
        .post(format!("{base}/api/v1/capture-requests"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"namespace": "shop", "pod": "web-2", "duration": "5s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let second: serde_json::Value = made.json().await.unwrap();
    assert_eq!(second["duration_ms"], 5000);
    assert_eq!(second["state"], "requested");
    let second_id = second["id"].as_i64().unwrap();
    let bad = http
        .post(format!("{base}/api/v1/capture-requests"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"namespace": "shop", "pod": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), poll)
        .await
        .expect("the new request wakes the poll")
        .unwrap()
        .unwrap();
    let got: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<i64> = got["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![second_id]);
    // With nothing new, the wait ends empty.
    let r = list(format!("state=requested&after={second_id}&wait=1s"))
        .await
        .unwrap();
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got["items"], serde_json::json!([]));
    // A poll held when the server stops is answered at once: the stop does not wait it out.
    let held = tokio::spawn(list(format!("state=requested&after={second_id}&wait=60s")));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), srv.shutdown())
        .await
        .expect("the server stops without waiting out a long-poll")
        .unwrap();
    let r = held.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_stored_capture_is_read_in_pages_and_views() {
    let (srv, base, _store) = start().await;
    let http = client();
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scap/sample.scap"
    ))
    .unwrap();
    let r = http
        .post(format!("{base}/api/v1/captures?namespace=shop&pod=web-1&container=web&from=2026-11-28T10:00:00Z&to=2026-11-28T10:00:35Z"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/octet-stream")
        .body(sample)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let events = |q: String| get_json(format!("{base}/api/v1/captures/{id}/events?{q}"), TOKEN);
    // One page of everything, and the same events page by page through next_after.
    let whole = events("limit=5000".into()).await;
    let all = whole["items"].as_array().unwrap().clone();
    assert_eq!(all.len() as u64, whole["events"].as_u64().unwrap());
    assert!(whole.get("next_after").is_none());
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let p = events(format!("limit=60&after={after}")).await;
        paged.extend(p["items"].as_array().unwrap().iter().cloned());
        match p["next_after"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(paged, all);
    let nums: Vec<u64> = all.iter().map(|l| l["num"].as_u64().unwrap()).collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]));
    // A filter and a time: only what sysdig's filter selects, from that time on.
    let from = all[100]["ts"].as_u64().unwrap();
    let from_text = jiff::Timestamp::from_nanosecond(i128::from(from)).unwrap();
    let p = events(format!("filter=evt.dir%3D%3C&from={from_text}&limit=5000")).await;
    let want: Vec<_> = all
        .iter()
        .filter(|l| l["dir"] == "<" && l["ts"].as_u64().unwrap() >= from)
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(p["items"].as_array().unwrap(), &want);
    // A view's table, as `inspect FILE errors -o json` gives it.
    let v = get_json(format!("{base}/api/v1/captures/{id}/views/summary"), TOKEN).await;
    assert_eq!(v["view"], "summary");
    assert_eq!(v["events_read"].as_u64().unwrap(), all.len() as u64);
    // Bad input names what is wrong.
    for (path, status, field) in [
        (
            format!("/api/v1/captures/{id}/events?limit=0"),
            400,
            Some("limit"),
        ),
        (
            format!("/api/v1/captures/{id}/events?filter=evt.type%3Dopne"),
            400,
            Some("filter"),
        ),
        (
            format!("/api/v1/captures/{id}/events?from=yesterday"),
            400,
            Some("from"),
        ),
        (format!("/api/v1/captures/{id}/views/nonsense"), 404, None),
        ("/api/v1/captures/99999/events".to_string(), 404, None),
        (
            "/api/v1/captures/x/views/summary".to_string(),
            400,
            Some("id"),
        ),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["field"].as_str(), field, "{path}: {body}");
    }
    srv.shutdown().await.unwrap();
}
