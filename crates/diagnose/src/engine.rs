//! The engine: picks the crashed container instances of a pod, builds a [`Case`] for each,
//! runs the rules, scores the candidates by evidence tier and explains the result — or
//! abstains with `unknown` when nothing but a prior supports any cause.

use crashscope_scap::notes;
use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crashscope_model::Event;

use crate::candidate::{Candidate, Candidates, Remedy};
use crate::capture::CaptureFacts;
use crate::case::{container_ports, Case, Ended, Waiting};
use crate::cause::{cause, UNKNOWN};
use crate::diagnosis::{CauseReport, Diagnosis, Rejected};
use crate::evidence::{Evidence, Tier};
use crate::logs::LogText;

/// Below this, a cause is not claimed: the engine says `unknown`.
pub const CLAIM: f64 = 0.5;

/// What the engine is given about one pod.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    /// Events known (any scope: the engine keeps the pod's, its node's and changes).
    pub events: &'a [Event],
    /// The previous instance's log, by container name.
    pub logs: &'a BTreeMap<String, LogText>,
    /// A capture's facts, by container name.
    pub captures: &'a BTreeMap<String, CaptureFacts>,
    /// Services and other pods, for joins (cascades, names that are Services elsewhere).
    pub world: &'a crate::world::World,
    pub now: Timestamp,
}

/// Waiting reasons that mean the container is failing, not merely starting.
const FAILING_WAITS: &[&str] = &[
    "CrashLoopBackOff",
    "RunContainerError",
    "CreateContainerConfigError",
    "CreateContainerError",
    "PostStartHookError",
    "PreStartHookError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "StartError",
];

fn ended_of(st: &ContainerStatus, pointer: &str) -> Option<Ended> {
    let (t, p) = match (
        st.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
        st.state.as_ref().and_then(|s| s.terminated.as_ref()),
    ) {
        (_, Some(t)) if t.exit_code != 0 || st.restart_count == 0 => {
            (t, format!("{pointer}.state.terminated"))
        }
        (Some(t), _) => (t, format!("{pointer}.lastState.terminated")),
        (None, Some(t)) => (t, format!("{pointer}.state.terminated")),
        (None, None) => return None,
    };
    Some(Ended {
        reason: t.reason.clone().filter(|r| !r.is_empty()),
        exit_code: t.exit_code,
        signal: t.signal.filter(|s| *s != 0),
        message: t.message.clone().filter(|m| !m.is_empty()),
        started_at: t.started_at.as_ref().map(|t| t.0),
        finished_at: t.finished_at.as_ref().map(|t| t.0),
        pointer: p,
    })
}

fn waiting_of(st: &ContainerStatus, pointer: &str) -> Option<Waiting> {
    let w = st.state.as_ref()?.waiting.as_ref()?;
    Some(Waiting {
        reason: w.reason.clone().unwrap_or_default(),
        message: w.message.clone().filter(|m| !m.is_empty()),
        pointer: format!("{pointer}.state.waiting"),
    })
}

/// Whether a container status shows a failure worth diagnosing.
fn crashed(st: &ContainerStatus, init: bool) -> bool {
    let waiting = st
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref());
    let terminated_bad = st
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| t.exit_code != 0 || (!init && st.restart_count > 0));
    let last_bad = st.restart_count > 0
        && st
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some();
    waiting.is_some_and(|w| FAILING_WAITS.contains(&w)) || terminated_bad || last_bad
}

fn about_pod(e: &Event, ns: &str, pod: &str) -> bool {
    let by_involved = e.involved.as_ref().is_some_and(|o| {
        o.kind == "Pod" && o.name == pod && o.namespace.as_deref().unwrap_or(ns) == ns
    });
    let by_scope =
        e.scope.pod.as_deref() == Some(pod) && e.scope.namespace.as_deref().unwrap_or(ns) == ns;
    by_involved || by_scope
}

fn about_container(e: &Event, container: &str) -> bool {
    let fp = e.involved.as_ref().and_then(|o| o.field_path.as_deref());
    match (fp, e.scope.container.as_deref()) {
        (_, Some(c)) => c == container,
        (Some(fp), None) => fp.contains(&format!("{{{container}}}")) || !fp.contains('{'),
        (None, None) => true,
    }
}

