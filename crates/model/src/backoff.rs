//! The kubelet's restart back-off for crashed containers, as an explicit state machine.
//!
//! Rules (kubelet `CrashLoopBackOff`): the first crash restarts at once and arms a 10 s delay;
//! each further crash doubles the delay up to a 300 s cap; a container that ran for 10 minutes
//! before crashing starts over at 10 s. While the delay since the last exit has not elapsed the
//! container waits in `CrashLoopBackOff` with the message
//! `back-off 40s restarting failed container=NAME pod=NAME_NAMESPACE(UID)`.
//! The reduced-decay variant (1 s initial, 60 s cap) and a configured cap are policies too.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::time::Duration;

use crate::duration::{format_go, parse_go};

/// The parameters of the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// A container that ran at least this long before exiting starts the back-off over.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy::kubelet()
    }
}

impl BackoffPolicy {
    /// The kubelet's default: 10 s, doubling, capped at 300 s, reset after 10 min.
    pub fn kubelet() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }

    /// The `ReduceDefaultCrashLoopBackOffDecay` variant: 1 s initial, 60 s cap.
    pub fn reduced_decay() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            ..BackoffPolicy::kubelet()
        }
    }

    /// The same policy with a different cap (the kubelet's `maxContainerRestartPeriod`).
    pub fn with_max(self, max: Duration) -> BackoffPolicy {
        BackoffPolicy {
            max: max.max(self.initial),
            ..self
        }
    }

    /// The delay on back-off step `step` (1 = initial).
    pub fn delay_for_step(&self, step: u32) -> Duration {
        let mut d = self.initial;
        for _ in 1..step {
            if d >= self.max {
                break;
            }
            d = d.saturating_mul(2);
        }
        d.min(self.max)
    }

    /// How many steps it takes to reach the cap (the cap's own step included).
    pub fn steps_to_cap(&self) -> u32 {
        let mut step = 1;
        while self.delay_for_step(step) < self.max && step < 64 {
            step += 1;
        }
        step
    }

    /// The step whose delay is `delay`, or the nearest step below it.
    pub fn step_of(&self, delay: Duration) -> u32 {
        let mut step = 1;
        while step < self.steps_to_cap() && self.delay_for_step(step + 1) <= delay {
            step += 1;
        }
        step
    }
}

/// Back-off state of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffState {
    /// No crash on record (or the record was reset).
    Clear,
    /// The last restart armed `delay` (on step `step`) at time `armed_at`.
    Armed {
        delay: Duration,
        step: u32,
        armed_at: Timestamp,
    },
}

/// What the runtime should do with an exited container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartNow,
    /// Stay in `CrashLoopBackOff` until `until`; `delay` is what the message reports.
    Wait {
        until: Timestamp,
        delay: Duration,
        step: u32,
    },
}

impl BackoffState {
    /// One step of the machine: the container exited at `finished_at`; at `now` the runtime
    /// asks whether it may restart it.
    pub fn step(
        self,
        policy: &BackoffPolicy,
        finished_at: Timestamp,
        now: Timestamp,
    ) -> (BackoffState, Decision) {
        if let BackoffState::Armed {
            delay,
            step,
            armed_at,
        } = self
        {
            let expired = elapsed(armed_at, finished_at) >= policy.reset_after;
            if !expired && elapsed(finished_at, now) < delay {
                let until = finished_at
                    .checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
                    .unwrap_or(Timestamp::MAX);
                return (self, Decision::Wait { until, delay, step });
            }
            if !expired {
                let step = (step + 1).min(policy.steps_to_cap());
                let next = BackoffState::Armed {
                    delay: policy.delay_for_step(step),
                    step,
                    armed_at: now,
                };
                return (next, Decision::RestartNow);
            }
        }
        let armed = BackoffState::Armed {
            delay: policy.initial,
            step: 1,
            armed_at: now,
        };
        (armed, Decision::RestartNow)
    }
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// The kubelet's waiting message for a container in back-off.
pub fn crash_loop_message(
    delay: Duration,
    container: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}_{namespace}({uid})",
        format_go(delay)
    )
}

