//! What `top` shows, read again every few seconds: the pods the flags select (store or
//! cluster), each crash loop with its back-off and diagnosed cause, and for an opened pod
//! its diagnosis, previous log, captures and `describe` text. Diagnoses are kept per
//! container instance, so a reload diagnoses only containers that crashed again.

use std::collections::BTreeMap;

use crashscope_diagnose::Diagnosis;
use crashscope_kubectl::crashloop::{crash_loops, CrashLoop};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};

use super::app::{Crash, Row};
use crate::args::{Global, Source};

/// (namespace, pod, container)
type ContainerKey = (String, String, String);

/// One read of the pods.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pods: Vec<Pod>,
    pub events: Vec<KubeEvent>,
    pub loops: Vec<CrashLoop>,
    pub causes: BTreeMap<ContainerKey, Diagnosis>,
    /// What the store said that a person should know (a stopped runtime, unreadable rows).
    pub notes: Vec<String>,
}

/// Reads snapshots; remembers the diagnoses already made.
#[derive(Debug, Default)]
pub struct Loader {
    /// Per container: the restart count diagnosed and its diagnosis.
    diagnosed: BTreeMap<ContainerKey, (u32, Diagnosis)>,
}

impl Loader {
    pub fn load(&mut self, g: &Global, src: &Source, now: Timestamp) -> anyhow::Result<Snapshot> {
        let policy = super::super::backoff_policy(g)?;
        let mut notes = Vec::new();
        let files = !src.files.is_empty();
        let with_events = files || !super::super::cluster(g);
        let (pods, events, _) =
            super::super::get::load_reporting(g, src, &[], false, with_events, &mut |w| {
                notes.push(w)
            })?;
        let mut loops: Vec<CrashLoop> = pods.iter().flat_map(|p| crash_loops(p, &policy)).collect();
        // Only the crash-looping pods whose containers crashed since their last diagnosis.
        let stale: Vec<Pod> = pods
            .iter()
            .filter(|p| {
                loops.iter().any(|l| {
                    Some(l.pod.as_str()) == p.metadata.name.as_deref()
                        && Some(l.namespace.as_str())
                            == Some(p.metadata.namespace.as_deref().unwrap_or("default"))
                        && self
                            .diagnosed
                            .get(&(l.namespace.clone(), l.pod.clone(), l.container.clone()))
                            .is_none_or(|(n, _)| *n != l.restarts)
                })
            })
            .cloned()
            .collect();
        if !stale.is_empty() {
            let fresh = super::super::diagnose::causes(g, files, &stale, &events, now);
            for l in &loops {
                let key = (l.namespace.clone(), l.pod.clone(), l.container.clone());
                if let Some(d) = fresh.get(&key) {
                    self.diagnosed.insert(key, (l.restarts, d.clone()));
                }
            }
        }
        let causes: BTreeMap<ContainerKey, Diagnosis> = self
            .diagnosed
            .iter()
            .map(|(k, (_, d))| (k.clone(), d.clone()))
            .collect();
        super::super::diagnose::annotate(&mut loops, &causes);
        Ok(Snapshot {
            pods,
            events,
            loops,
            causes,
            notes,
        })
    }
}

