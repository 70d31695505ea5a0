//! Durability of the server: clients post events while the server is killed with SIGKILL;
//! after a restart on the same store, every event that was acknowledged with a 2xx is there.
//! On SQLite (a file) and on PostgreSQL (when the tests have one; see crashscope-store's
//! testing module).

mod common;
use common::free_port;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "durability-token-0123456789";

fn serve(dir: &Path, store: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(dir)
        .args([
            "serve",
            "--store",
            store,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--token-file")
        .arg(dir.join("tokens"))
        .args(["--eval-interval", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn wait_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {base} did not start");
}

/// All custom event descriptions in the store, through the API's pages.
async fn stored(base: &str) -> std::collections::HashSet<String> {
    let http = reqwest::Client::new();
    let mut out = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let v: serde_json::Value = http
            .get(format!("{base}/api/v1/events?source=ci&limit=1000{cursor}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{cursor}: {v}"));
        for e in items {
            out.insert(e["message"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn check(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens"), format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(dir.path(), store, port);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    rt().block_on(async {
        wait_up(&base).await;
        let mut clients = Vec::new();
        for c in 0..8 {
            let (acked, stop, base) = (acked.clone(), stop.clone(), base.clone());
            clients.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let msg = format!("client {c} event {i}");
                    i += 1;
                    let r = http
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(TOKEN)
                        .json(&serde_json::json!({"name": "deploy", "description": msg, "source": "ci"}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(msg),
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap(); // SIGKILL, mid-stream
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "{store}: only {} events acknowledged",
        acked.len()
    );
    let mut again = serve(dir.path(), store, port);
    let found = rt().block_on(async {
        wait_up(&base).await;
        stored(&base).await
    });
    let _ = again.kill();
    let _ = again.wait();
    let lost: Vec<&String> = acked.iter().filter(|m| !found.contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "{store}: {} of {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    eprintln!(
        "{store}: {} acknowledged events all present after SIGKILL ({} stored)",
        acked.len(),
        found.len()
    );
}

#[test]
fn acknowledged_events_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ));
}

#[test]
fn acknowledged_events_survive_sigkill_on_postgres() {
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crashscope_store::testing::postgres_url());
    if let Some(url) = url {
        check(&url);
    }
}