/// The delay a kubelet back-off message reports ("back-off 40s restarting ..."; older kubelets
/// wrote "Back-off").
pub fn delay_from_message(message: &str) -> Option<Duration> {
    let lower = message.trim_start();
    let rest = lower
        .strip_prefix("back-off ")
        .or_else(|| lower.strip_prefix("Back-off "))?;
    parse_go(rest.split_whitespace().next()?)
}

/// Where a container in `CrashLoopBackOff` stands: what crashscope adds to kubectl's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BackoffEstimate {
    /// Back-off step (1 = initial delay).
    pub step: u32,
    /// Step on which the cap is reached.
    pub cap_step: u32,
    #[serde(with = "secs")]
    pub delay: Duration,
    /// When the kubelet will start the container again.
    pub next_restart: Timestamp,
    /// True when the delay was read from the kubelet's message, false when derived from the
    /// restart count.
    pub from_message: bool,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

impl BackoffEstimate {
    /// Estimates the back-off of a crash-looping container from its status: the waiting
    /// message when it names a delay, else the restart count under `policy`.
    pub fn from_status(
        policy: &BackoffPolicy,
        restart_count: u32,
        waiting_message: Option<&str>,
        last_started: Option<Timestamp>,
        last_finished: Timestamp,
    ) -> BackoffEstimate {
        let ran_long =
            last_started.is_some_and(|s| elapsed(s, last_finished) >= policy.reset_after);
        let from_msg = waiting_message.and_then(delay_from_message);
        let delay = match from_msg {
            Some(d) => d,
            None if ran_long => policy.initial,
            None => policy.delay_for_step(restart_count.max(1)),
        };
        let next_restart = last_finished
            .checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        BackoffEstimate {
            step: policy.step_of(delay),
            cap_step: policy.steps_to_cap(),
            delay,
            next_restart,
            from_message: from_msg.is_some(),
        }
    }

    /// The estimate for a runtime that runs `scale` times as fast (its messages still say the
    /// nominal delay): the restart comes after `delay × scale`.
    pub fn scaled(self, scale: f64) -> BackoffEstimate {
        if !(scale.is_finite() && scale > 0.0) || scale == 1.0 {
            return self;
        }
        let finished = self
            .next_restart
            .checked_sub(SignedDuration::try_from(self.delay).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(self.next_restart);
        let next_restart = finished
            .checked_add(SignedDuration::from_secs_f64(
                self.delay.as_secs_f64() * scale,
            ))
            .unwrap_or(self.next_restart);
        BackoffEstimate {
            next_restart,
            ..self
        }
    }
}

/// Set on pods by a runtime whose durations are scaled (the local runtime's `--time-scale`):
/// the kubelet's messages keep nominal delays, its restarts come `scale` times as soon.
pub const TIME_SCALE_ANNOTATION: &str = "crashscope.io/time-scale";

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_scaled_runtime_restarts_sooner_than_its_message_says() {
        let p = BackoffPolicy::default();
        let e = BackoffEstimate::from_status(&p, 4, None, Some(t(0)), t(10));
        assert_eq!(e.delay, Duration::from_secs(80));
        let fast = e.scaled(0.1);
        assert_eq!(fast.next_restart, t(18));
        assert_eq!(
            fast.delay, e.delay,
            "the nominal delay is what the kubelet says"
        );
        assert_eq!(e.scaled(1.0), e);
        assert_eq!(e.scaled(f64::NAN), e);
    }

    /// Drives an instantly crashing container: it exits as soon as it starts.
    fn crash_times(policy: &BackoffPolicy, crashes: usize) -> Vec<i64> {
        let mut state = BackoffState::Clear;
        let mut starts = vec![0i64];
        let mut now = 0i64;
        while starts.len() <= crashes {
            let finished = *starts.last().unwrap();
            loop {
                let (next, decision) = state.step(policy, t(finished), t(now));
                state = next;
                match decision {
                    Decision::RestartNow => break,
                    Decision::Wait { .. } => now += 1,
                }
            }
            starts.push(now);
        }
        starts
    }

