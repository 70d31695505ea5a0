//! The HTTP API: requests to every route with mutated paths, parameters, headers and
//! bodies must be answered — never a 5xx, never a dropped connection, every error as JSON —
//! and the server must still answer `/healthz` afterwards.

use std::sync::Arc;
use std::time::Duration;

use crashscope_store::SqlStore;

use crate::mutate::{self, Rng};
use crate::{fixtures, Report, Run};

const TOKEN: &str = "fuzz-token-0123456789abcdef";

const VALUES: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "7",
    "18446744073709551616",
    "-9223372036854775809",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "9999-12-31T23:59:59Z",
    "9999-12-30T22:00:00.5Z",
    "0001-01-01T00:00:00Z",
    "2026-12-07T00:00:00Z",
    "1h",
    "100000000h",
    "30d",
    "200000000000d",
    "0s",
    "\u{0}",
    "../../etc/passwd",
    "deployment/nginx",
    "deployment/",
    "/",
    "kubernetes.pod.restart.count",
    "kubernetes.pod.restart.rate",
    "pod",
    "workload",
    "taking",
    "failed",
    "firing",
    "Kubernetes",
    "default",
    "ünïcödé",
    "' OR 1=1 --",
];

const PARAMS: &[&str] = &[
    "from",
    "to",
    "limit",
    "cursor",
    "step",
    "window",
    "name",
    "by",
    "state",
    "namespace",
    "pod",
    "workload",
    "severity",
    "source",
    "reason",
    "node",
    "q",
    "container",
    "restart",
    "events",
    "drops",
    "request",
    "after",
    "bogus",
];

const BODIES: &[&str] = &[
    r#"{"name":"deploy","description":"1.4.2","severity":"warning","timestamp":"2026-12-07T00:00:00Z","source":"ci","scope":{"namespace":"default","workload":"deployment/nginx","pod":"p","container":"c","node":"n"},"tags":{"a":"b"}}"#,
    r#"{"matchers":[{"name":"pod","value":"a","regex":false}],"duration":"1h","comment":"c","created_by":"me"}"#,
    r#"{"matchers":[{"name":"pod","value":"a.*","regex":true}],"starts_at":"2026-12-07T00:00:00Z","ends_at":"2026-12-08T00:00:00Z"}"#,
    r#"{"namespace":"default","pod":"p","container":"c","duration":"10s"}"#,
    r#"{"state":"taking"}"#,
    r#"{"state":"failed"}"#,
];

fn value(rng: &mut Rng) -> String {
    let v = rng.pick(VALUES).to_string();
    if rng.chance(4) {
        let m = mutate::bytes(rng, v.as_bytes(), b"", 3);
        String::from_utf8_lossy(&m).into_owned()
    } else if rng.chance(20) {
        "x".repeat(1 + rng.below(20_000))
    } else {
        v
    }
}