/// Diagnoses every crashed container of the pod (or only `only`, crashed or not).
pub fn diagnose(inputs: &Inputs, only: Option<&str>) -> Vec<Diagnosis> {
    let pod = inputs.pod;
    let (ns, name) = crashscope_model::pod::namespace_name(&pod.metadata);
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let mut out = Vec::new();
    let lists: [(bool, &str, &str, Option<&Vec<ContainerStatus>>); 2] = [
        (
            true,
            "initContainerStatuses",
            "initContainers",
            status.and_then(|s| s.init_container_statuses.as_ref()),
        ),
        (
            false,
            "containerStatuses",
            "containers",
            status.and_then(|s| s.container_statuses.as_ref()),
        ),
    ];
    let all_specs: Vec<(&str, Vec<u16>)> = spec
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .map(|c| (c.name.as_str(), container_ports(Some(c))))
                .collect()
        })
        .unwrap_or_default();
    let pod_level = status.and_then(|s| s.reason.as_deref()) == Some("Evicted")
        || status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            });
    // A pod stuck creating because a volume cannot be mounted: no container ran, the
    // events say why (users call it a crash loop too).
    let mount_failed = inputs.events.iter().any(|e| {
        about_pod(e, &ns, &name)
            && matches!(e.reason.as_str(), "FailedMount" | "FailedAttachVolume")
    });
    for (init, status_field, spec_field, statuses) in lists {
        let specs = spec
            .map(|s| {
                if init {
                    s.init_containers.clone().unwrap_or_default()
                } else {
                    s.containers.clone()
                }
            })
            .unwrap_or_default();
        let n = specs.len().max(statuses.map(|s| s.len()).unwrap_or(0));
        for i in 0..n {
            let st = statuses.and_then(|s| s.get(i));
            let cname = st
                .map(|s| s.name.clone())
                .or_else(|| specs.get(i).map(|c| c.name.clone()))
                .unwrap_or_default();
            let st = statuses.and_then(|s| s.iter().find(|s| s.name == cname));
            let wanted = match only {
                Some(o) => o == cname,
                None => {
                    st.is_some_and(|s| crashed(s, init))
                        || (pod_level && !init && i == 0)
                        || (mount_failed && i == 0 && st.is_some_and(|s| !s.ready))
                }
            };
            if !wanted {
                continue;
            }
            let spec_i = spec.and_then(|s| {
                let list = if init {
                    s.init_containers.as_deref().unwrap_or(&[])
                } else {
                    &s.containers[..]
                };
                list.iter()
                    .position(|c| c.name == cname)
                    .map(|j| (j, &list[j]))
            });
            let sp = format!(
                "status.{status_field}[{}]",
                statuses
                    .and_then(|s| s.iter().position(|x| x.name == cname))
                    .unwrap_or(i)
            );
            let case = Case {
                pod,
                namespace: ns.clone(),
                pod_name: name.clone(),
                container: cname.clone(),
                init,
                spec: spec_i.map(|(_, c)| c),
                spec_pointer: format!("spec.{spec_field}[{}]", spec_i.map(|(j, _)| j).unwrap_or(i)),
                status: st,
                ended: st.and_then(|s| ended_of(s, &sp)),
                waiting: st.and_then(|s| waiting_of(s, &sp)),
                restarts: st
                    .map(|s| u32::try_from(s.restart_count).unwrap_or(0))
                    .unwrap_or(0),
                events: inputs
                    .events
                    .iter()
                    .filter(|e| {
                        (about_pod(e, &ns, &name) && about_container(e, &cname))
                            || (node.is_some()
                                && e.involved.as_ref().is_some_and(|o| {
                                    o.kind == "Node" && Some(&o.name) == node.as_ref()
                                }))
                    })
                    .collect(),
                changes: inputs
                    .events
                    .iter()
                    .filter(|e| e.is_change_in(&ns))
                    .collect(),
                log: inputs.logs.get(&cname),
                capture: inputs.captures.get(&cname),
                siblings: all_specs
                    .iter()
                    .filter(|(n, _)| *n != cname)
                    .cloned()
                    .collect(),
                world: inputs.world,
            };
            out.push(explain(&case, crate::rules::propose(&case), inputs.now));
        }
    }
    out
}

fn confidence(c: &Candidate) -> f64 {
    let miss: f64 = c.tiers().iter().map(|t| 1.0 - t.weight()).product();
    let conf = 1.0 - miss;
    let generic = cause(c.id).is_some_and(|x| x.generic);
    let conf = if generic { conf * 0.9 } else { conf };
    (conf * 100.0).round() / 100.0
}

