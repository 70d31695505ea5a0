//! The diagnosis corpus: every manifest of `scenarios/` (one per cause, its expected cause in
//! its first line) runs in one local-runtime batch with the flight recorder; once each has
//! crashed, `crashscope diagnose -A` must name the expected cause first, for the expected
//! container, citing the capture wherever the recorder wrote one.
//! Needs root (namespaces, cgroups, eBPF), python3 and nginx: on CI (CI set) their absence
//! fails the test; elsewhere it is skipped with a printed reason.

mod common;
use common::text;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (file, namespace, expected cause, init container, no capture expected)
fn scenarios() -> Vec<(PathBuf, String, String, bool, bool)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let body = std::fs::read_to_string(&path).unwrap();
        let first = body.lines().next().unwrap_or("");
        let expect = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: the first line must be `# expect: ID`", path.display()));
        let (id, init) = match expect.strip_suffix(" (init)") {
            Some(id) => (id.to_string(), true),
            None => (expect.to_string(), false),
        };
        // Each scenario's namespace is its file name.
        let ns = path.file_stem().unwrap().to_string_lossy().into_owned();
        let no_capture = body
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("# capture: none"));
        out.push((path, ns, id, init, no_capture));
    }
    out.sort();
    out
}

struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        // SIGINT, as Ctrl-C: the runtime stops every container.
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

#[test]
fn every_scenario_is_diagnosed_as_its_cause() {
    if !common::root_or_skip("scenarios") {
        return;
    }
    for tool in ["/usr/bin/python3", "/usr/sbin/nginx"] {
        if !Path::new(tool).exists() {
            assert!(std::env::var_os("CI").is_none(), "CI must provide {tool}");
            eprintln!("skipping scenarios: {tool} is missing");
            return;
        }
    }
    let list = scenarios();
    assert!(list.len() >= 20, "{} scenarios", list.len());
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_crashscope");
    let mut run = Command::new(exe);
    run.arg("--data-dir")
        .arg(dir.path())
        .args(["run", "--time-scale", "0.05", "--dns", "127.0.99.41"])
        .args(list.iter().map(|s| &s.0))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _run = Stop(run.spawn().unwrap());
    let diagnose = || {
        let out = Command::new(exe)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["diagnose", "-A", "-o", "json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    // Wait until every scenario is diagnosed, or give up after two minutes and report what
    // there is.
    let start = Instant::now();
    let mut got = serde_json::Value::Null;
    while start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_secs(3));
        got = diagnose();
        // Ready: the expected cause is found, and the capture is in where the recorder
        // writes one (not for programs that never ran or that exited 0).
        let ready = list.iter().all(|(_, ns, id, _, no_capture)| {
            got.as_array().into_iter().flatten().any(|d| {
                d["namespace"] == ns.as_str()
                    && d["causes"][0]["id"] == id.as_str()
                    && (*no_capture
                        || d["inputs"]
                            .as_array()
                            .is_some_and(|i| !i.iter().any(|x| x == "capture: none")))
            })
        });
        if ready {
            break;
        }
    }
    // Per id: what the engine said, and whether it cited the capture it had.
    let mut report = BTreeMap::new();
    let mut wrong = Vec::new();
    for (_, ns, id, init, _) in &list {
        let d = got
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["namespace"] == ns.as_str());
        let Some(d) = d else {
            wrong.push(format!("{ns}: not diagnosed"));
            continue;
        };
        let top = &d["causes"][0];
        let had_capture = d["inputs"].as_array().is_some_and(|i| {
            i.iter()
                .any(|x| x.as_str().is_some_and(|s| s.starts_with("capture: /")))
        });
        let cites = top["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["source"] == "capture"));
        report.insert(
            ns.clone(),
            format!(
                "{} ({}), capture {}",
                top["id"],
                top["confidence"],
                if had_capture {
                    if cites {
                        "cited"
                    } else {
                        "NOT cited"
                    }
                } else {
                    "none"
                }
            ),
        );
        if top["id"] != id.as_str() {
            wrong.push(format!(
                "{ns}: expected {id}, got {} — {}",
                top["id"], top["summary"]
            ));
        }
        if d["init"].as_bool() != Some(*init) {
            wrong.push(format!("{ns}: init should be {init}"));
        }
        if had_capture && !cites {
            wrong.push(format!("{ns}: the capture was there but not cited"));
        }
        // An OOM kill at the limit is proven with the cgroup's own accounting, which the
        // runtime wrote into the capture.
        let accounted = top["evidence"].as_array().is_some_and(|e| {
            e.iter().any(|e| {
                e["source"] == "capture"
                    && e["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("out of memory: the container used"))
            })
        });
        if id == "oom-limit" && had_capture && !accounted {
            wrong.push(format!(
                "{ns}: the memory used against the limit is not cited"
            ));
        }
    }
    for (ns, r) in &report {
        eprintln!("{ns:32} {r}");
    }
    assert!(
        wrong.is_empty(),
        "{}\n\nlast diagnose:\n{}",
        wrong.join("\n"),
        text(
            serde_json::to_string_pretty(&got)
                .unwrap_or_default()
                .as_bytes()
        )
    );
}
