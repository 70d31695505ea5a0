//! What kubectl cannot tell: for every crash-looping container, how its last run ended, which
//! step of the kubelet's back-off it is on and when the kubelet will start it again.

use jiff::{tz::TimeZone, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use crashscope_model::backoff::{BackoffPolicy, TIME_SCALE_ANNOTATION};
use crashscope_model::duration::format_go;
use crashscope_model::pod::{ContainerState, PodState};

use crate::humanize::{human_duration, rfc1123z};
use crate::table::{align, cell, DESCRIBE, GET};

/// One crash-looping container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrashLoop {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub restarts: u32,
    /// How the last run ended: `Error (exit code 1)`, `OOMKilled (exit code 137)`, ...
    pub last_exit: String,
    /// How long the last run lasted, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_secs: Option<i64>,
    pub backoff: crashscope_model::BackoffEstimate,
    /// The diagnosed cause (`dns-nxdomain`, `unknown`, ...), when a diagnosis was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The cause's one-line summary and its first evidence, for `describe`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cause_detail: Vec<String>,
}

/// Crash-looping containers of `pod`.
pub fn crash_loops(pod: &Pod, policy: &BackoffPolicy) -> Vec<CrashLoop> {
    let state = PodState::from_pod(pod);
    // A local runtime with scaled time says so on its pods.
    let scale = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TIME_SCALE_ANNOTATION))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0);
    state
        .crash_looping()
        .filter_map(|c| {
            let backoff = c.backoff(policy)?.scaled(scale);
            let (last_exit, last_run_secs) = match c.last_terminated() {
                Some(ContainerState::Terminated {
                    reason,
                    exit_code,
                    signal,
                    started_at,
                    finished_at,
                    ..
                }) => {
                    let what = reason.clone().unwrap_or_else(|| "Terminated".into());
                    let how = match signal {
                        Some(s) => format!("{what} (exit code {exit_code}, signal {s})"),
                        None => format!("{what} (exit code {exit_code})"),
                    };
                    // A container that never started (StartError) carries the kubelet's
                    // 1970 start time: it did not run at all.
                    let ran = started_at
                        .filter(|s| *s > Timestamp::UNIX_EPOCH)
                        .zip(*finished_at)
                        .map(|(s, f)| f.duration_since(s).as_secs());
                    (how, ran)
                }
                _ => ("unknown".into(), None),
            };
            Some(CrashLoop {
                namespace: state.namespace.clone(),
                pod: state.name.clone(),
                container: c.name.clone(),
                restarts: c.restart_count,
                last_exit,
                last_run_secs,
                backoff,
                cause: None,
                cause_detail: Vec::new(),
            })
        })
        .collect()
}

/// The back-off step, as the BACK-OFF column says it: `40s (step 3 of 9)`.
pub fn step_text(l: &CrashLoop) -> String {
    format!(
        "{} (step {} of {})",
        format_go(l.backoff.delay),
        l.backoff.step,
        l.backoff.cap_step
    )
}

fn next_text(l: &CrashLoop, now: Timestamp) -> String {
    next_restart_text(l.backoff.next_restart, now)
}

/// When the kubelet restarts the container, as NEXT RESTART says it: `in 12s`, `due 3s ago`.
pub fn next_restart_text(next: Timestamp, now: Timestamp) -> String {
    let d = next.duration_since(now);
    if d.is_negative() {
        format!("due {} ago", human_duration(-d))
    } else {
        format!("in {}", human_duration(d))
    }
}

/// The section `get pods` prints under kubectl's table.
pub fn crash_loop_table(loops: &[CrashLoop], now: Timestamp, with_namespace: bool) -> String {
    if loops.is_empty() {
        return String::new();
    }
    let mut text = String::new();
    let header = "POD\tCONTAINER\tRESTARTS\tLAST EXIT\tBACK-OFF\tNEXT RESTART";
    let with_cause = loops.iter().any(|l| l.cause.is_some());
    if with_namespace {
        text.push_str("NAMESPACE\t");
    }
    text.push_str(header);
    if with_cause {
        text.push_str("\tCAUSE");
    }
    text.push('\n');
    for l in loops {
        let mut cells = vec![
            l.pod.clone(),
            l.container.clone(),
            l.restarts.to_string(),
            l.last_exit.clone(),
            step_text(l),
            next_text(l, now),
        ];
        if with_namespace {
            cells.insert(0, l.namespace.clone());
        }
        if with_cause {
            cells.push(l.cause.clone().unwrap_or_else(|| "-".into()));
        }
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    align(&text, GET)
}

/// The section `describe pod` prints after kubectl's output.
pub fn crash_loop_section(loops: &[CrashLoop], now: Timestamp, tz: &TimeZone) -> String {
    if loops.is_empty() {
        return String::new();
    }
    let mut text = String::from("Crash Loop (crashscope):\n");
    for l in loops {
        text.push_str(&format!("  {}:\n", l.container));
        text.push_str(&format!("    Last Exit:\t{}\n", l.last_exit));
        if let Some(secs) = l.last_run_secs {
            text.push_str(&format!(
                "    Last Run:\t{}\n",
                human_duration(jiff::SignedDuration::from_secs(secs))
            ));
        }
        let source = if l.backoff.from_message {
            "from the kubelet's message"
        } else {
            "estimated from the restart count"
        };
        text.push_str(&format!("    Back-off:\t{}, {source}\n", step_text(l)));
        text.push_str(&format!(
            "    Next Restart:\t{} ({})\n",
            rfc1123z(l.backoff.next_restart, tz),
            next_text(l, now)
        ));
        if let Some(c) = &l.cause {
            let mut detail = l.cause_detail.iter();
            match detail.next() {
                Some(summary) => text.push_str(&format!("    Cause:\t{c}: {summary}\n")),
                None => text.push_str(&format!("    Cause:\t{c}\n")),
            }
            if let Some(ev) = detail.next() {
                text.push_str(&format!("    Evidence:\t{ev}\n"));
            }
        }
    }
    align(&text, DESCRIBE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_error_has_no_last_run_and_a_crash_has_its_own() {
        let pod = |started: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running", "containerStatuses": [{
                    "name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": "back-off 1m20s restarting failed container=c pod=p_default(u)"}},
                    "lastState": {"terminated": {"exitCode": 128, "reason": "StartError",
                        "startedAt": started, "finishedAt": "2026-12-01T10:00:00Z"}}
                }]}
            }))
            .unwrap()
        };
        let policy = BackoffPolicy::default();
        let never_ran = crash_loops(&pod("1970-01-01T00:00:00Z"), &policy);
        assert_eq!(never_ran[0].last_run_secs, None);
        let ran = crash_loops(&pod("2026-12-01T09:59:30Z"), &policy);
        assert_eq!(ran[0].last_run_secs, Some(30));
    }
}
