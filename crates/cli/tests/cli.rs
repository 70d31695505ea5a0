//! The `crashscope` binary as a user runs it: output, exit codes, bad input, the store.

mod common;
use common::text;
use std::path::{Path, PathBuf};
use std::process::Output;

const NOW: &str = "2026-11-28T16:00:00Z";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/k8s")
}

fn crashscope(args: &[&str], data_dir: &Path) -> Output {
    common::crashscope_at(NOW, args, data_dir)
}

#[test]
fn get_pods_prints_kubectls_table_then_the_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("gitops-engine__pod-crashloop.yaml");
    let out = crashscope(&["get", "pods", "-f", f.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NAME     READY   STATUS             RESTARTS         AGE"
    );
    assert_eq!(
        lines[1],
        "my-pod   0/1     CrashLoopBackOff   3 (7y363d ago)   7y363d"
    );
    assert!(stdout.contains("40s (step 3 of 6)"), "{stdout}");
    // --no-headers is kubectl's rows only.
    let out = crashscope(
        &["get", "pods", "-f", f.to_str().unwrap(), "--no-headers"],
        dir.path(),
    );
    assert_eq!(
        text(&out.stdout),
        "my-pod   0/1   CrashLoopBackOff   3 (7y363d ago)   7y363d\n"
    );
}

#[test]
fn json_output_is_the_pod_objects() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("api-replays-v1-34/pod-list.json");
    let out = crashscope(
        &["get", "pods", "-f", f.to_str().unwrap(), "-o", "json"],
        dir.path(),
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().unwrap().len(), 8);
    assert_eq!(v["items"][0]["kind"], "Pod");
    let out = crashscope(
        &[
            "get",
            "pods",
            "coredns-66bc5c9577-2g8hl",
            "-f",
            f.to_str().unwrap(),
            "-o",
            "name",
        ],
        dir.path(),
    );
    assert_eq!(text(&out.stdout), "pod/coredns-66bc5c9577-2g8hl\n");
}

