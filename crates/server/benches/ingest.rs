//! Ingest and feed benchmark of the server, through its HTTP API:
//!   1. sustained custom-event ingestion (POST /api/v1/events) by concurrent clients;
//!   2. the event feed's latency (GET /api/v1/events, first page, filtered, and deep pages)
//!      over a store holding many events, and the web UI's feed page (rows and counts).
//!
//! On SQLite (a file, as served) and, when CRASHSCOPE_BENCH_POSTGRES (or --postgres) names a
//! database, on PostgreSQL. Run `bench/server-ingest.sh`, or
//!
//!     cargo bench -p crashscope-server --bench ingest -- --events 100000 --clients 32 --rows 10000000

use std::sync::Arc;
use std::time::{Duration, Instant};

use crashscope_rules::RuleFile;
use crashscope_server::{Config, Tokens};
use crashscope_store::{Backend, SqlStore};

const TOKEN: &str = "bench-token-0123456789abcdef";

struct Args {
    /// Only serve (SQLite file) for this many seconds, for an outside load generator (wrk).
    serve: Option<u64>,
    events: usize,
    clients: usize,
    rows: u64,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        serve: None,
        events: 100_000,
        clients: 32,
        rows: 10_000_000,
        postgres: std::env::var("CRASHSCOPE_BENCH_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--events" => a.events = v.parse().expect("--events N"),
            "--serve" => a.serve = Some(v.parse().expect("--serve SECONDS")),
            "--clients" => a.clients = v.parse().expect("--clients N"),
            "--rows" => a.rows = v.parse().expect("--rows N"),
            "--postgres" => a.postgres = Some(v),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn ingest(base: &str, events: usize, clients: usize) -> (f64, Vec<Duration>) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let per = events / clients;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = format!("{base}/api/v1/events");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let body = serde_json::json!({
                    "name": "deploy", "description": format!("client {c} build {i}"),
                    "source": "bench", "severity": "info",
                    "scope": {"namespace": format!("ns-{}", i % 50), "workload": format!("deployment/app-{}", i % 500)},
                });
                let t = Instant::now();
                let r = http.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("POST");
                assert_eq!(r.status(), 201);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// Fills the store with `rows` Kubernetes-like events spread over 30 days, in SQL (the API
/// path is measured above; this only builds the haystack).
async fn bulk_load(store: &SqlStore, rows: u64) {
    let now = jiff::Timestamp::now().as_millisecond();
    let span: i64 = 30 * 24 * 3600 * 1000;
    let select = format!(
        "SELECT 'bulk-' || x, 'kubernetes', 'kubelet', \
           CASE WHEN x % 10 = 0 THEN 'BackOff' ELSE 'Pulled' END, \
           'Back-off restarting failed container ' || x, \
           CASE WHEN x % 10 = 0 THEN 'Warning' ELSE 'Normal' END, \
           CASE WHEN x % 10 = 0 THEN 'warning' ELSE 'info' END, \
           CASE WHEN x % 10 = 0 THEN 1 ELSE 0 END, \
           'ns-' || (x % 500), 'node-' || (x % 100), 'Deployment', 'app-' || (x % 5000), \
           'app-' || (x % 5000) || '-pod', 'main', '{{}}', NULL, 1, \
           {now} - {span} + (x * {span} / {rows}), {now} - {span} + (x * {span} / {rows}), NULL, NULL"
    );
    let cols = "dedup_key, source, reporter, reason, message, type, severity, severity_rank, namespace, \
                node, workload_kind, workload_name, pod, container, scope, involved, count, first_seen, \
                last_seen, source_id, tags";
    let chunk: u64 = 1_000_000;
    let mut from = 1;
    while from <= rows {
        let to = (from + chunk - 1).min(rows);
        let sql = match store.backend() {
            Backend::Sqlite => format!(
                "WITH RECURSIVE c(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM c WHERE x < {to}) \
                 INSERT INTO events ({cols}) {select} FROM c"
            ),
            Backend::Postgres => format!(
                "INSERT INTO events ({cols}) {select} FROM generate_series({from}::bigint, {to}::bigint) AS c(x)"
            ),
        };
        sqlx::query(&sql)
            .execute(store.pool())
            .await
            .expect("bulk load");
        from = to + 1;
    }
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE events")
            .execute(store.pool())
            .await
            .expect("analyze");
    } else {
        sqlx::query("ANALYZE")
            .execute(store.pool())
            .await
            .expect("analyze");
    }
}

async fn feed(base: &str, query: &str, n: usize) -> (f64, f64, usize) {
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(n);
    let mut items = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/events?{query}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{query}");
        let v: serde_json::Value = r.json().await.expect("json");
        lat.push(t.elapsed());
        items = v["items"].as_array().map(Vec::len).unwrap_or(0);
    }
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99), items)
}

