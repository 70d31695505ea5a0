//! `crashscope logs` on the local runtime (root): `-f` ends when the container does, as
//! kubectl's does, `-p -f` prints the previous instance and returns, and each line has the
//! time it was written (`--timestamps`, `--since`, `--since-time`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `crashscope logs ARGS` and waits at most `secs` for it to end.
fn logs(dir: &std::path::Path, args: &[&str], secs: u64) -> Option<(bool, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(dir)
        .arg("logs")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Some((st.success(), common::text(&out.stdout)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs `manifest` (one pod) on the local runtime in `dir`, with the cluster DNS on `dns`,
/// and waits until the container `args` name has logged; the runtime and its data dir.
fn running(
    dir: &std::path::Path,
    manifest: &str,
    dns: &str,
    args: &[&str],
) -> (std::process::Child, std::path::PathBuf) {
    let file = dir.join("pod.yaml");
    std::fs::write(&file, manifest).unwrap();
    let data = dir.join("data");
    let run = Command::new(env!("CARGO_BIN_EXE_crashscope"))
        .arg("--data-dir")
        .arg(&data)
        .args(["run", "--time-scale", "0.05", "--dns", dns])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while logs(&data, args, 5).is_none_or(|(ok, _)| !ok) {
        assert!(Instant::now() < deadline, "the pod never logged");
        std::thread::sleep(Duration::from_millis(200));
    }
    (run, data)
}

#[test]
fn follow_ends_with_the_container_and_previous_returns_at_once() {
    if !common::root_or_skip("follow_ends_with_the_container_and_previous_returns_at_once") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut run, data) = running(
        dir.path(),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: talker}\nspec:\n  containers:\n  - name: sidecar\n    image: x\n    command: [sh, -c, 'echo side; sleep 600']\n  - name: main\n    image: x\n    command: [sh, -c, 'echo started; sleep 2; echo done; exit 1']\n",
        "127.0.99.44",
        &["talker", "-c", "main"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    // The running instance ends within its 2 s: -f ends with it, its last line printed.
    let followed = logs(&data, &["talker", "-c", "main", "-f"], 15);
    let (ok, text) = followed.expect("logs -f did not end when the container did");
    assert!(ok && text.ends_with("done\n"), "{text}");
    while logs(&data, &["talker", "-p"], 5).is_none_or(|(ok, _)| !ok) {
        assert!(Instant::now() < deadline, "no previous instance");
        std::thread::sleep(Duration::from_millis(200));
    }
    let previous = logs(&data, &["talker", "-p", "-f"], 5);
    let (ok, text) = previous.expect("logs -p -f waited on a container that has ended");
    assert!(ok, "{text}");
    assert_eq!(text, "started\ndone\n");
    // Without -c: the crash-looping container, not the first one listed; --tail as kubectl.
    let (ok, text) = logs(&data, &["talker", "-p", "--tail", "1"], 5).expect("logs -p ended");
    assert!(ok && text == "done\n", "{text}");
    // Each line has the time it was written (the instance slept 2 s between its lines), and
    // --since-time keeps the lines from that time on.
    let (ok, text) = logs(&data, &["talker", "-p", "--timestamps"], 5).expect("logs ended");
    assert!(ok, "{text}");
    let times: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(times.len(), 2, "{text}");
    assert_eq!((times[0].1, times[1].1), ("started", "done"), "{text}");
    let (t0, t1): (jiff::Timestamp, jiff::Timestamp) =
        (times[0].0.parse().unwrap(), times[1].0.parse().unwrap());
    assert!(
        t1.duration_since(t0) >= jiff::SignedDuration::from_millis(1500),
        "{text}"
    );
    let (ok, text) =
        logs(&data, &["talker", "-p", "--since-time", times[1].0], 5).expect("logs ended");
    assert!(ok && text == "done\n", "{text}");
    let (ok, text) = logs(&data, &["talker", "-p", "--since", "1h"], 5).expect("logs ended");
    assert!(ok && text == "started\ndone\n", "{text}");
    // Every container, in spec order.
    let (ok, text) = logs(&data, &["talker", "--all-containers"], 5).expect("logs ended");
    assert!(
        ok && text.starts_with("side\n") && text.contains("started\n"),
        "{text}"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let _ = run.wait();
}

#[test]
fn get_watch_prints_a_row_each_time_a_pod_or_incident_changes() {
    if !common::root_or_skip("get_watch_prints_a_row_each_time_a_pod_or_incident_changes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut run, data) = running(
        dir.path(),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: flaky}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'sleep 1; exit 1']\n",
        "127.0.99.45",
        &["flaky"],
    );
    let watching = |what: &str| {
        Command::new(env!("CARGO_BIN_EXE_crashscope"))
            .arg("--data-dir")
            .arg(&data)
            .args(["get", what, "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut watch, mut incidents) = (watching("pods"), watching("incidents"));
    std::thread::sleep(Duration::from_secs(8));
    let _ = watch.kill();
    let _ = incidents.kill();
    let out = watch.wait_with_output().unwrap();
    let inc = common::text(&incidents.wait_with_output().unwrap().stdout);
    // The incident is listed, then again as its restarts rise.
    let inc_rows = inc.lines().filter(|l| l.contains("flaky")).count();
    assert!(inc_rows >= 2, "{inc}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let _ = run.wait();
    let text = common::text(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{text}");
    let rows: Vec<&&str> = lines.iter().filter(|l| l.starts_with("flaky ")).collect();
    // The first listing, then at least one change (an exit, a back-off, a restart).
    assert!(rows.len() >= 2, "{text}");
    // Each printed row differs from the one before it in something but the ages.
    let state = |l: &str| -> Vec<String> {
        let w: Vec<&str> = l.split_whitespace().collect();
        vec![w[1].into(), w[2].into(), w[3].into()]
    };
    for pair in rows.windows(2) {
        assert_ne!(state(pair[0]), state(pair[1]), "{text}");
    }
}