fn tier_names(c: &Candidate) -> String {
    c.tiers()
        .iter()
        .map(|t| match t {
            Tier::Capture => "the capture",
            Tier::Status => "the status",
            Tier::Event => "events",
            Tier::Log => "the log",
            Tier::Inferred => "the last failure before the exit",
            Tier::ExitCode => "the exit code alone",
            Tier::Context => "context",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(c: &Candidate, conf: f64) -> CauseReport {
    let meta = cause(c.id);
    let mut support = c.support.clone();
    support.sort_by_key(|(t, _)| *t);
    let mut remedies = c.remedies.clone();
    for r in meta.map(|m| m.remedies).unwrap_or(&[]) {
        remedies.push(Remedy {
            text: (*r).to_string(),
            command: None,
            patch: None,
            manifest: None,
        });
    }
    CauseReport {
        id: c.id.to_string(),
        title: meta.map(|m| m.title).unwrap_or("").to_string(),
        confidence: conf,
        summary: c.summary.clone(),
        evidence: support.into_iter().map(|(_, e)| e).take(8).collect(),
        rejected: Vec::new(),
        remedies,
        confirm: Vec::new(),
    }
}

/// What would decide a case the evidence does not.
fn confirm_hints(case: &Case) -> Vec<String> {
    let mut v = Vec::new();
    let c = &case.container;
    let p = &case.pod_name;
    if case.pod.status.is_none() {
        v.push(
            "the pod's status, events and previous log: crashscope diagnose POD --capture FILE"
                .into(),
        );
        return v;
    }
    if case.log.is_none_or(|l| l.is_empty()) {
        v.push(format!(
            "the crashed instance's log: crashscope logs {p} -c {c} --previous -n {}",
            case.namespace
        ));
    }
    if case.capture.is_none() {
        v.push(format!("a system-call capture of the next crash: crashscope capture -w crash.scap --pod {p} -n {} (or the flight recorder of `crashscope run`/`crashscope agent`)", case.namespace));
    }
    if case.events.is_empty() {
        v.push("the pod's events (they expire after an hour in a cluster)".into());
    }
    v
}

fn explain(case: &Case, mut cands: Candidates, now: Timestamp) -> Diagnosis {
    // A capture read alone (no status) whose process exited 0 shows no crash: whatever it
    // printed or failed on along the way, nothing is claimed.
    let clean_exit = case.pod.status.is_none()
        && case
            .capture
            .and_then(|c| c.main_process())
            .and_then(|p| p.exit.as_ref())
            .is_some_and(|e| e.signal.is_none() && e.code == Some(0));
    if clean_exit {
        for c in &cands.list {
            cands.ruled_out.push((
                c.id,
                "the process exited 0: nothing crashed in this capture".into(),
            ));
        }
    }
    let ruled: Vec<(&str, String)> = cands.ruled_out.clone();
    let mut scored: Vec<(f64, Candidate)> = cands
        .list
        .drain(..)
        .filter(|c| !ruled.iter().any(|(id, _)| *id == c.id))
        .map(|c| (confidence(&c), c))
        .collect();
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.tiers().first().cmp(&b.1.tiers().first()))
    });
    let specific_claimed = scored
        .iter()
        .any(|(conf, c)| *conf >= CLAIM && !cause(c.id).is_some_and(|x| x.generic));
    let mut causes: Vec<CauseReport> = Vec::new();
    let mut rejected: Vec<Rejected> = ruled
        .iter()
        .map(|(id, why)| Rejected {
            id: id.to_string(),
            why_not: why.clone(),
        })
        .collect();
    for (conf, c) in &scored {
        let generic = cause(c.id).is_some_and(|x| x.generic);
        if *conf >= CLAIM && !(generic && specific_claimed) && causes.len() < 3 {
            causes.push(report(c, *conf));
        } else if generic && specific_claimed {
            rejected.push(Rejected {
                id: c.id.to_string(),
                why_not: "a more specific cause explains the failure".into(),
            });
        } else {
            rejected.push(Rejected {
                id: c.id.to_string(),
                why_not: format!(
                    "weaker evidence (confidence {conf:.2}, from {})",
                    tier_names(c)
                ),
            });
        }
    }
    rejected.dedup_by(|a, b| a.id == b.id);
    if causes.is_empty() {
        let mut evidence: Vec<Evidence> = case.ended_evidence().into_iter().collect();
        if let Some(w) = &case.waiting {
            evidence.push(Evidence::new(
                crate::evidence::Source::Status,
                &w.pointer,
                format!("Waiting: {}", w.reason),
            ));
        }
        let mut summary = String::from("no evidence decides the cause");
        if let Some(e) = &case.ended {
            summary.push_str(&format!(
                ": the container ended {} (exit code {})",
                e.reason.as_deref().unwrap_or("Terminated"),
                e.exit_code
            ));
            if let Some(d) = case.lifetime() {
                let secs = d.as_secs_f64().max(0.0);
                if secs < 1.0 {
                    summary.push_str(" within a second of starting");
                } else {
                    summary.push_str(&format!(" after {secs:.0} s"));
                }
            }
        }
        if let Some(p) = case.capture.and_then(|c| c.main_process()) {
            if let Some(x) = &p.exit {
                // Who sent the fatal signal, when the recorder saw it sent.
                let sender = case.capture.and_then(|c| {
                    c.signals.iter().rev().find(|s| {
                        s.target == p.pid
                            && s.sender > 0
                            && s.sender != p.pid
                            && !s.sender_comm.is_empty()
                    })
                });
                let how = match (x.signal, x.code, sender) {
                    (Some(s), _, Some(f)) => format!(
                        "was killed by {} sent by pid {} ({})",
                        crashscope_inspect::event::signal_name(if f.sig > 0 { f.sig } else { s }),
                        f.sender,
                        f.sender_comm
                    ),
                    (Some(s), _, None) => {
                        format!(
                            "was killed by {}",
                            crashscope_inspect::event::signal_name(s)
                        )
                    }
                    (None, Some(c), _) => format!("exited with code {c}"),
                    (None, None, _) => "ended".into(),
                };
                summary.push_str(&format!(
                    "; in the capture {} (pid {}) {how}",
                    p.comm, p.pid
                ));
            }
        }
        if let Some((_, c)) = scored.first() {
            summary.push_str(&format!("; it fits {} ({})", c.id, c.summary));
        }
        let mut confirm = confirm_hints(case);
        if confirm.is_empty() {
            confirm.push("no failing system call, signal or error line was found: the program's own logic or data (add logging around start-up)".into());
        }
        causes.push(CauseReport {
            id: UNKNOWN.into(),
            title: cause(UNKNOWN).map(|c| c.title).unwrap_or("").into(),
            confidence: 0.0,
            summary,
            evidence,
            rejected: Vec::new(),
            remedies: Vec::new(),
            confirm,
        });
    }
    if let Some(top) = causes.first_mut() {
        top.rejected = rejected;
        top.evidence.append(&mut cands.context);
        for n in &cands.notes {
            top.summary.push_str(&format!("; {n}"));
        }
        if top.confidence < 0.7 && top.id != UNKNOWN {
            top.confirm = confirm_hints(case);
        }
    }
    let mut inputs = vec![if case.pod.status.is_some() {
        "status"
    } else {
        "status: none"
    }
    .to_string()];
    inputs.push(if case.events.is_empty() {
        "events: none".into()
    } else {
        format!("events: {}", case.events.len())
    });
    inputs.push(match case.log {
        Some(l) if !l.is_empty() => format!("log: {}", l.source),
        _ => "log: none".into(),
    });
    inputs.push(match case.capture {
        Some(c) => format!("capture: {}", c.source),
        None => "capture: none".into(),
    });
    let mut notes = Vec::new();
    if let Some(c) = case.capture {
        if let Some(d) = &c.damage {
            notes.push(format!(
                "the capture is damaged ({d}); what could be read around it was used"
            ));
        }
        if c.notes.iter().any(|n| n.id == notes::LOSSES) {
            notes.push(
                "the recorder lost events while recording: a missing fact is not proof of absence"
                    .into(),
            );
        }
        if c.main_process().is_none() {
            notes.push("the capture shows no process of this container ending".into());
        }
    }
    Diagnosis {
        namespace: case.namespace.clone(),
        pod: case.pod_name.clone(),
        container: case.container.clone(),
        init: case.init,
        restart: case.restarts,
        exited_at: case.ended.as_ref().and_then(|e| e.finished_at),
        causes,
        inputs,
        notes,
        diagnosed_at: now,
    }
}
