//! Golden tests of the kubectl views on every real Pod in ../shared/fixtures/k8s, including
//! the pods inside the recorded API exchanges of a kind v1.34 cluster.
//!
//! The expected STATUS / READY / RESTARTS of each pod is written out below with the kubectl
//! rule that produces it; the full tables and describe texts are golden files (review them
//! when regenerating with `UPDATE_GOLDEN=1 cargo test -p crashscope-kube --test fixtures`).
//! Time-dependent columns are computed at a fixed "now", in UTC.

use crashscope_kube::load::{Loaded, Want};
use crashscope_kubectl::crashloop::{crash_loop_section, crash_loops};
use crashscope_kubectl::describe::{describe_pod, DescribeContext};
use crashscope_kubectl::get::{pod_row, pods_table, TableOptions};
use crashscope_model::backoff::BackoffPolicy;
use jiff::{tz::TimeZone, Timestamp};
use std::path::{Path, PathBuf};

const NOW: &str = "2026-11-28T16:00:00Z";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/k8s")
}

fn load(rel: &str) -> Loaded {
    let path = fixtures().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} missing: {e}", path.display()));
    let mut l = Loaded::default();
    l.add_text(
        rel,
        &text,
        Want {
            pods: true,
            events: true,
        },
    );
    assert!(l.errors.is_empty(), "{rel}: {:?}", l.errors);
    l
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} missing: {e}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

/// (file, pod name, READY, STATUS, RESTARTS, why)
const EXPECTED: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("gitops-engine__pod-crashloop.yaml", "my-pod", "0/1", "CrashLoopBackOff", "3 (7y363d ago)",
     "the only container is Waiting with reason CrashLoopBackOff; restarts 3 with the age of lastState.terminated.finishedAt 2018-12-02T09:20:25Z"),
    ("gitops-engine__pod-error.yaml", "my-pod", "0/1", "Error", "2 (7y363d ago)",
     "state.terminated has reason Error, which wins over phase Running"),
    ("gitops-engine__pod-failed.yaml", "my-pod", "0/1", "Error", "0",
     "terminated reason Error; no lastState.terminated, so no '(ago)' suffix"),
    ("gitops-engine__pod-imagepullbackoff.yaml", "guestbook-ui-errimagepullbackoff-66cfffb669-45w2j", "0/1", "ImagePullBackOff", "0",
     "Waiting reason ImagePullBackOff replaces phase Pending"),
    ("gitops-engine__pod-running-not-ready.yaml", "never-ready", "0/1", "Running", "0",
     "a running container that is not ready matches no case: STATUS stays the phase, READY does not count it"),
    ("insights-operator__di-288312_auditlog-retention-28566720-t22qj.json", "auditlog-retention-28566720-t22qj", "0/1", "Error", "0",
     "Job pod: terminated reason Error (exit 3); phase Failed does not change the cell"),
    ("insights-operator__openshift-monitoring_prometheus-k8s-0.json", "prometheus-k8s-0", "7/7", "Running", "1 (5y144d ago)",
     "all 7 containers running and ready; one restart of the prometheus container"),
    ("insights-operator__openshift-operator-lifecycle-manager_packageserver-6d96bf85f8-kqfkr.json", "packageserver-6d96bf85f8-kqfkr", "1/1", "Running", "17 (5y144d ago)",
     "running and ready after 17 restarts; the suffix ages lastState.terminated.finishedAt"),
    ("api-replays-v1-34/job-create.json", "k8s-openapi-tests-create-job-98gs2", "0/1", "Error", "0",
     "restartPolicy Never: the container terminated with reason Error (exit 5) and is not restarted"),
    ("api-replays-v1-34/pod-list.json", "coredns-66bc5c9577-2g8hl", "1/1", "Running", "0",
     "running and ready, never restarted"),
    ("api-replays-v1-34/pod-list.json", "kube-scheduler-v1.34-control-plane", "1/1", "Running", "0",
     "static pod, running and ready"),
];

#[test]
fn every_fixture_pod_has_the_status_kubectl_prints() {
    for (file, name, ready, status, restarts, why) in EXPECTED {
        let l = load(file);
        let pod = l
            .pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{file}: no pod {name}"));
        let row = pod_row(pod, now());
        assert_eq!(
            (
                row.ready.as_str(),
                row.status.as_str(),
                row.restarts.as_str()
            ),
            (*ready, *status, *restarts),
            "{file} {name}: {why}"
        );
    }
}

const FILES: &[&str] = &[
    "gitops-engine__pod-crashloop.yaml",
    "gitops-engine__pod-error.yaml",
    "gitops-engine__pod-failed.yaml",
    "gitops-engine__pod-imagepullbackoff.yaml",
    "gitops-engine__pod-running-not-ready.yaml",
    "insights-operator__di-288312_auditlog-retention-28566720-t22qj.json",
    "insights-operator__openshift-monitoring_prometheus-k8s-0.json",
    "insights-operator__openshift-operator-lifecycle-manager_packageserver-6d96bf85f8-kqfkr.json",
    "api-replays-v1-34/pod-list.json",
    "api-replays-v1-34/job-create.json",
    "api-replays-v1-34/watch_event-watch_pods.json",
    "api-replays-v1-34/watch_event-watch_pods_without_initial_events.json",
];

fn golden_name(file: &str, suffix: &str) -> String {
    let base = file.replace('/', "__");
    let base = base.trim_end_matches(".json").trim_end_matches(".yaml");
    format!("{base}.{suffix}")
}

#[test]
fn get_pods_tables_match_golden_files() {
    for file in FILES {
        let l = load(file);
        assert!(!l.pods.is_empty(), "{file}: no pods");
        let rows: Vec<_> = l.pods.iter().map(|p| pod_row(p, now())).collect();
        let mut out = pods_table(&rows, TableOptions::default());
        out.push_str("---- -A -o wide\n");
        out.push_str(&pods_table(
            &rows,
            TableOptions {
                wide: true,
                with_namespace: true,
                no_headers: false,
            },
        ));
        check_golden(&golden_name(file, "get.txt"), &out);
    }
}

#[test]
fn describe_texts_match_golden_files() {
    for file in FILES {
        let l = load(file);
        let mut out = String::new();
        for (i, pod) in l.pods.iter().enumerate() {
            if i > 0 {
                out.push_str("\n\n");
            }
            let ctx = DescribeContext {
                events: &l.events,
                show_events: l.pods.len() == 1,
                now: now(),
                tz: TimeZone::UTC,
            };
            out.push_str(&describe_pod(pod, &ctx));
            let extra = crash_loop_section(
                &crash_loops(pod, &BackoffPolicy::kubelet()),
                now(),
                &TimeZone::UTC,
            );
            if !extra.is_empty() {
                out.push('\n');
                out.push_str(&extra);
            }
        }
        check_golden(&golden_name(file, "describe.txt"), &out);
    }
}

#[test]
fn watch_streams_keep_the_last_state_of_each_pod() {
    // The recorded watch lists every kube-system pod once (ADDED) and then MODIFIED events;
    // a reflector keeps one entry per pod.
    let l = load("api-replays-v1-34/watch_event-watch_pods_without_initial_events.json");
    let mut names: Vec<_> = l
        .pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let before = names.len();
    names.sort();
    names.dedup();
    assert_eq!(before, names.len(), "a pod appears twice");
    assert!(names.iter().any(|n| n.starts_with("coredns-")));
}
