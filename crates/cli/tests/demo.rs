//! The reference story end to end, as a user runs it: `crashscope demo` with Debian's nginx,
//! the cluster DNS, the kubelet back-off and the recovery once the Service exists.
//! Needs root and nginx: on CI (CI set) their absence fails the test; elsewhere it is skipped
//! with a printed reason.

use std::process::Command;

fn ready(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let nginx = std::path::Path::new("/usr/sbin/nginx").exists();
    if root && nginx {
        return true;
    }
    let why = if !root {
        "root"
    } else {
        "nginx (apt-get install nginx)"
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs {why} and CI must provide it");
    }
    eprintln!("skipping {test}: needs {why}");
    false
}

#[test]
fn demo_tells_the_reference_story() {
    if !ready("demo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args([
            "demo",
            "--time-scale",
            "0.05",
            "--dns",
            "127.0.99.30",
            "--port",
            "18080",
        ])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Piped: plain text, no terminal escapes.
    assert!(
        !stdout.contains('\x1b'),
        "escape codes in a pipe:\n{stdout}"
    );
    // 1. kubectl's view: the pod crash-loops.
    let crash_line = stdout
        .lines()
        .find(|l| l.starts_with("nginx-") && l.contains("CrashLoopBackOff"))
        .unwrap_or_else(|| panic!("no crash-looping nginx row:\n{stdout}"));
    assert!(crash_line.contains("0/1"), "{crash_line}");
    // describe: last state Terminated, Error, exit code 1, BackOff events.
    assert!(
        stdout.contains(
            "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Warning  BackOff"), "{stdout}");
    assert!(
        stdout.contains("Back-off restarting failed container nginx in pod nginx-"),
        "{stdout}"
    );
    // crashscope's addition.
    assert!(stdout.contains("Crash Loop (crashscope):"), "{stdout}");
    // The log line of the previous instance says why.
    assert!(
        stdout.contains(
            "[emerg] 1#1: host not found in upstream \"flask\" in /etc/nginx/nginx.conf:15"
        ),
        "{stdout}"
    );
    // Proof from the eBPF flight recorder: the capture written when nginx died shows it
    // asking the cluster DNS for flask, getting NXDOMAIN for every search domain, and
    // exiting 1 — in the pod's container.
    let proof = stdout
        .split("4b. Proof")
        .nth(1)
        .and_then(|s| s.split("5. Create").next())
        .unwrap_or_else(|| panic!("no capture section:\n{stdout}"));
    // The capture is listed for the pod's first crash (restart 0).
    assert!(
        proof.lines().any(|l| l.starts_with("default ")
            && l.contains(" nginx-")
            && l.split_whitespace().nth(2) == Some("nginx")
            && l.split_whitespace().nth(3) == Some("0")),
        "no capture listed:\n{proof}"
    );
    let nginx_row = proof
        .lines()
        .find(|l| l.contains("nginx -e stderr"))
        .unwrap_or_else(|| panic!("no nginx process in the capture:\n{proof}"));
    assert!(
        nginx_row.split_whitespace().any(|c| c == "1"),
        "nginx's exit code 1 missing: {nginx_row}"
    );
    let query = proof
        .lines()
        .find(|l| l.contains("flask.default.svc.cluster.local."))
        .unwrap_or_else(|| panic!("no DNS query for flask:\n{proof}"));
    assert!(query.contains("127.0.99.30:53"), "{query}");
    assert!(query.contains("Non-Existent Domain"), "{query}");
    // The engine concludes from that capture: the name does not exist, proven by the DNS
    // answers in the capture and the log line, with the remedy.
    let conclusion = stdout
        .split("4c. The conclusion")
        .nth(1)
        .and_then(|s| s.split("5. Create").next())
        .unwrap_or_else(|| panic!("no conclusion section:\n{stdout}"));
    assert!(
        conclusion.contains("Cause:    dns-nxdomain"),
        "{conclusion}"
    );
    assert!(conclusion.contains("\"flask\""), "{conclusion}");
    let evidence = conclusion
        .lines()
        .find(|l| l.contains("Evidence:"))
        .unwrap_or_else(|| panic!("{conclusion}"));
    assert!(
        evidence.contains("[capture]") && evidence.contains(".scap event #"),
        "{evidence}"
    );
    assert!(conclusion.contains("Remedy:"), "{conclusion}");
    // sysdig reads the same capture and puts nginx in the pod's container.
    let cap = proof
        .lines()
        .find_map(|l| l.strip_prefix("$ crashscope inspect "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{proof}"));
    let sysdig = Command::new("sysdig")
        .args([
            "-r",
            cap,
            "-p",
            "%container.name %k8s.pod.name %evt.type %evt.args",
        ])
        .arg("evt.type=procexit")
        .output()
        .expect("sysdig is installed");
    let seen = String::from_utf8_lossy(&sysdig.stdout);
    assert!(sysdig.status.success(), "{seen}");
    assert!(
        seen.lines()
            .any(|l| l.starts_with("nginx nginx-") && l.contains("status=256 ret=1")),
        "sysdig on {cap}:\n{seen}"
    );
    // And shows the story in nginx's own calls: the resolver's configuration read, the
    // question sent to the cluster DNS (glibc sends A and AAAA with one sendmmsg on a
    // connected socket), then exit_group(1).
    let calls = Command::new("sysdig")
        .args(["-r", cap, "proc.name=nginx"])
        .output()
        .expect("sysdig is installed");
    let calls = String::from_utf8_lossy(&calls.stdout);
    let after = |from: usize, pred: &dyn Fn(&str) -> bool| {
        calls
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| pred(l))
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("sysdig on {cap}, from line {from}:\n{calls}"))
    };
    let resolv = after(0, &|l| {
        l.contains("< openat fd=") && l.contains("name=/etc/resolv.conf")
    });
    let dns = after(resolv, &|l| {
        (l.contains("< connect res=0") || l.contains("< sendto")) && l.contains(":53")
    });
    let send = after(dns, &|l| l.contains("> sendmmsg") || l.contains("> sendto"));
    let exit = after(send, &|l| l.contains("> exit_group"));
    after(exit, &|l| l.contains("> procexit status=256 ret=1"));
    // Recovery: Running, and nginx serves the backend's page.
    let after = stdout
        .split("6. nginx recovered")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("nginx-") && l.contains("1/1") && l.contains("Running")),
        "{after}"
    );
    assert!(after.contains("hello from flask"), "{after}");
}

#[test]
fn run_rejects_bad_manifests_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "kind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: a, command: [sleep, '1']}]}\n---\n\
         kind: CronJob\nmetadata: {name: nightly}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("run")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("bad.yaml: document 2 (CronJob nightly): kind \"CronJob\" is not supported"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    // Nothing was stored.
    let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["get", "pods", "-A"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
}