/// The server over `store`, without rules (nothing but the API runs).
async fn start(store: &Arc<SqlStore>, listen: &str) -> crashscope_server::Running {
    crashscope_server::start(Config {
        listen: listen.parse().expect("addr"),
        store: store.clone(),
        tokens: Tokens::parse("bench", TOKEN).expect("token"),
        rules: RuleFile {
            notify: vec![],
            rules: vec![],
        },
        channels: vec![],
        interval: Duration::from_secs(3600),
        data_dir: std::env::temp_dir(),
        tls: None,
        limits: Default::default(),
        ui: Some(crashscope_web::router),
        clusters: Vec::new(),
    })
    .await
    .expect("server")
}

/// The web UI's feed page (HTML: the rows and the counts by field) for `query`, `n` times.
async fn ui_feed(base: &str, query: &str, n: usize) -> (f64, f64, usize) {
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(n);
    let mut rows = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/ui/events?{query}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{query}");
        let html = r.text().await.expect("html");
        lat.push(t.elapsed());
        rows = html.matches("<tr id=\"event-").count();
    }
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99), rows)
}

async fn run(name: &str, store: SqlStore, a: &Args) {
    let store = Arc::new(store);
    let srv = start(&store, "127.0.0.1:0").await;
    let base = format!("http://{}", srv.addr);
    let (rate, lat) = ingest(&base, a.events, a.clients).await;
    println!(
        "{name}: ingest {} events, {} clients: {:.0} events/s; POST latency p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        a.clients,
        rate,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    let t = Instant::now();
    bulk_load(&store, a.rows).await;
    println!(
        "{name}: bulk-loaded {} events in {:.1} s",
        a.rows,
        t.elapsed().as_secs_f64()
    );
    let cursor_deep = {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/api/v1/events?limit=1000&to=15d"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        v["next_cursor"].as_str().unwrap_or_default().to_string()
    };
    for (label, q) in [
        ("first page (100)", "limit=100".to_string()),
        ("namespace filter", "namespace=ns-42&limit=100".to_string()),
        (
            "warnings in the last hour",
            "severity=warning&from=1h&limit=100".to_string(),
        ),
        (
            "workload filter",
            "workload=deployment/app-4242&limit=100".to_string(),
        ),
        (
            "page 15 days back (cursor)",
            format!("cursor={cursor_deep}&limit=100"),
        ),
    ] {
        let (p50, p99, items) = feed(&base, &q, 200).await;
        println!("{name}: feed {label}: p50 {p50:.2} ms, p99 {p99:.2} ms ({items} items)");
    }
    for (label, q) in [
        ("first page", ""),
        ("namespace filter", "namespace=ns-42"),
        ("warnings in the last hour", "severity=warning&from=1h"),
    ] {
        let (p50, p99, rows) = ui_feed(&base, q, 50).await;
        println!(
            "{name}: web UI feed page with counts, {label}: p50 {p50:.2} ms, p99 {p99:.2} ms ({rows} rows)"
        );
    }
    let (p50, p99, _) = feed(
        &base,
        "q=restarting%20failed%20container%2012345&limit=100",
        5,
    )
    .await;
    println!("{name}: feed free-text search (full scan): p50 {p50:.0} ms, p99 {p99:.0} ms");
    srv.shutdown().await.expect("shutdown");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(secs) = a.serve {
        let store = Arc::new(
            SqlStore::open(&dir.path().join("bench.db"))
                .await
                .expect("sqlite"),
        );
        let srv = start(&store, "127.0.0.1:18099").await;
        println!("serving on {} for {secs} s", srv.addr);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let stored = store
            .count(crashscope_store::Table::Events)
            .await
            .expect("count");
        println!("events stored: {stored}");
        println!("peak RSS of the server: {:.0} MB", peak_rss_mb());
        srv.shutdown().await.expect("shutdown");
        return;
    }
    let sqlite = SqlStore::open(&dir.path().join("bench.db"))
        .await
        .expect("sqlite");
    run("sqlite", sqlite, &a).await;
    if let Some(url) = &a.postgres {
        let pg = SqlStore::connect(url).await.expect("postgres");
        sqlx::query("TRUNCATE events")
            .execute(pg.pool())
            .await
            .expect("truncate");
        run("postgres", pg, &a).await;
    }
    println!(
        "peak RSS (server and clients in one process): {:.0} MB",
        peak_rss_mb()
    );
}
