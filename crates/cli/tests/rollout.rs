//! Rollouts in the local runtime (root): a Deployment whose new revision crash-loops keeps
//! its old pods serving, `rollout status` says it is stuck and, past the progress deadline,
//! fails as kubectl's does; `rollout history` lists the revisions with their change cause;
//! `rollout undo` goes back, and the feed shows each scaling as `ScalingReplicaSet`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cs(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    common::text(&o.stdout) + &common::text(&o.stderr)
}

/// What the runtime under test printed (its log sits beside the data directory).
fn runtime_log(data: &Path) -> String {
    let log = data.with_file_name("runtime.log");
    std::fs::read_to_string(&log).unwrap_or_else(|e| format!("({}: {e})", log.display()))
}

/// The runtime's stdout and stderr, kept for a failure's message (appended to, so the two
/// streams do not overwrite each other).
fn log_file(data: &Path) -> Stdio {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.with_file_name("runtime.log"))
        .unwrap();
    Stdio::from(f)
}

/// Polls `crashscope ARGS` until `done` holds for its output (at most `secs`).
fn until(data: &Path, args: &[&str], secs: u64, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let o = out(&cs(data, args));
        if done(&o) {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never got there:\n{o}\n--- the runtime's log:\n{}",
            runtime_log(data)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn deployment(command: &str, cause: &str, deadline: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {{kubernetes.io/change-cause: {cause}}}\n\
         spec:\n  replicas: 2\n  progressDeadlineSeconds: {deadline}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
         metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: busybox\n        \
         command: [sh, -c, \"{command}\"]\n"
    )
}

#[test]
fn a_crash_looping_revision_leaves_the_old_pods_serving_and_undo_goes_back() {
    if !common::root_or_skip("rollout") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v1 = dir.path().join("v1.yaml");
    let v2 = dir.path().join("v2.yaml");
    // A 200 s deadline: 10 s at the runtime's scale of 0.05.
    std::fs::write(&v1, deployment("sleep 3600", "v1", 200)).unwrap();
    std::fs::write(&v2, deployment("echo cannot start; exit 1", "v2", 200)).unwrap();
    let _run = common::Guard(
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--time-scale", "0.05", "--dns", "127.0.99.43"])
            .arg(&v1)
            .stdout(log_file(&data))
            .stderr(log_file(&data))
            .spawn()
            .unwrap(),
        "crashscope run",
    );
    let running = |o: &str| o.lines().filter(|l| l.contains(" Running ")).count();
    let before = until(&data, &["get", "pods"], 30, |o| running(o) == 2);
    let status = ["rollout", "status", "deployment/web", "--timeout", "60s"];
    let o = cs(&data, &status);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("deployment \"web\" successfully rolled out"));

    // v2 crash-loops: one new pod beside the two old ones, which keep running.
    assert!(cs(&data, &["apply", "-f", v2.to_str().unwrap()])
        .status
        .success());
    let pods = until(&data, &["get", "pods"], 30, |o| {
        o.contains("CrashLoopBackOff")
    });
    let old: Vec<&str> = before
        .lines()
        .filter(|l| l.contains(" Running "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in &old {
        assert!(
            pods.lines()
                .any(|l| l.starts_with(name) && l.contains(" Running ")),
            "old pod {name} stopped serving:\n{pods}"
        );
    }
    let o = cs(&data, &["rollout", "status", "deploy/web", "--watch=false"]);
    assert!(
        out(&o).contains(
            "Waiting for deployment \"web\" rollout to finish: 1 out of 2 new replicas have been updated..."
        ),
        "{}",
        out(&o)
    );
    // Past the deadline: kubectl's error and exit code.
    let o = until(&data, &["rollout", "status", "deployment/web"], 40, |o| {
        o.contains("exceeded")
    });
    assert!(
        o.contains("error: deployment \"web\" exceeded its progress deadline"),
        "{o}"
    );
    assert!(!cs(&data, &status).status.success());
    let history = out(&cs(&data, &["rollout", "history", "deployment/web"]));
    assert_eq!(
        history,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         v1\n2         v2\n\n"
    );
    let events = out(&cs(&data, &["events"]));
    assert!(
        events.contains("Scaled up replica set web-") && events.contains("ScalingReplicaSet"),
        "{events}"
    );

    // Undo: back to v1, the crash-looping pod goes, the rollout completes.
    let o = cs(&data, &["rollout", "undo", "deployment/web"]);
    assert_eq!(out(&o), "deployment.apps/web rolled back\n");
    let o = cs(&data, &status);
    assert!(o.status.success(), "{}", out(&o));
    until(&data, &["get", "pods"], 30, |o| {
        running(o) == 2 && !o.contains("CrashLoopBackOff")
    });
    let history = out(&cs(&data, &["rollout", "history", "deployment/web"]));
    assert_eq!(
        history,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n2         v2\n3         v1\n\n"
    );
    let o = cs(
        &data,
        &["rollout", "undo", "deployment/web", "--to-revision", "9"],
    );
    assert!(!o.status.success());
    assert!(out(&o).contains("unable to find specified revision 9 in history"));
}

/// The rule action `rollback` under `serve --local`: v1 runs healthy, v2 crash-loops right
/// after its rollout, the restart rule fires and the engine goes back to v1 — the feed says
/// so (`RolledBack`, with why), the history has v1 as the newest revision, and the pods run.
#[test]
fn the_rollback_action_undoes_a_rollout_that_crash_loops() {
    if !common::root_or_skip("rollback action") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    let (v1, v2) = (d.join("v1.yaml"), d.join("v2.yaml"));
    std::fs::write(&v1, deployment("sleep 3600", "v1", 600)).unwrap();
    std::fs::write(&v2, deployment("echo cannot start; exit 1", "v2", 600)).unwrap();
    std::fs::write(d.join("tokens"), "rollback-test-token\n").unwrap();
    // A webhook receiver: every POST body, in order.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/", hook.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        for conn in hook.incoming().flatten() {
            let mut r = BufReader::new(conn);
            let mut len = 0usize;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    std::fs::write(
        d.join("rules.yaml"),
        format!(
            "notify:\n- webhook: {hook_url}\nrules:\n- name: PodRestartingFrequently\n  severity: error\n  \
             metric: {{name: kubernetes.pod.restart.count, by: pod, window: 30s, op: '>=', threshold: 2}}\n  \
             group_by: workload\n  actions:\n    rollback: {{namespaces: [default], window: 5m, healthy_for: 3s}}\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(d.join("runtime.log")).unwrap();
    let _serve = common::Guard(
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(&data)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .arg("--token-file")
            .arg(d.join("tokens"))
            .arg("--rules")
            .arg(d.join("rules.yaml"))
            .args(["--eval-interval", "500ms"])
            .args(["--time-scale", "0.05", "--dns", "127.0.99.44", "--local"])
            .arg(&v1)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
        "crashscope serve",
    );
    let running = |o: &str| o.lines().filter(|l| l.contains(" Running ")).count();
    until(&data, &["get", "pods"], 60, |o| running(o) == 2);
    // v1 has to have been healthy for healthy_for.
    std::thread::sleep(Duration::from_secs(4));
    assert!(cs(&data, &["apply", "-f", v2.to_str().unwrap()])
        .status
        .success());
    let events = until(&data, &["events", "--all"], 90, |o| {
        o.contains("RolledBack")
    });
    let line = events
        .lines()
        .find(|l| l.contains("RolledBack"))
        .unwrap_or_default();
    assert!(
        line.contains("Rolled back deployment web from revision 2 to 1")
            && line.contains("after the rollout to revision 2"),
        "{events}\n{}",
        runtime_log(&data)
    );
    // The channels are told what was done, beside the alert itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let told = loop {
        let all = bodies.lock().unwrap().clone();
        if let Some(b) = all.iter().find(|b| b.contains("\"status\":\"remediated\"")) {
            break b.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no remediated notification: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        told.contains("Rolled back deployment web from revision 2 to 1"),
        "{told}"
    );
    assert!(told.contains("\"action\":\"rollback\""), "{told}");
    let history = until(&data, &["rollout", "history", "deployment/web"], 30, |o| {
        o.contains("3         v1")
    });
    assert!(history.contains("2         v2"), "{history}");
    until(&data, &["get", "pods"], 60, |o| {
        running(o) == 2 && !o.contains("CrashLoopBackOff") && !o.contains("Error")
    });
}

/// `crashscope fix`: a Deployment whose liveness probe checks the wrong port is diagnosed
/// from the capture (the program listens elsewhere); fix prints the patch of the probe's port
/// and, with --apply, the Deployment rolls out the fixed template and its pods stay up.
#[test]
fn fix_applies_the_probe_port_the_capture_proves() {
    if !common::root_or_skip("fix") {
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide python3");
        eprintln!("skipping fix: python3 is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 1\n  \
             selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
             spec:\n      containers:\n      - name: web\n        image: python:3.11\n        \
             command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n        \
             livenessProbe:\n          httpGet: {{path: /, port: {}}}\n          \
             initialDelaySeconds: 40\n          periodSeconds: 2\n          failureThreshold: 2\n",
            port + 1
        ),
    )
    .unwrap();
    let _run = common::Guard(
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--time-scale", "0.05", "--dns", "127.0.99.45"])
            .arg(&manifest)
            .stdout(log_file(&data))
            .stderr(log_file(&data))
            .spawn()
            .unwrap(),
        "crashscope run",
    );
    let pods = until(&data, &["get", "pods"], 60, |o| o.contains("web-"));
    let pod = pods
        .lines()
        .find(|l| l.starts_with("web-"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let want = format!(
        "$ kubectl patch deployment web -n default --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/livenessProbe/httpGet/port\",\"value\":{port}}}]'"
    );
    let shown = until(&data, &["fix", &pod], 90, |o| o.contains(&want));
    assert!(shown.contains("liveness-probe-misconfigured"), "{shown}");
    // diagnose points at it.
    let told = out(&cs(&data, &["diagnose", &pod]));
    assert!(
        told.contains(&format!("$ crashscope fix {pod} -n default --apply")),
        "{told}"
    );
    let o = cs(&data, &["fix", &pod, "--apply"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("deployment.apps/web patched"),
        "{}",
        out(&o)
    );
    let o = cs(
        &data,
        &["rollout", "status", "deployment/web", "--timeout", "60s"],
    );
    assert!(o.status.success(), "{}", out(&o));
    // The fixed pod is no longer killed: its restart count holds over many probe periods.
    // (It may have restarted while the old pod still held the port: the local runtime's pods
    // share the host's network, as hostNetwork pods do in a cluster.)
    let restarts = |pods: &str| -> Vec<String> {
        pods.lines()
            .filter(|l| l.starts_with("web-"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {} {}", f[0], f[2], f[3])
            })
            .collect()
    };
    let before = until(&data, &["get", "pods"], 30, |o| {
        let r = restarts(o);
        r.len() == 1 && r[0].contains(" Running ")
    });
    std::thread::sleep(Duration::from_secs(4));
    let after = out(&cs(&data, &["get", "pods"]));
    assert_eq!(restarts(&after), restarts(&before), "{before}\n{after}");
}

/// `crashscope fix` for the seed's lesson: a program looks up a Service that was never made,
/// while the Deployment meant to be behind it runs; the capture shows NXDOMAIN for the name,
/// fix prints the Service to create (selector and port from that Deployment's pods), and
/// with --apply the runtime serves it and the program's next start gets past the lookup.
#[test]
fn fix_creates_the_missing_service_a_lookup_needs() {
    if !common::root_or_skip("fix a missing Service") {
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide python3");
        eprintln!("skipping fix a missing Service: python3 is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let manifest = dir.path().join("app.yaml");
    let lookup = format!(
        "import socket, sys, time\ntry:\n    socket.getaddrinfo('api', {port})\nexcept OSError as e:\n    print('lookup of api failed:', e, file=sys.stderr)\n    sys.exit(1)\nprint('api resolves')\nsys.stdout.flush()\ntime.sleep(3600)\n"
    );
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api}}\nspec:\n  replicas: 1\n  \
             selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n    \
             spec:\n      containers:\n      - name: api\n        image: python:3.11\n        \
             command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n        \
             ports: [{{containerPort: {port}}}]\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 1\n  \
             selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
             spec:\n      containers:\n      - name: web\n        image: python:3.11\n        \
             command: [python3, -c, {lookup:?}]\n"
        ),
    )
    .unwrap();
    let _run = common::Guard(
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--time-scale", "0.05", "--dns", "127.0.99.46"])
            .arg(&manifest)
            .stdout(log_file(&data))
            .stderr(log_file(&data))
            .spawn()
            .unwrap(),
        "crashscope run",
    );
    let pods = until(&data, &["get", "pods"], 60, |o| {
        o.lines()
            .any(|l| l.starts_with("web-") && !l.contains(" 0 "))
    });
    let pod = pods
        .lines()
        .find(|l| l.starts_with("web-"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let shown = until(&data, &["fix", &pod], 90, |o| {
        o.contains("create the Service default/api")
    });
    assert!(shown.contains("dns-nxdomain"), "{shown}");
    assert!(shown.contains("$ kubectl apply -f - <<'EOF'"), "{shown}");
    assert!(shown.contains("app: api"), "{shown}");
    assert!(shown.contains(&format!("targetPort: {port}")), "{shown}");
    let o = cs(&data, &["fix", &pod, "--apply"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("service/api created"), "{}", out(&o));
    // The next start resolves the name and stays up.
    until(&data, &["logs", &pod], 120, |o| o.contains("api resolves"));
    until(&data, &["get", "pods"], 30, |o| {
        o.lines()
            .any(|l| l.starts_with(&pod) && l.contains(" Running "))
    });
}