impl Snapshot {
    /// The list: crash-looping pods first (most restarts first), then the others by
    /// namespace and name.
    pub fn rows(&self, now: Timestamp) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .pods
            .iter()
            .map(|p| {
                let r = crashscope_kubectl::get::pod_row(p, now);
                let crash = self
                    .loops
                    .iter()
                    .filter(|l| l.namespace == r.namespace && l.pod == r.name)
                    .max_by_key(|l| l.restarts)
                    .map(|l| Crash {
                        container: l.container.clone(),
                        last_exit: l.last_exit.clone(),
                        backoff: crashscope_kubectl::crashloop::step_text(l),
                        next_restart: l.backoff.next_restart,
                        cause: l.cause.clone().unwrap_or_else(|| "-".into()),
                    });
                Row {
                    namespace: r.namespace,
                    pod: r.name,
                    ready: r.ready,
                    status: r.status,
                    restarts: r.restarts,
                    crash,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            let restarts = |r: &Row| {
                r.crash.as_ref().map(|_| {
                    r.restarts
                        .split(' ')
                        .next()
                        .unwrap_or("0")
                        .parse::<u32>()
                        .unwrap_or(0)
                })
            };
            restarts(b)
                .cmp(&restarts(a))
                .then_with(|| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)))
        });
        rows
    }

    /// The opened pod's page: diagnosis, previous log, captures, then `describe`.
    pub fn pod_text(&self, g: &Global, namespace: &str, name: &str, now: Timestamp) -> String {
        let Some(pod) = self.pods.iter().find(|p| {
            p.metadata.name.as_deref() == Some(name)
                && p.metadata.namespace.as_deref().unwrap_or("default") == namespace
        }) else {
            return format!("pod {namespace}/{name} is gone\n");
        };
        let mut s = String::new();
        let diagnoses: Vec<&Diagnosis> = self
            .causes
            .iter()
            .filter(|((ns, p, _), _)| ns == namespace && p == name)
            .map(|(_, d)| d)
            .collect();
        s.push_str("── Diagnosis ──\n");
        if diagnoses.is_empty() {
            s.push_str("No crashed container to diagnose.\n");
        }
        for d in diagnoses {
            super::super::diagnose::render(&mut s, d, false);
        }
        for (container, text) in previous_logs(g, pod) {
            s.push_str(&format!(
                "\n── Previous log of {container} (last {LOG_LINES} lines) ──\n"
            ));
            s.push_str(&text);
        }
        let captures = captures(g, namespace, name);
        if !captures.is_empty() {
            s.push_str("\n── Captures ──\n");
            s.push_str(&captures);
        }
        s.push_str("\n── Describe ──\n");
        let ctx = crashscope_kubectl::describe::DescribeContext {
            events: &self.events,
            show_events: true,
            now,
            tz: jiff::tz::TimeZone::system(),
        };
        s.push_str(&crashscope_kubectl::describe::describe_pod(pod, &ctx));
        s
    }
}

/// Lines of a previous log shown on the pod's page.
const LOG_LINES: usize = 30;

/// The last lines of each crashed container's previous log the local runtime kept.
fn previous_logs(g: &Global, pod: &Pod) -> Vec<(String, String)> {
    if super::super::cluster(g) {
        return Vec::new();
    }
    let Ok(store) = super::super::store_path(g) else {
        return Vec::new();
    };
    let dir = store
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (container, path) in crashscope_server::diagnosis::previous_log_paths(pod, &dir) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = crashscope_model::logfile::plain_text(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let cut = lines.len().saturating_sub(LOG_LINES);
        let mut shown = lines[cut..].join("\n");
        shown.push('\n');
        out.push((container, shown));
    }
    out
}

/// The captures the store indexed for the pod, newest first, one line each.
fn captures(g: &Global, namespace: &str, name: &str) -> String {
    if super::super::cluster(g) {
        return String::new();
    }
    let Ok(path) = super::super::store_path(g) else {
        return String::new();
    };
    if !path.exists() {
        return String::new();
    }
    let Ok(rt) = super::super::runtime() else {
        return String::new();
    };
    let records = rt
        .block_on(async {
            let store = crashscope_store::SqlStore::open(&path).await?;
            store.captures().await
        })
        .unwrap_or_default();
    records
        .into_iter()
        .filter(|c| c.namespace.as_deref() == Some(namespace) && c.pod.as_deref() == Some(name))
        .map(|c| {
            format!(
                "{}  {} restart {}  {} events  {}\n",
                c.created_at,
                c.container.unwrap_or_default(),
                c.restart.map_or("-".into(), |r| r.to_string()),
                c.events,
                c.path
            )
        })
        .collect()
}
