//! A container's crash loop as the pod page tells it: each run (started, ended, how long it
//! lasted, how it ended), the back-off wait before the next, the probe failures among them,
//! and — while the container waits in back-off — when the kubelet will start it again. Read
//! from the pod's recorded states (every run the server saw end) and its `Unhealthy` events.

use std::collections::BTreeMap;

use crashscope_model::backoff::BackoffPolicy;
use crashscope_model::pod::{ContainerState, PodState};
use crashscope_store::StoredEvent;
use jiff::Timestamp;

use super::short;

/// One line of a container's timeline.
pub struct Moment {
    pub at: Timestamp,
    pub time: String,
    /// run, back-off, probe.
    pub kind: &'static str,
    pub text: String,
}

/// One container's crash loop.
pub struct Timeline {
    pub container: String,
    pub moments: Vec<Moment>,
    /// While in back-off: when the kubelet starts it again (RFC 3339, for the countdown) and
    /// that time in words.
    pub next_restart: Option<(String, String)>,
}

/// A run that ended: (started, finished) → how. Keyed to the second, as the kubelet reports
/// them: one run seen twice (its status re-read) is one run.
type Runs = BTreeMap<(Option<i64>, i64), (Option<Timestamp>, Timestamp, String)>;

/// How a run ended, in words.
fn ending(reason: &Option<String>, exit_code: i32, signal: Option<i32>) -> String {
    let mut t = format!("exit code {exit_code}");
    if let Some(r) = reason {
        t = format!("{r}, {t}");
    }
    if let Some(s) = signal {
        t.push_str(&format!(", signal {s}"));
    }
    t
}

fn seconds(d: jiff::SignedDuration) -> String {
    crashscope_model::duration::format_go(std::time::Duration::from_secs(
        d.as_secs().max(0).unsigned_abs(),
    ))
}

/// The timelines of `latest`'s containers that ever ended, from `history` (oldest first)
/// and the pod's `Unhealthy` events; `now` for the wait still to come.
pub fn timelines(
    history: &[(Timestamp, PodState)],
    latest: &PodState,
    unhealthy: &[StoredEvent],
    policy: &BackoffPolicy,
    scale: f64,
) -> Vec<Timeline> {
    let mut out = Vec::new();
    for c in &latest.containers {
        let mut runs = Runs::new();
        for (_, state) in history
            .iter()
            .chain(std::iter::once(&(Timestamp::MIN, latest.clone())))
        {
            let Some(view) = state.container(&c.name) else {
                continue;
            };
            for s in [Some(&view.state), view.last_state.as_ref()]
                .into_iter()
                .flatten()
            {
                if let ContainerState::Terminated {
                    reason,
                    exit_code,
                    signal,
                    started_at,
                    finished_at: Some(finished),
                    ..
                } = s
                {
                    runs.insert(
                        (started_at.map(|t| t.as_second()), finished.as_second()),
                        (*started_at, *finished, ending(reason, *exit_code, *signal)),
                    );
                }
            }
        }
        if runs.is_empty() {
            continue;
        }
        let mut moments = Vec::new();
        let mut previous_end: Option<Timestamp> = None;
        for (started, finished, how) in runs.values() {
            if let (Some(end), Some(start)) = (previous_end, started) {
                moments.push(Moment {
                    at: end,
                    time: short(end),
                    kind: "back-off",
                    text: format!("waited {} in back-off", seconds(start.duration_since(end))),
                });
            }
            let lasted = started
                .map(|s| format!(" after {}", seconds(finished.duration_since(s))))
                .unwrap_or_default();
            moments.push(Moment {
                at: started.unwrap_or(*finished),
                time: short(started.unwrap_or(*finished)),
                kind: "run",
                text: format!("a run ended{lasted}: {how}"),
            });
            previous_end = Some(*finished);
        }
        // Probe failures of this container (the kubelet names it in the message's object).
        for e in unhealthy {
            let about_it = e
                .event
                .scope
                .container
                .as_deref()
                .is_none_or(|x| x == c.name);
            if about_it {
                let mut text = format!("probe failed: {}", e.event.message);
                if e.event.count > 1 {
                    text.push_str(&format!(" (×{})", e.event.count));
                }
                moments.push(Moment {
                    at: e.event.last_seen,
                    time: short(e.event.last_seen),
                    kind: "probe",
                    text,
                });
            }
        }
        moments.sort_by_key(|m| m.at);
        let next_restart = c.backoff(policy).map(|b| {
            let b = b.scaled(scale);
            (
                b.next_restart.to_string(),
                format!(
                    "{} UTC (back-off step {} of {}, {} wait)",
                    short(b.next_restart),
                    b.step,
                    b.cap_step,
                    crashscope_model::duration::format_go(b.delay)
                ),
            )
        });
        out.push(Timeline {
            container: c.name.clone(),
            moments,
            next_restart,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(restarts: u32, last: Option<(i64, i64, i32)>, waiting: bool) -> PodState {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let mut status = serde_json::json!({
            "name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": restarts,
            "state": if waiting {
                serde_json::json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 20s restarting failed container=app pod=p_ns(u)"}})
            } else {
                serde_json::json!({"running": {"startedAt": t(0).to_string()}})
            },
        });
        if let Some((a, b, code)) = last {
            status["lastState"] = serde_json::json!({"terminated": {"exitCode": code,
                "reason": "Error", "startedAt": t(a).to_string(), "finishedAt": t(b).to_string()}});
        }
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "image": "i"}]},
            "status": {"phase": "Running", "containerStatuses": [status]}
        }))
        .unwrap();
        PodState::from_pod(&pod)
    }

    #[test]
    fn runs_waits_and_the_next_restart_come_from_the_recorded_states() {
        let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let history = vec![
            (at(3), state(1, Some((0, 2, 1)), true)),
            // Seen twice: one run.
            (at(5), state(1, Some((0, 2, 1)), true)),
            (at(30), state(2, Some((12, 15, 1)), true)),
        ];
        let latest = history[2].1.clone();
        let t = timelines(&history, &latest, &[], &BackoffPolicy::default(), 1.0);
        assert_eq!(t.len(), 1);
        let kinds: Vec<&str> = t[0].moments.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["run", "back-off", "run"]);
        assert_eq!(
            t[0].moments[0].text,
            "a run ended after 2s: Error, exit code 1"
        );
        assert_eq!(t[0].moments[1].text, "waited 10s in back-off");
        let (iso, words) = t[0].next_restart.clone().unwrap();
        // The kubelet's message says 20 s after the last exit.
        assert_eq!(iso, at(35).to_string());
        assert!(words.contains("20s wait"), "{words}");
        // A container that never ended has no timeline.
        let fresh = state(0, None, false);
        assert!(timelines(&[], &fresh, &[], &BackoffPolicy::default(), 1.0).is_empty());
    }
}
