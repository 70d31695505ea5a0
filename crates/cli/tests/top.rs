//! `crashscope top` driven in a real terminal: tmux runs it, send-keys types, capture-pane
//! reads the screen — the list with crash loops first and their cause, `/` filtering, Enter
//! opening a pod's diagnosis and previous log, help, and `q` quitting with the terminal back.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crashscope_store::Store;

/// A tmux server of this test's own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        common::text(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout)
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "top", k]);
        }
    }

    /// Waits until the screen holds `what`; the screen.
    fn until(&self, what: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the screen never showed {what:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

fn tmux_or_skip() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is missing: CI installs it (Makefile DEB_PACKAGES)"
    );
    eprintln!("skipping: tmux is not installed");
    false
}

/// A store with a crash-looping pod (its previous log says why) and a healthy one.
fn store_with_a_crash_loop(dir: &Path) {
    let now = jiff::Timestamp::now();
    let t = |secs: i64| (now - jiff::SignedDuration::from_secs(secs)).to_string();
    let web = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "uid": "u-web",
                     "creationTimestamp": t(300)},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
        "status": {
            "phase": "Running",
            "startTime": t(300),
            "containerStatuses": [{
                "name": "nginx", "image": "nginx:1.27", "imageID": "", "ready": false,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 40s restarting failed container=nginx pod=web-1_default(u-web)"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": t(3), "finishedAt": t(2)}}
            }]
        }
    });
    let db = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": "default", "uid": "u-db",
                     "creationTimestamp": t(300)},
        "spec": {"containers": [{"name": "postgres", "image": "postgres:17"}]},
        "status": {
            "phase": "Running",
            "startTime": t(300),
            "containerStatuses": [{
                "name": "postgres", "image": "postgres:17", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {"startedAt": t(300)}}
            }]
        }
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = crashscope_store::SqlStore::open(&dir.join("crashscope.db"))
            .await
            .unwrap();
        store
            .put_object("Pod", "default", "web-1", &web)
            .await
            .unwrap();
        store
            .put_object("Pod", "default", "db-0", &db)
            .await
            .unwrap();
    });
    // The crashed instance's log, as the local runtime writes it.
    let log = crashscope_model::logfile::log_path(dir, "default", "web-1", "u-web", "nginx", 2);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut buf = Vec::new();
    crashscope_model::logfile::encode(
        &mut buf,
        now - jiff::SignedDuration::from_secs(2),
        crashscope_model::logfile::Stream::Stderr,
        false,
        b"2026/12/07 10:00:00 [emerg] 1#1: host not found in upstream \"flask:5000\" in /etc/nginx/conf.d/default.conf:3",
    );
    std::fs::write(&log, buf).unwrap();
}

#[test]
fn top_lists_crash_loops_filters_opens_a_pod_and_quits() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    store_with_a_crash_loop(dir.path());
    let tmux = Tmux {
        socket: format!("crashscope-top-{}", std::process::id()),
    };
    let program = format!(
        "{} --data-dir {} top; echo EXIT=$?; sleep 60",
        env!("CARGO_BIN_EXE_crashscope"),
        dir.path().display()
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "40",
        &program,
    ]);
    assert!(
        started.status.success(),
        "{}",
        common::text(&started.stderr)
    );

    // The list: the crash loop first (before db-0, which sorts first by name), its container,
    // last exit, a next restart and the cause diagnosed from its previous log.
    let s = tmux.until("dns-nxdomain");
    assert!(
        s.contains("crashscope top — namespace default — 2 pods, 1 crash-looping"),
        "{s}"
    );
    let web = s
        .lines()
        .position(|l| l.contains("web-1"))
        .expect("web-1 listed");
    let db = s
        .lines()
        .position(|l| l.contains("db-0"))
        .expect("db-0 listed");
    assert!(web < db, "the crash loop is listed first:\n{s}");
    let row = s.lines().nth(web).unwrap();
    for cell in [
        "CrashLoopBackOff",
        "nginx",
        "Error (exit code 1)",
        "dns-nxdomain",
    ] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }
    assert!(
        row.contains(" in ") || row.contains("due "),
        "no next restart: {row:?}"
    );

    // `/` filters on any column, Esc clears.
    tmux.keys(&["/", "db"]);
    let s = tmux.until("pods matching \"db\"");
    assert!(s.contains("db-0") && !s.contains("web-1"), "{s}");
    tmux.keys(&["Escape", "Escape"]);
    tmux.until("web-1");

    // Enter opens the selected pod (the first row): its diagnosis, previous log, describe.
    tmux.keys(&["Enter"]);
    let s = tmux.until("── Diagnosis ──");
    assert!(s.contains("pod default/web-1"), "{s}");
    assert!(s.contains("Cause:    dns-nxdomain"), "{s}");
    assert!(s.contains("Previous log of nginx"), "{s}");
    assert!(
        s.contains("host not found in upstream \"flask:5000\""),
        "{s}"
    );
    tmux.keys(&["Escape", "?"]);
    tmux.until("this help");
    tmux.keys(&["Escape", "q"]);
    let s = tmux.until("EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
}

#[test]
fn top_without_a_terminal_says_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::crashscope_at("2026-12-07T10:00:00Z", &["top"], dir.path());
    assert!(!out.status.success());
    let err = common::text(&out.stderr);
    assert!(err.contains("get pods -w"), "{err}");
}
