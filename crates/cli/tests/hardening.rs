//! The binary under hostile or careless use: a slowloris against `serve` with the open-file
//! limit many systems ship (1024), output into a pipe the reader already closed, a manifest
//! nested 100,000 levels deep — each ends cleanly and quickly.

mod common;
use common::{free_port, text};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lets this process open the connections a slowloris needs (the server gets 1024).
fn raise_own_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn healthz(port: u16, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn half_sent_requests_cannot_lock_out_healthz() {
    raise_own_file_limit();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 1024 && exec '{}' serve --listen 127.0.0.1:{port} --header-timeout 2s",
            env!("CARGO_BIN_EXE_crashscope")
        ))
        .env("CRASHSCOPE_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while healthz(port, Duration::from_secs(2)).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // More half-sent requests than the server has descriptors, and a few idle connections.
    let mut held = Vec::new();
    for i in 0..1100 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        if i % 10 != 0 {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        }
        held.push(s);
    }
    let asked = Instant::now();
    let answer = healthz(port, Duration::from_secs(20)).unwrap_or_default();
    let waited = asked.elapsed();
    let _ = server.kill();
    let mut stderr = String::new();
    let _ = server.stderr.take().unwrap().read_to_string(&mut stderr);
    let _ = server.wait();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "no answer from /healthz while {} slow connections were held ({waited:?}); server said: {stderr}",
        held.len()
    );
    // The header deadline (2 s) frees the slots; well under the client's 20 s.
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let f = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/k8s/gitops-engine__pod-crashloop.yaml");
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["describe", "pod", "my-pod", "-f", f.to_str().unwrap()],
        vec!["get", "pods", "-o", "wide", "-f", f.to_str().unwrap()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .args(&args)
            .env("CRASHSCOPE_DATA_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first line is written (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn a_manifest_nested_without_end_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("deep.yaml");
    std::fs::write(&f, format!("x: {}", "[".repeat(100_000))).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(["get", "pods", "-f", f.to_str().unwrap()])
        .env("CRASHSCOPE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("deep.yaml") && err.contains("nested deeper"),
        "{err}"
    );
}

#[test]
fn times_past_what_crashscope_holds_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/scap/sample.scap");
    for (args, says) in [
        (vec!["events", "--since", "99999999999h"], "--since"),
        (
            vec![
                "inspect",
                sample.to_str().unwrap(),
                "--from",
                "2300-01-01T00:00:00Z",
            ],
            "outside the times",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .args(&args)
            .env("CRASHSCOPE_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
