//! Concrete changes the evidence proves, made once every rule has spoken (whatever the
//! evidence came from: the status, the log, the capture): the mode of the volume a program
//! that may not be executed lives in, and a startup probe for a program the liveness probe
//! kills while it is still starting. Each is a JSON patch on the pod's spec; none is made
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
    let (list, index) = case
        .spec_pointer
        .strip_prefix("spec.")?
        .strip_suffix(']')?
        .split_once('[')?;
    let patch = serde_json::json!([{
        "op": "add",
        "path": format!("/{list}/{index}/startupProbe"),
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
