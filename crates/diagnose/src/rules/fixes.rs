//! Concrete changes the evidence proves, made once every rule has spoken (whatever the
//! evidence came from: the status, the log, the capture): the mode of the volume a program
//! that may not be executed lives in, a startup probe for a program the liveness probe kills
//! while it is still starting, and the memory limit an earlier revision's pods run with
//! when this one was lowered under what the program needs (an OOM kill alone says only that
//! the limit was reached, not by how much: no number is invented for it). Each is a JSON patch on the pod's spec; none is made
//! when the evidence leaves one of its values open.

use crate::candidate::Candidates;
use crate::case::Case;

use super::syscalls::mount_of;

pub fn propose(case: &Case, out: &mut Candidates) {
    // A program in a ConfigMap or Secret volume that may not be executed: the volume's files
    // are made without the x bit (0644 unless the spec says), and the volume's mode is the fix.
    let denied = out
        .get("exec-permission-denied")
        .map(|c| c.subjects.clone())
        .unwrap_or_default();
    for path in denied {
        if let Some((op, vol, mode)) = mode_patch(case, &path) {
            out.fix(
                "exec-permission-denied",
                format!("give volume \"{vol}\"'s files mode {mode:04o} (defaultMode), so {path} can be executed"),
                op,
            );
        }
    }
    if out.has("oom-limit") {
        if let Some((op, limit, now, pod)) = memory_patch(case) {
            out.fix(
                "oom-limit",
                format!("give the container the memory limit of {limit} that the previous revision's pod {pod} runs with, without an OOM kill (this revision has {now})"),
                op,
            );
        }
    }
    if out.has("liveness-kills-slow-start") {
        if let Some((op, window, ran)) = startup_patch(case) {
            out.fix(
                "liveness-kills-slow-start",
                format!("add a startup probe (the liveness probe's check) that allows {window}s to start: three times the {ran}s the program ran before the kill, during which the liveness probe waits"),
                op,
            );
        }
    }
}

/// The memory limit to restore: the larger one the same container has in a pod of another
/// revision of the same workload that runs without having been OOM-killed. The patch, that
/// limit, the current one, and the pod it was seen on.
fn memory_patch(case: &Case) -> Option<(serde_json::Value, String, String, String)> {
    use crashscope_model::OwnerChain;
    let (now, now_bytes) = case.memory_limit()?;
    let meta = &case.pod.metadata;
    let workload = OwnerChain::from_pod_meta(meta).workload()?;
    let hash = meta.labels.as_ref()?.get("pod-template-hash")?;
    let mut best: Option<(u64, String, String)> = None;
    for p in &case.world.pods {
        let m = &p.metadata;
        if m.namespace != meta.namespace
            || m.labels.as_ref().and_then(|l| l.get("pod-template-hash")) == Some(hash)
            || OwnerChain::from_pod_meta(m).workload().as_ref() != Some(&workload)
        {
            continue;
        }
        let Some(c) = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == case.container))
        else {
            continue;
        };
        let status = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|st| st.iter().find(|x| x.name == case.container));
        // It runs with that limit: running and ready now, never OOM-killed.
        let runs = status
            .is_some_and(|x| x.ready && x.state.as_ref().is_some_and(|s| s.running.is_some()));
        let oom_killed = status.is_some_and(|x| {
            [x.state.as_ref(), x.last_state.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|s| s.terminated.as_ref())
                .any(|t| t.reason.as_deref() == Some("OOMKilled"))
        });
        let limit = c
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .map(|q| q.0.clone());
        let Some(limit) = limit.filter(|_| runs && !oom_killed) else {
            continue;
        };
        let Some(bytes) = crashscope_model::quantity::bytes(&limit) else {
            continue;
        };
        if bytes > now_bytes && best.as_ref().is_none_or(|(b, _, _)| bytes > *b) {
            best = Some((bytes, limit, m.name.clone().unwrap_or_default()));
        }
    }
    let (_, limit, pod) = best?;
    let patch = serde_json::json!([{
        "op": "replace",
        "path": format!("{}/resources/limits/memory", case.spec_path()?),
        "value": limit,
    }]);
    Some((patch, limit, now, pod))
}

/// How many times the run that was killed a start gets.
const START_MARGIN: i64 = 3;

/// A startup probe for the container: the liveness probe's check, with a failure budget of
/// [`START_MARGIN`] times the run the kubelet cut short; the patch, that window and the run
/// (seconds). None when there is no liveness probe to copy, a startup probe exists already,
/// or the run's length is unknown.
fn startup_patch(case: &Case) -> Option<(serde_json::Value, i64, i64)> {
    let c = case.spec?;
    if c.startup_probe.is_some() {
        return None;
    }
    let liveness = c.liveness_probe.as_ref()?;
    let ended = case.ended.as_ref()?;
    let ran = ended
        .finished_at?
        .duration_since(ended.started_at?)
        .as_secs();
    if ran <= 0 {
        return None;
    }
    let period = i64::from(liveness.period_seconds.unwrap_or(10).max(1));
    let threshold = ((START_MARGIN * ran + period - 1) / period).max(3);
    let mut probe = liveness.clone();
    probe.period_seconds = Some(i32::try_from(period).ok()?);
    probe.failure_threshold = Some(i32::try_from(threshold).ok()?);
    // The startup probe starts at once; its budget replaces the liveness probe's delay.
    probe.initial_delay_seconds = None;
    probe.success_threshold = None;
    let patch = serde_json::json!([{
        "op": "add",
        "path": format!("{}/startupProbe", case.spec_path()?),
        "value": serde_json::to_value(&probe).ok()?,
    }]);
    Some((patch, threshold * period, ran))
}

/// The patch giving the ConfigMap or Secret volume that holds `path` executable files: its
/// `defaultMode` with the x bits added; the volume's name and the new mode. None when the
/// file is not in such a volume, the mode already has x bits (a noexec mount, then), or its
/// items set modes of their own (which one is the program's is a choice).
fn mode_patch(case: &Case, path: &str) -> Option<(serde_json::Value, String, i32)> {
    let (_, _, vol) = mount_of(case, path)?;
    let volumes = case.pod.spec.as_ref()?.volumes.as_ref()?;
    let (i, v) = volumes.iter().enumerate().find(|(_, v)| v.name == vol)?;
    let (field, mode, items) = if let Some(cm) = &v.config_map {
        ("configMap", cm.default_mode, cm.items.as_ref())
    } else if let Some(s) = &v.secret {
        ("secret", s.default_mode, s.items.as_ref())
    } else {
        return None;
    };
    if items.is_some_and(|its| its.iter().any(|k| k.mode.is_some())) {
        return None;
    }
    let now = mode.unwrap_or(0o644);
    if now & 0o111 != 0 {
        return None;
    }
    let want = now | 0o111;
    let op = if mode.is_some() { "replace" } else { "add" };
    let patch = serde_json::json!([{
        "op": op,
        "path": format!("/volumes/{i}/{field}/defaultMode"),
        "value": want,
    }]);
    Some((patch, vol.to_string(), want))
}
