//! A container's health probes as the kubelet runs them: startup first, then liveness and
//! readiness; a failed startup or liveness probe kills the container, readiness sets `ready`.

use crashscope_model::EventType;
use k8s_openapi::api::core::v1::Container;
use tokio::sync::watch;

use super::{sleep_or_stop, PodHandle, KILL_NOTE};
use crate::spawn;

/// Runs the container's startup probe, then its liveness and readiness probes, until `stop`.
/// A failed startup or liveness probe kills the container (the restart loop restarts it); the
/// readiness probe sets `ready`.
pub(super) async fn run_probes(
    h: PodHandle,
    c: Container,
    init: bool,
    pid: i32,
    stop: watch::Receiver<bool>,
) {
    use crate::probe_check::{check, Counter, Kind, Timing, Verdict};
    if init {
        return;
    }
    let kill = |why: String| {
        let h = h.clone();
        let name = c.name.clone();
        async move {
            h.emit(
                Some((name.as_str(), false)),
                "kubelet",
                EventType::Normal,
                "Killing",
                why.clone(),
            );
            h.note(pid, KILL_NOTE, format!("killed by the kubelet: {why}"));
            spawn::Running::signal(pid, libc::SIGTERM);
            let grace = h.grace();
            tokio::time::sleep(grace).await;
            if spawn::Running::alive(pid) {
                h.note(
                    pid,
                    KILL_NOTE,
                    format!("the grace period of {grace:?} ran out: SIGKILL"),
                );
            }
            spawn::Running::signal(pid, libc::SIGKILL);
        }
    };
    // One probe loop: returns when it reaches a verdict that ends it (startup success,
    // startup or liveness failure), or never for readiness.
    let probe_loop = |kind: Kind, probe: k8s_openapi::api::core::v1::Probe| {
        let h = h.clone();
        let name = c.name.clone();
        let mut stop = stop.clone();
        async move {
            let timing = Timing::of(&probe);
            let mut counter = Counter::default();
            if sleep_or_stop(h.node.scaled(timing.initial_delay), &mut stop).await {
                return None;
            }
            loop {
                let result = check(&probe, pid, timing.timeout).await;
                if let Err(out) = &result {
                    h.emit(
                        Some((name.as_str(), false)),
                        "kubelet",
                        EventType::Warning,
                        "Unhealthy",
                        format!("{} probe failed: {out}", kind.title()),
                    );
                }
                let verdict = counter.step(&timing, result.is_ok());
                match (kind, verdict) {
                    (Kind::Readiness, Verdict::Succeeded | Verdict::Failed) => {
                        let ready = verdict == Verdict::Succeeded;
                        let changed = {
                            let mut r = h.lock();
                            match r.statuses.get_mut(&name) {
                                Some(s) if s.ready != ready => {
                                    s.ready = ready;
                                    true
                                }
                                _ => false,
                            }
                        };
                        if changed {
                            h.refresh_ready();
                        }
                    }
                    (Kind::Startup, Verdict::Succeeded) => return Some(true),
                    (_, Verdict::Failed) => return Some(false),
                    _ => {}
                }
                if sleep_or_stop(h.node.scaled(timing.period), &mut stop).await {
                    return None;
                }
            }
        }
    };
    if let Some(p) = c.startup_probe.clone() {
        match probe_loop(Kind::Startup, p).await {
            Some(true) => {
                if c.readiness_probe.is_none() {
                    h.set(&c.name, |s| s.ready = true);
                    h.refresh_ready();
                }
            }
            Some(false) => {
                kill(format!(
                    "Container {} failed startup probe, will be restarted",
                    c.name
                ))
                .await;
                return;
            }
            None => return,
        }
    }
    let liveness = c
        .liveness_probe
        .clone()
        .map(|p| probe_loop(Kind::Liveness, p));
    let readiness = c
        .readiness_probe
        .clone()
        .map(|p| probe_loop(Kind::Readiness, p));
    let readiness_task = readiness.map(tokio::spawn);
    if let Some(l) = liveness {
        if l.await == Some(false) {
            kill(format!(
                "Container {} failed liveness probe, will be restarted",
                c.name
            ))
            .await;
        }
    }
    if let Some(t) = readiness_task {
        let _ = t.await;
    }
}
