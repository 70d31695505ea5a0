//! A real Prometheus (Debian's package) scrapes `/metrics` with the bearer token, as an
//! operator's Prometheus would: the target is up and the restart gauge has the pod's count.
//! Without Prometheus installed the test is skipped with the reason — except under CI.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crashscope_store::{SqlStore, Store};

const PROMETHEUS: &str = "/usr/bin/prometheus";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_restart_gauge() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Prometheus must be installed under CI (apt-get install prometheus)"
        );
        eprintln!("skipping: Prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    store
        .record_pod(jiff::Timestamp::now(), &pod("nginx-a", 0))
        .await
        .unwrap();
    store
        .record_pod(jiff::Timestamp::now(), &pod("nginx-a", 2))
        .await
        .unwrap();
    let srv = server(store, "rules: []\n", vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: crashscope\n  \
             authorization: {{type: Bearer, credentials: {TOKEN}}}\n  \
             static_configs: [{{targets: ['{}']}}]\n",
            srv.addr
        ),
    )
    .unwrap();
    let mut prom = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = client();
    let query = |q: &str| {
        let http = http.clone();
        let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
        async move {
            let v: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut restarts = None;
    while Instant::now() < deadline {
        restarts = query("crashscope_container_restarts%7Bpod%3D%22nginx-a%22%7D").await;
        if restarts.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = query("up%7Bjob%3D%22crashscope%22%7D").await;
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(
        restarts.as_deref(),
        Some("2"),
        "Prometheus never saw the gauge"
    );
    assert_eq!(up.as_deref(), Some("1"));
    srv.shutdown().await.unwrap();
}