/// One request, as text (saved with a finding).
struct Sent {
    method: String,
    url: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

pub fn run(run: &Run) -> Report {
    let mut report = Report::new("api");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return report,
    };
    let data = std::env::temp_dir().join(format!("crashscope-fuzz-api-{}", std::process::id()));
    let capture = std::fs::read(fixtures().join("scap/sample.scap")).unwrap_or_default();
    rt.block_on(async {
        let Ok(store) = SqlStore::in_memory().await else {
            return;
        };
        let Ok(tokens) = crashscope_server::Tokens::parse("fuzz", TOKEN) else {
            return;
        };
        let srv = match crashscope_server::start(crashscope_server::Config {
            listen: "127.0.0.1:0".parse().expect("a literal address"),
            store: Arc::new(store),
            tokens,
            rules: crashscope_rules::RuleFile::defaults(),
            channels: vec![],
            interval: Duration::from_millis(200),
            data_dir: data.clone(),
            tls: None,
            limits: Default::default(),
            ui: None,
            clusters: Vec::new(),
        })
        .await
        {
            Ok(s) => s,
            Err(_) => return,
        };
        let base = format!("http://{}", srv.addr);
        // Kept-alive connections, as agents and CI use them: the server says
        // `Connection: close` on a refusal that may leave a body unread.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // Below the server's 10 s idle deadline, as a well-behaved client sets it.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let routes: Vec<(&str, &str)> = crashscope_server::api::routes()
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let mut rng = Rng::new(run.seed);
        for _ in run.rounds() {
            let (method, template) = *rng.pick(&routes);
            let Ok(mut url) = reqwest::Url::parse(&base) else {
                break;
            };
            if let Ok(mut segs) = url.path_segments_mut() {
                segs.clear();
                for seg in template.trim_start_matches('/').split('/') {
                    if seg.starts_with('{') {
                        let v = if seg == "{id}" && rng.chance(2) {
                            (1 + rng.below(5)).to_string()
                        } else {
                            value(&mut rng)
                        };
                        segs.push(&v);
                    } else {
                        segs.push(seg);
                    }
                }
            }
            {
                let mut q = url.query_pairs_mut();
                for _ in 0..rng.below(5) {
                    let k = *rng.pick(PARAMS);
                    // A long-poll waits at most a second here, so the run keeps its pace.
                    let v = if k == "wait" {
                        "1s".to_string()
                    } else {
                        value(&mut rng)
                    };
                    q.append_pair(k, &v);
                }
            }
            if url.query() == Some("") {
                url.set_query(None);
            }
            let body: Vec<u8> = match method {
                "post" if template == "/api/v1/captures" => {
                    mutate::bytes(&mut rng, &capture, b"", 4)
                }
                "post" | "patch" => {
                    let seed = rng.pick(BODIES).as_bytes();
                    if rng.chance(3) {
                        seed.to_vec()
                    } else {
                        let other = rng.pick(BODIES).as_bytes();
                        mutate::bytes(&mut rng, seed, other, 4)
                    }
                }
                _ => Vec::new(),
            };
            let content_type = match rng.below(5) {
                0 => None,
                1 => Some("application/x-www-form-urlencoded".to_string()),
                2 => Some("text/plain".to_string()),
                3 => Some(value(&mut rng)),
                _ => Some("application/json".to_string()),
            };
            let sent = Sent {
                method: method.to_uppercase(),
                url: url.to_string(),
                content_type,
                body,
            };
            let mut req = match method {
                "post" => client.post(url),
                "patch" => client.patch(url),
                "delete" => client.delete(url),
                _ => client.get(url),
            }
            .bearer_auth(TOKEN)
            .body(sent.body.clone());
            if let Some(ct) = &sent.content_type {
                req = req.header("content-type", ct.as_str());
            }
            if rng.chance(5) {
                req = req.header("idempotency-key", value(&mut rng));
            }
            report.inputs += 1;
            match req.send().await {
                Err(e) if e.is_builder() => {
                    // The client refused to send it (an invalid header value): not an input.
                    report.inputs -= 1;
                }
                Err(e) => {
                    report.server_errors += 1;
                    let mut sent = sent;
                    sent.content_type = Some(format!(
                        "{:?} (client: {:?})",
                        sent.content_type,
                        std::error::Error::source(&e).map(|s| s.to_string())
                    ));
                    keep(&mut report, run, "dropped", &sent);
                }
                Ok(r) => {
                    let status = r.status();
                    let json = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/json"));
                    if status.is_server_error() {
                        report.server_errors += 1;
                        keep(&mut report, run, "5xx", &sent);
                    } else if status.is_client_error() {
                        report.refused += 1;
                        if !json {
                            report.non_json_errors += 1;
                            keep(&mut report, run, "non-json", &sent);
                        }
                    }
                    let _ = r.bytes().await;
                }
            }
        }
        let alive = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if !alive {
            report.server_errors += 1;
        }
        let _ = srv.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&data);
    report
}

fn keep(report: &mut Report, run: &Run, kind: &str, s: &Sent) {
    let mut text = format!(
        "{} {}\ncontent-type: {:?}\n\n",
        s.method, s.url, s.content_type
    )
    .into_bytes();
    text.extend_from_slice(&s.body);
    crate::save(report, run, kind, &text);
}