    #[test]
    fn kubelet_sequence_restarts_at_0_10_30_70_and_caps_at_300() {
        let starts = crash_times(&BackoffPolicy::kubelet(), 9);
        // First restart at once, then 10, 20, 40, 80, 160, 300, 300 s apart.
        assert_eq!(starts, vec![0, 0, 10, 30, 70, 150, 310, 610, 910, 1210]);
    }

    #[test]
    fn reduced_decay_sequence() {
        let starts = crash_times(&BackoffPolicy::reduced_decay(), 9);
        assert_eq!(starts, vec![0, 0, 1, 3, 7, 15, 31, 63, 123, 183]);
    }

    #[test]
    fn configured_cap_is_honoured() {
        let p = BackoffPolicy::kubelet().with_max(Duration::from_secs(30));
        let starts = crash_times(&p, 5);
        assert_eq!(starts, vec![0, 0, 10, 30, 60, 90]);
        assert_eq!(p.steps_to_cap(), 3);
    }

    #[test]
    fn running_ten_minutes_resets_the_backoff() {
        let p = BackoffPolicy::kubelet();
        let mut state = BackoffState::Clear;
        for (finished, now) in [(0, 0), (0, 10), (10, 30)] {
            state = state.step(&p, t(finished), t(now)).0;
        }
        assert!(matches!(state, BackoffState::Armed { step: 3, .. }));
        // Restarted at 30, ran until 30 + 600: the next crash restarts at once on step 1.
        let (state, d) = state.step(&p, t(630), t(630));
        assert_eq!(d, Decision::RestartNow);
        assert!(matches!(state, BackoffState::Armed { step: 1, .. }));
        // ...and one that ran 9 minutes does not reset.
        let (_, d) = state.step(&p, t(630 + 540), t(630 + 540));
        assert!(matches!(d, Decision::Wait { step: 1, .. }));
    }

    #[test]
    fn waiting_reports_the_delay_and_when_it_ends() {
        let p = BackoffPolicy::kubelet();
        let (s, _) = BackoffState::Clear.step(&p, t(0), t(0));
        let (_, d) = s.step(&p, t(5), t(6));
        assert_eq!(
            d,
            Decision::Wait {
                until: t(15),
                delay: Duration::from_secs(10),
                step: 1
            }
        );
    }

    #[test]
    fn message_matches_the_kubelet() {
        assert_eq!(
            crash_loop_message(Duration::from_secs(40), "main", "my-pod", "argocd", "u1"),
            "back-off 40s restarting failed container=main pod=my-pod_argocd(u1)"
        );
        assert_eq!(
            delay_from_message("Back-off 40s restarting failed container=main pod=x"),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            delay_from_message("back-off 5m0s restarting failed"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(delay_from_message("Back-off pulling image"), None);
    }

    #[test]
    fn estimate_prefers_the_message_then_the_restart_count() {
        let p = BackoffPolicy::kubelet();
        let e = BackoffEstimate::from_status(&p, 3, Some("Back-off 40s restarting"), None, t(0));
        assert_eq!((e.step, e.cap_step, e.from_message), (3, 6, true));
        assert_eq!(e.next_restart, t(40));
        let e = BackoffEstimate::from_status(&p, 5, None, Some(t(-1)), t(0));
        assert_eq!((e.delay.as_secs(), e.step, e.from_message), (160, 5, false));
        let e = BackoffEstimate::from_status(&p, 40, None, None, t(0));
        assert_eq!((e.delay.as_secs(), e.step), (300, 6));
        // A last run of 10+ minutes means the kubelet started over.
        let e = BackoffEstimate::from_status(&p, 40, None, Some(t(-700)), t(0));
        assert_eq!(e.delay.as_secs(), 10);
    }
}
