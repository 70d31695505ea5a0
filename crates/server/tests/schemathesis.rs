//! Schemathesis (from the Python package registry) generates requests from openapi.yaml —
//! valid and invalid parameters and bodies for every operation — against a running server:
//! no answer may be a 5xx, and every answer must be one the document declares.
//! `make test` / CI install it into /opt/schemathesis; elsewhere set CRASHSCOPE_SCHEMATHESIS
//! to an `st` binary, or the test is skipped with the reason.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use crashscope_store::{SqlStore, Store};

fn st() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CRASHSCOPE_SCHEMATHESIS")
            .ok()
            .map(PathBuf::from),
        Some(PathBuf::from("/opt/schemathesis/bin/st")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let Some(st) = st() else {
        if std::env::var_os("CI").is_some() {
            panic!("schemathesis is not installed under CI (make test installs it into /opt/schemathesis)");
        }
        eprintln!("skipping: schemathesis not installed (python3 -m venv /opt/schemathesis && /opt/schemathesis/bin/pip install schemathesis)");
        return;
    };
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    // Some data, so listings and lookups have something to return.
    store
        .record_pod(jiff::Timestamp::now(), &pod("nginx-a", 2))
        .await
        .unwrap();
    let srv = server(store, "rules: []\n", vec![]).await;
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    // Schemathesis keeps a cache in its working directory: not in the source tree.
    let work = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(&st)
        .current_dir(work.path())
        .args(["run", spec, "--url"])
        .arg(format!("http://{}", srv.addr))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--seed",
            "1",
        ])
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    srv.shutdown().await.unwrap();
}
