//! Two `crashscope serve` replicas on one PostgreSQL (Debian's, started by `make test`): both
//! serve the API and ingest, exactly one evaluates the rules — one webhook notification per
//! alert transition; after `kill -9` of that replica the other takes the engine over, and
//! the alert still resolves exactly once; events posted through either are all kept, once.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "replicas-test-token-0123456789abcdef";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get(url: &str) -> Option<(u16, String)> {
    rt().block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    })
}

fn post(url: &str, body: serde_json::Value) -> u16 {
    rt().block_on(async {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Whether the replica at `base` holds the engine (its /metrics says so).
fn leads(base: &str) -> Option<bool> {
    let (_, text) = get(&format!("{base}/metrics"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("crashscope_engine_leader "))?;
    Some(line.ends_with(" 1"))
}

fn serve(dir: &Path, name: &str, store: &str, port: u16, hook: std::net::SocketAddr) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--store", store])
        .arg("--token-file")
        .arg(dir.join("tokens"))
        .arg("--rules")
        .arg(dir.join("rules.yaml"))
        .args(["--eval-interval", "500ms"])
        .args(["--webhook", &format!("http://{hook}/hook")])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn two_replicas_notify_once_and_the_survivor_resolves() {
    let Some(store) = rt().block_on(crashscope_store::testing::postgres_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tokens"), format!("{TOKEN}\n")).unwrap();
    // One alert per workload while it logs BackOff; resolved 4 s after the last one.
    std::fs::write(
        d.join("rules.yaml"),
        "rules:\n- name: Backing off\n  summary: '{workload} backs off'\n  severity: warning\n  \
         event: {reason: [BackOff], window: 4s, min_count: 1}\n  group_by: workload\n",
    )
    .unwrap();
    let (hook, seen) = common::receiver();
    let ports = [common::free_port(), common::free_port()];
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let mut replicas = vec![
        common::Guard(serve(d, "a", &store, ports[0], hook), "replica a"),
        common::Guard(serve(d, "b", &store, ports[1], hook), "replica b"),
    ];
    let log = |i: usize| std::fs::read_to_string(d.join(["a.log", "b.log"][i])).unwrap_or_default();
    // Exactly one leads once both run; both are ready (a standby serves).
    let leader = wait("one leader", 30, || {
        let l = [leads(&bases[0])?, leads(&bases[1])?];
        (l[0] != l[1]).then(|| usize::from(l[1]))
    });
    for b in &bases {
        wait("both replicas ready", 10, || {
            get(&format!("{b}/readyz")).filter(|(code, _)| *code == 200)
        });
    }
    let standby = 1 - leader;

    // Events through both replicas; the one through the standby raises the alert.
    let event = |i: usize, n: usize| {
        serde_json::json!({
            "name": "BackOff", "source": "kubelet-relay",
            "description": format!("back-off restarting failed container (post {n})"),
            "severity": "warning",
            "scope": {"namespace": "shop", "workload": "deployment/web", "pod": format!("web-{i}")},
        })
    };
    for n in 0..10 {
        let via = if n % 2 == 0 { standby } else { leader };
        assert_eq!(
            post(&format!("{}/api/v1/events", bases[via]), event(via, n)),
            201
        );
    }
    let firing = |s: &[serde_json::Value]| s.iter().filter(|v| v["status"] == "firing").count();
    let resolved = |s: &[serde_json::Value]| s.iter().filter(|v| v["status"] == "resolved").count();
    wait("the firing notification", 30, || {
        (firing(&seen.lock().unwrap()) > 0).then_some(())
    });
    // Both replicas saw every event, once.
    for b in &bases {
        let (_, body) = get(&format!("{b}/api/v1/events?source=kubelet-relay&limit=100")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = v["items"]
            .as_array()
            .or(v.as_array())
            .cloned()
            .unwrap_or_default();
        assert_eq!(items.len(), 10, "{body}");
    }

    // The leader dies without a word; the standby takes over within the lease (3 s here)
    // and resolves the alert when its window has passed.
    let killed = Instant::now();
    // SAFETY: killing a child we started.
    unsafe { libc::kill(replicas[leader].0.id() as i32, libc::SIGKILL) };
    let _ = replicas[leader].0.wait();
    wait("the standby to take the engine over", 20, || {
        leads(&bases[standby]).filter(|l| *l)
    });
    let takeover = killed.elapsed();
    wait("the resolved notification", 30, || {
        (resolved(&seen.lock().unwrap()) > 0).then_some(())
    });
    // Nothing more comes: one notification per transition, across both replicas.
    std::thread::sleep(Duration::from_secs(3));
    let s = seen.lock().unwrap().clone();
    assert_eq!(
        (firing(&s), resolved(&s)),
        (1, 1),
        "{s:#?}\nleader log:\n{}\nstandby log:\n{}",
        log(leader),
        log(standby)
    );
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?}"
    );
    eprintln!("leader takeover after kill -9: {takeover:?}");
    drop(replicas);
    let _ = Stdio::null();
}
