//! `kubectl get pods`, column for column: READY, STATUS, RESTARTS and AGE computed by the
//! rules of kubectl's pod printer (init containers, sidecars, reverse container order,
//! `Completed` fix-up, `Terminating`), and the table laid out as kubectl lays it out.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::HashSet;

use crate::humanize::{human_duration, since};
use crate::table::{align, cell, GET};

/// One row of `kubectl get pods [-o wide]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub ready: String,
    pub status: String,
    pub restarts: String,
    pub age: String,
    pub ip: String,
    pub node: String,
    pub nominated_node: String,
    pub readiness_gates: String,
}

/// Node reason the node lifecycle controller sets on pods of a lost node.
const NODE_LOST: &str = "NodeLost";

fn terminated_reason(reason: Option<&str>, signal: Option<i32>, exit_code: i32) -> String {
    match reason.filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None => match signal.filter(|s| *s != 0) {
            Some(s) => format!("Signal:{s}"),
            None => format!("ExitCode:{exit_code}"),
        },
    }
}

fn last_finished(c: &ContainerStatus) -> Option<Timestamp> {
    c.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
        .map(|t| t.0)
}

fn condition_true(pod: &Pod, type_: &str, first_only: bool) -> bool {
    let conds = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if first_only {
        conds
            .iter()
            .find(|c| c.type_ == type_)
            .is_some_and(|c| c.status == "True")
    } else {
        conds.iter().any(|c| c.type_ == type_ && c.status == "True")
    }
}

/// Computes the row kubectl would print for `pod` at time `now`.
pub fn pod_row(pod: &Pod, now: Timestamp) -> PodRow {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    let status_reason = status.and_then(|s| s.reason.clone()).unwrap_or_default();

    let mut reason = if status_reason.is_empty() {
        phase.clone()
    } else {
        status_reason.clone()
    };
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".into();
    }

    let init_specs = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let sidecars: HashSet<&str> = init_specs
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let total = spec.map(|s| s.containers.len()).unwrap_or(0) + sidecars.len();

    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let later = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };

    let mut initializing = false;
    let init_statuses = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    for (i, c) in init_statuses.iter().enumerate() {
        let is_sidecar = sidecars.contains(c.name.as_str());
        restarts += i64::from(c.restart_count);
        last_restart = later(last_restart, last_finished(c));
        if is_sidecar {
            sidecar_restarts += i64::from(c.restart_count);
            last_sidecar_restart = later(last_sidecar_restart, last_finished(c));
        }
        let state = c.state.as_ref();
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let waiting = state.and_then(|s| s.waiting.as_ref());
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if is_sidecar && c.started == Some(true) {
            if c.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = format!(
                "Init:{}",
                terminated_reason(t.reason.as_deref(), t.signal, t.exit_code)
            );
        } else if let Some(w) = waiting
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized", true) {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        let mut error_reason = String::new();
        let statuses = status
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        for c in statuses.iter().rev() {
            restarts += i64::from(c.restart_count);
            last_restart = later(last_restart, last_finished(c));
            let state = c.state.as_ref();
            let waiting_reason = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                .filter(|r| !r.is_empty());
            if let Some(w) = waiting_reason {
                reason = w.to_string();
            } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
                reason = terminated_reason(t.reason.as_deref(), t.signal, t.exit_code);
                if t.exit_code != 0 {
                    error_reason = reason.clone();
                }
            } else if c.ready && state.is_some_and(|s| s.running.is_some()) {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            if has_running && condition_true(pod, "Ready", false) {
                reason = "Running".into();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if has_running {
                reason = "NotReady".into();
            }
        }
    }

    if meta.deletion_timestamp.is_some() {
        if status_reason == NODE_LOST {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", human_duration(now.duration_since(t)))
        }
        _ => restarts.to_string(),
    };

    let none = |s: Option<&str>| {
        s.filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| "<none>".into())
    };
    let ip = status
        .and_then(|s| {
            s.pod_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .or_else(|| s.pod_ips.as_ref()?.first().map(|p| p.ip.clone()))
        })
        .filter(|ip| !ip.is_empty());
    let gates = spec
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or_default();
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_gates = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| c.type_ == g.condition_type)
                    .is_some_and(|c| c.status == "True")
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };

    PodRow {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts: restarts_cell,
        age: since(meta.creation_timestamp.as_ref().map(|t| t.0), now),
        ip: none(ip.as_deref()),
        node: none(spec.and_then(|s| s.node_name.as_deref())),
        nominated_node: none(status.and_then(|s| s.nominated_node_name.as_deref())),
        readiness_gates,
    }
}

/// How to print the table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    pub wide: bool,
    /// Adds the NAMESPACE column first, as `-A` does.
    pub with_namespace: bool,
    pub no_headers: bool,
}