#[test]
fn bad_input_names_file_and_object_keeps_good_objects_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mixed.yaml");
    std::fs::write(
        &bad,
        "kind: Pod\nmetadata: {name: ok, namespace: default}\nspec: {containers: [{name: c}]}\n---\n\
         kind: Service\nmetadata: {name: flask, namespace: default}\n---\n\
         kind: Pod\nmetadata: {name: broken}\nstatus: {containerStatuses: [{name: c, restartCount: lots}]}\n",
    )
    .unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"kind\": \"Pod\", ").unwrap();
    let missing = dir.path().join("missing.yaml");
    let files = format!(
        "{},{},{}",
        bad.display(),
        garbage.display(),
        missing.display()
    );
    let out = crashscope(&["get", "pods", "-f", &files], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains("ok "),
        "the readable pod is printed: {stdout}"
    );
    assert!(
        stderr.contains("mixed.yaml: document 2 (Service default/flask): is a Service, not a Pod"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "mixed.yaml: document 3 (Pod broken): field status.containerStatuses[0].restartCount"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("garbage.json: not valid JSON"), "{stderr}");
    assert!(stderr.contains("missing.yaml: cannot read"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn describe_ends_with_the_crash_loop_section() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("gitops-engine__pod-crashloop.yaml");
    let out = crashscope(
        &["describe", "pod", "my-", "-f", f.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Name:             my-pod\nNamespace:        argocd\n"),
        "{stdout}"
    );
    assert!(stdout.contains("    Back-off:      40s (step 3 of 6), from the kubelet's message\n"));
    assert!(stdout.contains("Next Restart:  Sun, 02 Dec 2018 09:21:05 +0000"));
    let out = crashscope(
        &["describe", "pod", "nope", "-f", f.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pods \"nope\" not found"));
}

#[test]
fn backoff_flags_change_the_estimate_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("gitops-engine__pod-crashloop.yaml");
    // The kubelet's message says 40s, but a 30s cap makes 40s impossible: the step is capped.
    let out = crashscope(
        &[
            "get",
            "pods",
            "-f",
            f.to_str().unwrap(),
            "--backoff-max",
            "30s",
        ],
        dir.path(),
    );
    assert!(text(&out.stdout).contains("of 3)"), "{}", text(&out.stdout));
    let out = crashscope(
        &[
            "get",
            "pods",
            "-f",
            f.to_str().unwrap(),
            "--backoff-max",
            "soon",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--backoff-max \"soon\""));
}

#[test]
fn catalog_lists_sysdig_reasons_with_defaults_and_accepts_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let out = crashscope(&["events", "catalog"], dir.path());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("CLASS"), "{stdout}");
    assert!(stdout
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pod", "BackOff", "warning", "on"]));
    // The crash profile shows what explains a crash; Sysdig's profile keeps its defaults.
    let row = |out: &str, class: &str, reason: &str| {
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() == 4 && w[0] == class && w[1] == reason)
            .map(|w| w[3].to_string())
    };
    assert_eq!(row(&stdout, "pod", "Killing").as_deref(), Some("on"));
    assert_eq!(row(&stdout, "pod", "Failed").as_deref(), Some("on"));
    assert_eq!(row(&stdout, "node", "NodeNotReady").as_deref(), Some("on"));
    let out = crashscope(
        &["events", "catalog", "--event-profile", "sysdig"],
        dir.path(),
    );
    let sysdig = text(&out.stdout);
    assert_eq!(row(&sysdig, "pod", "Killing").as_deref(), Some("off"));
    assert_eq!(row(&sysdig, "node", "NodeNotReady").as_deref(), Some("off"));
    let user = dir.path().join("cat.yaml");
    std::fs::write(
        &user,
        "- {class: node, reason: NodeNotReady, severity: error, enabled: true}\n",
    )
    .unwrap();
    let out = crashscope(
        &[
            "events",
            "catalog",
            "-o",
            "json",
            "--event-catalog",
            user.to_str().unwrap(),
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "NodeNotReady")
        .unwrap();
    assert_eq!(
        (row["severity"].as_str(), row["enabled"].as_bool()),
        (Some("error"), Some(true))
    );
    std::fs::write(
        &user,
        "- {class: pod, reason: X, severity: loud, enabled: true}\n",
    )
    .unwrap();
    let out = crashscope(
        &[
            "events",
            "catalog",
            "--event-catalog",
            user.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cat.yaml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ingest_then_events_reads_back_deduplicated_events_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("events.yaml");
    let ev = |count: u32, last: &str| {
        format!(
            "- kind: Event\n  metadata: {{name: nginx.1, namespace: default}}\n  \
             involvedObject: {{kind: Pod, name: nginx-1, namespace: default, fieldPath: 'spec.containers{{nginx}}'}}\n  \
             reason: BackOff\n  type: Warning\n  message: Back-off restarting failed container nginx\n  \
             count: {count}\n  firstTimestamp: '2026-11-28T15:50:00Z'\n  lastTimestamp: '{last}'\n  \
             source: {{component: kubelet, host: node-1}}\n"
        )
    };
    // The same Event object, then MODIFIED with a higher count: one occurrence.
    std::fs::write(
        &feed,
        format!(
            "kind: List\nitems:\n{}{}- kind: Event\n  metadata: {{name: nginx.2, namespace: default}}\n  involvedObject: {{kind: Pod, name: nginx-1, namespace: default}}\n  reason: Killing\n  message: Stopping container nginx\n  firstTimestamp: '2026-11-28T15:51:00Z'\n",
            ev(1, "2026-11-28T15:50:00Z"),
            ev(6, "2026-11-28T15:58:00Z")
        ),
    )
    .unwrap();
    let out = crashscope(&["ingest", "-f", feed.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 events (2 new, 1 updated)"),
        "{}",
        text(&out.stdout)
    );
    // The crash profile shows the kill that explains a restart.
    let out = crashscope(&["events", "-o", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    let out = crashscope(
        &["events", "-o", "json", "--event-profile", "sysdig"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Killing is off in Sysdig's defaults, so only BackOff is listed.
    let evs = v.as_array().unwrap();
    assert_eq!(evs.len(), 1, "{v}");
    assert_eq!(evs[0]["count"], 6);
    assert_eq!(evs[0]["severity"], "warning");
    assert_eq!(evs[0]["scope"]["container"], "nginx");
    let out = crashscope(&["events", "--all"], dir.path());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("LAST SEEN"), "{stdout}");
    assert!(stdout.contains("Killing"), "{stdout}");
    assert!(stdout.contains("pod/nginx-1 [nginx]"), "{stdout}");
    // Where each event came from: the cluster's, not a custom event's.
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let source = header
        .iter()
        .position(|h| *h == "SOURCE")
        .expect("a SOURCE column");
    let row: Vec<&str> = stdout
        .lines()
        .nth(1)
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(row.get(source), Some(&"kubernetes"), "{stdout}");
}

#[test]
fn captures_kept_on_a_node_are_listed_from_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let caps = dir.path().join("captures");
    std::fs::create_dir_all(&caps).unwrap();
    std::fs::write(caps.join("shop_web-7d4f_app_2.scap"), b"x").unwrap();
    std::fs::write(caps.join("shop_web-7d4f_app_2-request-17.scap"), b"xy").unwrap();
    std::fs::write(caps.join("notes.txt"), b"not a capture").unwrap();
    let out = crashscope(&["captures", "-o", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list
        .iter()
        .all(|c| c["namespace"] == "shop" && c["pod"] == "web-7d4f" && c["restart"] == 2));
}

#[test]
fn completion_scripts_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = crashscope(&["completion", shell], dir.path());
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(script.contains("crashscope"), "{shell}");
    }
}

/// The values bash offers after `words` (flags left out).
fn bash_completes(data_dir: &Path, words: &[&str]) -> Vec<String> {
    bash_completes_all(data_dir, words)
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect()
}

/// What bash offers after `words` (the last one being typed), with the script of
/// `crashscope completion bash` sourced — the function bash calls on Tab, run by real bash.
fn bash_completes_all(data_dir: &Path, words: &[&str]) -> Vec<String> {
    let script = text(&crashscope(&["completion", "bash"], data_dir).stdout);
    let file = data_dir.join("completion.bash");
    std::fs::write(&file, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let program = format!(
        "source {file}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9; \
         _clap_complete_crashscope crashscope {cur} {prev}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file = file.display(),
        words = quoted.join(" "),
        cur = quoted[cword],
        prev = quoted[cword.saturating_sub(1)],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &program])
        .env("CRASHSCOPE_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_and_the_stores_pod_names() {
    use crashscope_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = crashscope_store::SqlStore::open(&dir.path().join("crashscope.db"))
            .await
            .unwrap();
        for (ns, name) in [
            ("default", "web-1"),
            ("default", "worker-2"),
            ("shop", "web-9"),
        ] {
            let pod = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": name},
                "spec": {"containers": [{"name": "main", "image": "x"}]},
            });
            store.put_object("Pod", ns, name, &pod).await.unwrap();
        }
    });
    let offered = bash_completes(dir.path(), &["crashscope", "lo"]);
    assert_eq!(offered, vec!["logs"]);
    // The test clock is not a user's flag: nothing offers it.
    let flags = bash_completes_all(dir.path(), &["crashscope", "get", "pods", "--"]);
    assert!(flags.iter().any(|f| f == "--output"), "{flags:?}");
    assert!(!flags.iter().any(|f| f == "--now"), "{flags:?}");
    // Pod names from the store, in the namespace the line names.
    assert_eq!(
        bash_completes(dir.path(), &["crashscope", "logs", "w"]),
        vec!["web-1", "worker-2"]
    );
    assert_eq!(
        bash_completes(
            dir.path(),
            &["crashscope", "describe", "pod", "-n", "shop", ""]
        ),
        vec!["web-9"]
    );
    assert_eq!(
        bash_completes(dir.path(), &["crashscope", "diagnose", "wo"]),
        vec!["worker-2"]
    );
    // No store where the line points: nothing offered, and none created.
    let empty = tempfile::tempdir().unwrap();
    let words = [
        "crashscope",
        "logs",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "",
    ];
    assert!(bash_completes(dir.path(), &words).is_empty());
    assert!(!empty.path().join("crashscope.db").exists());
}

#[test]
fn inspect_prints_sysdig_lines_json_and_fails_after_damage() {
    let dir = tempfile::tempdir().unwrap();
    let cap = fixtures().join("../scap/curl_google.scap");
    let out = crashscope(
        &[
            "inspect",
            cap.to_str().unwrap(),
            "--events",
            "-f",
            "proc.name=curl and evt.type=connect",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.lines().count() >= 2, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains(" curl (") && l.contains(" connect ")),
        "{stdout}"
    );
    let out = crashscope(
        &[
            "inspect",
            cap.to_str().unwrap(),
            "--events",
            "-o",
            "json",
            "-f",
            "evt.type=open",
        ],
        dir.path(),
    );
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "open");
    assert_eq!(first["proc_name"], "curl");
    let out = crashscope(
        &[
            "inspect",
            cap.to_str().unwrap(),
            "--events",
            "-f",
            "proc.nme=x",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown field \"proc.nme\""));
    // A damaged capture: the events before the damage, then the error with its offset.
    let sample = std::fs::read(fixtures().join("../scap/sample.scap")).unwrap();
    let cut = dir.path().join("cut.scap");
    std::fs::write(&cut, &sample[..100_001]).unwrap();
    let out = crashscope(&["inspect", cut.to_str().unwrap(), "--events"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("cut.scap: at byte ")
            && text(&out.stderr).contains("file truncated"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_views_tables_json_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cap = fixtures().join("../scap/curl_google.scap");
    let cap = cap.to_str().unwrap();
    // The default view is the summary.
    let out = crashscope(&["inspect", cap], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("TILE"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("failed system calls") && l.contains(" 43 ")),
        "{s}"
    );
    // DNS decoded from the capture's payloads: curl's AAAA query and Google's answer.
    let out = crashscope(&["inspect", cap, "dns", "-o", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["view"], "dns");
    assert_eq!(v["rows"][0]["query"], "www.google.com.");
    assert_eq!(v["rows"][0]["type"], "AAAA");
    assert_eq!(v["rows"][0]["result"], "No Error");
    assert_eq!(v["rows"][0]["server"], "2001:4860:4860::8888:53");
    assert!(v["rows"][0]["answers"]
        .as_str()
        .unwrap()
        .contains("2607:f8b0:4004:802::2004"));
    // io of one file shows its contents.
    let out = crashscope(
        &["inspect", cap, "io", "-f", "fd.name=/etc/hosts"],
        dir.path(),
    );
    assert!(
        text(&out.stdout).contains("127.0.0.1 localhost"),
        "{}",
        text(&out.stdout)
    );
    // Time range: a range that starts after the capture ends is an error, not an empty table.
    let out = crashscope(
        &["inspect", cap, "procs", "--from", "1h", "-o", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("outside the capture"));
    // A bad filter: the position and what was expected, exit 1.
    let out = crashscope(
        &["inspect", cap, "errors", "-f", "proc.name=curl and"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("invalid filter at column 19") && e.contains("expected a field name"),
        "{e}"
    );
    // A filter that matches nothing says so on stderr.
    let out = crashscope(
        &["inspect", cap, "files", "-f", "proc.name=nginx"],
        dir.path(),
    );
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("no event matches"),
        "{}",
        text(&out.stderr)
    );
    // --list-fields
    let out = crashscope(&["inspect", "--list-fields"], dir.path());
    assert!(text(&out.stdout).contains("k8s.pod.name"));
    // A damaged capture: the view of what came before the damage, marked incomplete, exit 1.
    let sample = std::fs::read(fixtures().join("../scap/sample.scap")).unwrap();
    let cut = dir.path().join("cut.scap");
    std::fs::write(&cut, &sample[..100_001]).unwrap();
    let out = crashscope(&["inspect", cut.to_str().unwrap(), "procs"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("incomplete: the capture is damaged"));
    assert!(text(&out.stderr).contains("cut.scap: at byte "));
}

#[test]
fn serve_refuses_a_rule_file_whose_receiver_is_wrong_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "notify:\n- webhook: https://hooks.example/crash\n- slack: hooks.slack.com/x\n\
         rules:\n- name: R\n  event: {reason: [BackOff], window: 5m}\n",
    )
    .unwrap();
    let out = crashscope(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rules",
            rules.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "rules.yaml: notify[1]: \"hooks.slack.com/x\" is not an http:// or https:// URL"
        ),
        "{err}"
    );
}

#[test]
fn diagnose_names_the_cause_of_real_pods() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("insights-operator__openshift-monitoring_prometheus-k8s-0.json");
    let out = crashscope(
        &["diagnose", "-A", "-f", f.to_str().unwrap(), "-o", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v[0];
    assert_eq!(d["container"], "prometheus");
    assert_eq!(d["causes"][0]["id"], "config-file-missing");
    assert!(d["causes"][0]["evidence"][0]["pointer"]
        .as_str()
        .unwrap()
        .starts_with("status.containerStatuses["));
    // The table names cause, summary, evidence and remedy.
    let out = crashscope(
        &[
            "diagnose",
            "prometheus-k8s-0",
            "-n",
            "openshift-monitoring",
            "-f",
            f.to_str().unwrap(),
        ],
        dir.path(),
    );
    let t = text(&out.stdout);
    for want in [
        "Cause:",
        "config-file-missing",
        "/etc/prometheus/config_out/prometheus.env.yaml",
        "Evidence:",
        "Remedy:",
    ] {
        assert!(t.contains(want), "{want} missing in {t}");
    }
    // Exit 1 with nothing else: the engine abstains and says what would decide.
    let f = fixtures().join("gitops-engine__pod-crashloop.yaml");
    let out = crashscope(
        &[
            "diagnose",
            "my-pod",
            "-n",
            "argocd",
            "-f",
            f.to_str().unwrap(),
            "-o",
            "wide",
        ],
        dir.path(),
    );
    let t = text(&out.stdout);
    assert!(t.contains("unknown"), "{t}");
    assert!(t.contains("Confirm:"), "{t}");
    // The views that show a crash carry its cause.
    let out = crashscope(
        &["describe", "pod", "my-pod", "-f", f.to_str().unwrap()],
        dir.path(),
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("    Cause:         unknown: no evidence decides"),
        "{t}"
    );
    let p = fixtures().join("insights-operator__openshift-monitoring_prometheus-k8s-0.json");
    let out = crashscope(
        &["get", "incidents", "-A", "-f", p.to_str().unwrap()],
        dir.path(),
    );
    let t = text(&out.stdout);
    assert!(t.lines().next().unwrap().ends_with("CAUSE"), "{t}");
    assert!(t.contains("config-file-missing"), "{t}");
}

#[test]
fn diagnose_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("gitops-engine__pod-crashloop.yaml");
    let out = crashscope(
        &["diagnose", "nope", "-A", "-f", f.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pods \"nope\" not found"),
        "{}",
        text(&out.stderr)
    );
    // A pod whose containers never crashed.
    let ok = fixtures().join("gitops-engine__pod-running-not-ready.yaml");
    let out = crashscope(
        &["diagnose", "-A", "-f", ok.to_str().unwrap(), "never-ready"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no container has crashed"),
        "{}",
        text(&out.stderr)
    );
    // A file that is not a capture is named, with what is wrong.
    let out = crashscope(&["diagnose", "--capture", f.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("gitops-engine__pod-crashloop.yaml") && err.contains("not a scap capture"),
        "{err}"
    );
    // A capture alone: curl exited 0, so there is no crash to claim.
    let cap = fixtures().join("../scap/curl_google.scap");
    let out = crashscope(
        &["diagnose", "--capture", cap.to_str().unwrap(), "-o", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["causes"][0]["id"], "unknown");
    assert!(v[0]["causes"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("curl"));
}

#[test]
fn delete_of_what_is_not_there_fails_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
    )
    .unwrap();
    let f = manifest.to_str().unwrap();
    let out = crashscope(&["apply", "-f", f], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Stored, and said not to be running: no runtime uses this directory.
    assert!(
        text(&out.stderr).contains("no local runtime is running on"),
        "{}",
        text(&out.stderr)
    );
    let out = crashscope(&["delete", "-f", f], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "configmap \"settings\" deleted\n");
    let out = crashscope(&["delete", "-f", f], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error from server (NotFound): configmaps \"settings\" not found\n"
    );
}

#[test]
fn a_missing_capture_is_named_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.scap");
    let out = crashscope(&["inspect", missing.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the reason is said once: {err}"
    );
    assert!(err.contains("gone.scap"), "{err}");
}

#[test]
fn describe_incidents_shows_the_changes_made_just_before_the_crash_loop() {
    let dir = tempfile::tempdir().unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-5d8f9c-x2x7q", "namespace": "shop", "uid": "u1",
            "labels": {"app": "web", "pod-template-hash": "5d8f9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-5d8f9c", "uid": "rs1", "controller": true}],
            "creationTimestamp": "2026-12-07T09:50:00Z"
        },
        "spec": {"containers": [{"name": "app", "image": "shop/web:2.0"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "shop/web:2.0", "imageID": "", "ready": false,
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2026-12-07T09:55:59Z", "finishedAt": "2026-12-07T09:56:00Z"}}
        }]}
    });
    let event = |name: &str, ns: &str, at: &str, msg: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": ns},
            "reason": "ScalingReplicaSet", "message": msg, "type": "Normal",
            "source": {"component": "deployment-controller"},
            "firstTimestamp": at, "lastTimestamp": at, "count": 1
        })
    };
    let events = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        event("web.1", "shop", "2026-12-07T09:53:00Z", "Scaled up replica set web-5d8f9c from 0 to 1"),
        event("web.0", "shop", "2026-12-07T07:00:00Z", "Scaled up replica set web-41aa02 from 0 to 1"),
        event("web.2", "other", "2026-12-07T09:54:00Z", "Scaled up replica set web-9 from 0 to 1"),
    ]});
    let p = dir.path().join("pod.json");
    let e = dir.path().join("events.json");
    std::fs::write(&p, pod.to_string()).unwrap();
    std::fs::write(&e, events.to_string()).unwrap();
    let files = format!("{},{}", p.display(), e.display());
    let out = crashscope(&["describe", "incidents", "-A", "-f", &files], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let rows: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("Changes:"))
        .skip(3)
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "only the rollout of this namespace within the hour:\n{t}"
    );
    assert!(rows[0].contains("3m before the first crash"), "{t}");
    assert!(rows[0].contains("ScalingReplicaSet"), "{t}");
    assert!(
        rows[0].contains("Scaled up replica set web-5d8f9c from 0 to 1"),
        "{t}"
    );
}