/// The table kubectl prints for `rows`. Empty when there are no rows (kubectl then says
/// "No resources found" on stderr).
pub fn pods_table(rows: &[PodRow], opts: TableOptions) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let cells: Vec<String> = cells.into_iter().map(cell).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    };
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if opts.wide {
        header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    if opts.with_namespace {
        header.insert(0, "NAMESPACE");
    }
    if !opts.no_headers {
        line(header);
    }
    for r in rows {
        let mut cells = vec![
            r.name.as_str(),
            r.ready.as_str(),
            r.status.as_str(),
            r.restarts.as_str(),
            r.age.as_str(),
        ];
        if opts.wide {
            cells.extend([
                r.ip.as_str(),
                r.node.as_str(),
                r.nominated_node.as_str(),
                r.readiness_gates.as_str(),
            ]);
        }
        if opts.with_namespace {
            cells.insert(0, r.namespace.as_str());
        }
        line(cells);
    }
    align(&text, GET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-28T16:00:00Z".parse().unwrap()
    }

    fn row(v: serde_json::Value) -> PodRow {
        pod_row(&serde_json::from_value(v).unwrap(), now())
    }

    fn cs(name: &str, state: serde_json::Value, ready: bool, restarts: i32) -> serde_json::Value {
        json!({"name": name, "image": "i", "imageID": "", "ready": ready,
               "restartCount": restarts, "state": state})
    }

    #[test]
    fn init_container_states_prefix_with_init() {
        let spec = json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]});
        // a done, b crash-looping: the loop stops at b.
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Pending",
            "initContainerStatuses": [
                cs("a", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0),
                cs("b", json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 4)],
            "containerStatuses": [cs("app", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)]}}),
        );
        assert_eq!(
            (r.status.as_str(), r.restarts.as_str(), r.ready.as_str()),
            ("Init:CrashLoopBackOff", "4", "0/1")
        );
        // b running: Init:1/2 (index of the blocking container / number of init containers).
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Pending",
            "initContainerStatuses": [
                cs("a", json!({"terminated": {"exitCode": 0}}), false, 0),
                cs("b", json!({"running": {}}), false, 0)]}}),
        );
        assert_eq!(r.status, "Init:1/2");
        // b killed by a signal without a reason; b exited 2 without a reason.
        let r = row(json!({"metadata": {"name": "p"}, "spec": spec, "status": {
            "initContainerStatuses": [cs("a", json!({"terminated": {"exitCode": 137, "signal": 9}}), false, 0)]}}));
        assert_eq!(r.status, "Init:Signal:9");
        let r = row(json!({"metadata": {"name": "p"}, "spec": spec, "status": {
            "initContainerStatuses": [cs("a", json!({"terminated": {"exitCode": 2}}), false, 0)]}}));
        assert_eq!(r.status, "Init:ExitCode:2");
    }

    #[test]
    fn sidecars_count_in_ready_and_restarts() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                          "containers": [{"name": "app"}]});
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "image": "", "imageID": "", "ready": true,
                "started": true, "restartCount": 2, "state": {"running": {}}}],
            "containerStatuses": [cs("app", json!({"running": {}}), true, 1)]}}),
        );
        assert_eq!(
            (r.ready.as_str(), r.status.as_str(), r.restarts.as_str()),
            ("2/2", "Running", "3")
        );
    }

    #[test]
    fn containers_are_read_in_reverse_so_the_first_decides() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Running",
            "containerStatuses": [
                cs("a", json!({"waiting": {"reason": "ErrImagePull"}}), false, 0),
                cs("b", json!({"terminated": {"exitCode": 1, "reason": "Error"}}), false, 0)]}}),
        );
        assert_eq!(r.status, "ErrImagePull");
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Running",
            "containerStatuses": [
                cs("a", json!({"terminated": {"exitCode": 0, "signal": 15}}), false, 0),
                cs("b", json!({"running": {}}), true, 0)]}}),
        );
        assert_eq!(r.status, "Signal:15");
    }

    #[test]
    fn completed_is_fixed_up_by_running_and_failing_siblings() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let base = |b: serde_json::Value, ready_cond: &str| {
            json!({"metadata": {"name": "p"}, "spec": spec,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready_cond}],
            "containerStatuses": [cs("a", done.clone(), false, 0), b]}})
        };
        assert_eq!(
            row(base(cs("b", json!({"running": {}}), true, 0), "True")).status,
            "Running"
        );
        assert_eq!(
            row(base(cs("b", json!({"running": {}}), true, 0), "False")).status,
            "NotReady"
        );
        // b's ExitCode:2 is overwritten by a's Completed; the fix-up brings back the error.
        assert_eq!(
            row(base(
                cs("b", json!({"terminated": {"exitCode": 2}}), false, 0),
                "False"
            ))
            .status,
            "ExitCode:2"
        );
        assert_eq!(
            row(base(cs("b", done.clone(), false, 0), "False")).status,
            "Completed"
        );
    }

    #[test]
    fn deletion_node_loss_gates_and_wide_columns() {
        let r = row(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-28T15:59:00Z"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [cs("a", json!({"running": {}}), true, 0)]}}),
        );
        assert_eq!(r.status, "Terminating");
        let r = row(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-28T15:59:00Z"},
            "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "reason": "NodeLost"}}),
        );
        assert_eq!(r.status, "Unknown");
        let r = row(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-28T15:59:00Z"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [cs("a", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}}),
        );
        assert_eq!(r.status, "Completed");
        let r = row(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}],
            "readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]},
            "status": {"phase": "Pending", "reason": "Evicted",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                               {"type": "x", "status": "True"}]}}),
        );
        assert_eq!(
            (r.status.as_str(), r.readiness_gates.as_str()),
            ("SchedulingGated", "1/2")
        );
        assert_eq!(
            (r.ip.as_str(), r.node.as_str(), r.age.as_str()),
            ("<none>", "<none>", "<unknown>")
        );
        let r = row(
            json!({"metadata": {"name": "p"}, "status": {"reason": "Evicted", "phase": "Failed"}}),
        );
        assert_eq!((r.status.as_str(), r.ready.as_str()), ("Evicted", "0/0"));
    }
}
