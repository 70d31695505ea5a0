//! The life of one alert (one rule, one group) as a state machine: inactive → pending (the
//! condition holds, waiting out `for`) → firing (notified, re-notified every `renotify`) →
//! resolved (notified once) → inactive again on the next evaluation that finds nothing.

use std::time::Duration;

use crashscope_model::alert::AlertPhase;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    /// The condition has held since `since`, not yet for long enough.
    Pending {
        since: Timestamp,
    },
    /// Notified at `fired_at` (and again at `notified_at`).
    Firing {
        since: Timestamp,
        fired_at: Timestamp,
        notified_at: Timestamp,
    },
    /// The condition stopped holding at `resolved_at` after firing.
    Resolved {
        since: Timestamp,
        fired_at: Timestamp,
        resolved_at: Timestamp,
    },
}

/// What a step asks the server to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Tell the channels the alert fires (first time).
    NotifyFiring,
    /// Tell them again: it still fires after `renotify`.
    NotifyRepeat,
    /// Tell them it resolved.
    NotifyResolved,
    /// Run the rule's actions (capture requests) — once per firing.
    RunActions,
}

/// The rule's timing, as the state machine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub for_: Duration,
    pub renotify: Duration,
}

impl AlertState {
    /// The state after an evaluation at `now` found the condition `active` (or not).
    pub fn step(self, now: Timestamp, active: bool, timing: Timing) -> (AlertState, Vec<Effect>) {
        use AlertState::*;
        match (self, active) {
            (Inactive | Resolved { .. }, true) => Pending { since: now }.step(now, true, timing),
            (Pending { since }, true) => {
                if now.duration_since(since).unsigned_abs() >= timing.for_ {
                    let firing = Firing {
                        since,
                        fired_at: now,
                        notified_at: now,
                    };
                    (firing, vec![Effect::NotifyFiring, Effect::RunActions])
                } else {
                    (self, vec![])
                }
            }
            (Pending { .. }, false) => (Inactive, vec![]),
            (
                Firing {
                    since,
                    fired_at,
                    notified_at,
                },
                true,
            ) => {
                if now.duration_since(notified_at).unsigned_abs() >= timing.renotify {
                    let again = Firing {
                        since,
                        fired_at,
                        notified_at: now,
                    };
                    (again, vec![Effect::NotifyRepeat])
                } else {
                    (self, vec![])
                }
            }
            (
                Firing {
                    since, fired_at, ..
                },
                false,
            ) => (
                Resolved {
                    since,
                    fired_at,
                    resolved_at: now,
                },
                vec![Effect::NotifyResolved],
            ),
            (Inactive, false) => (Inactive, vec![]),
            (Resolved { .. }, false) => (self, vec![]),
        }
    }

    pub fn name(&self) -> &'static str {
        self.phase().map_or("inactive", AlertPhase::as_str)
    }

    /// The phase its episode is stored in; none while inactive.
    pub fn phase(&self) -> Option<AlertPhase> {
        match self {
            AlertState::Inactive => None,
            AlertState::Pending { .. } => Some(AlertPhase::Pending),
            AlertState::Firing { .. } => Some(AlertPhase::Firing),
            AlertState::Resolved { .. } => Some(AlertPhase::Resolved),
        }
    }

    /// The state a stored episode was in. Times the record lacks (a pending episode has
    /// not fired) fall back to when it began.
    pub fn restored(
        phase: AlertPhase,
        since: Timestamp,
        fired_at: Option<Timestamp>,
        notified_at: Option<Timestamp>,
        resolved_at: Option<Timestamp>,
    ) -> AlertState {
        let fired_at = fired_at.unwrap_or(since);
        match phase {
            AlertPhase::Pending => AlertState::Pending { since },
            AlertPhase::Firing => AlertState::Firing {
                since,
                fired_at,
                notified_at: notified_at.unwrap_or(fired_at),
            },
            AlertPhase::Resolved => AlertState::Resolved {
                since,
                fired_at,
                resolved_at: resolved_at.unwrap_or(fired_at),
            },
        }
    }

    /// When the current episode began (pending or firing or resolved).
    pub fn since(&self) -> Option<Timestamp> {
        match *self {
            AlertState::Inactive => None,
            AlertState::Pending { since }
            | AlertState::Firing { since, .. }
            | AlertState::Resolved { since, .. } => Some(since),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    const T: Timing = Timing {
        for_: Duration::from_secs(60),
        renotify: Duration::from_secs(3600),
    };

    #[test]
    fn pending_until_for_has_passed_then_firing_once() {
        let (s, e) = AlertState::Inactive.step(t(0), true, T);
        assert_eq!((s, e), (AlertState::Pending { since: t(0) }, vec![]));
        let (s, e) = s.step(t(30), true, T);
        assert!(matches!(s, AlertState::Pending { .. }) && e.is_empty());
        let (s, e) = s.step(t(60), true, T);
        assert_eq!(e, [Effect::NotifyFiring, Effect::RunActions]);
        assert_eq!(s.name(), "firing");
        let (s, e) = s.step(t(90), true, T);
        assert!(e.is_empty(), "no second notification before renotify");
        let (_, e) = s.step(t(60 + 3600), true, T);
        assert_eq!(e, [Effect::NotifyRepeat]);
    }

    #[test]
    fn a_blip_shorter_than_for_never_notifies() {
        let (s, _) = AlertState::Inactive.step(t(0), true, T);
        let (s, e) = s.step(t(30), false, T);
        assert_eq!((s, e), (AlertState::Inactive, vec![]));
    }

    #[test]
    fn zero_for_fires_at_once_and_resolving_notifies_once() {
        let now = Timing {
            for_: Duration::ZERO,
            ..T
        };
        let (s, e) = AlertState::Inactive.step(t(5), true, now);
        assert_eq!(e, [Effect::NotifyFiring, Effect::RunActions]);
        let (s, e) = s.step(t(10), false, now);
        assert_eq!(e, [Effect::NotifyResolved]);
        assert!(matches!(s, AlertState::Resolved { resolved_at, .. } if resolved_at == t(10)));
        let (s, e) = s.step(t(20), false, now);
        assert!(e.is_empty() && s.name() == "resolved");
        // It comes back: a new episode, notified again.
        let (s, e) = s.step(t(30), true, now);
        assert_eq!(e, [Effect::NotifyFiring, Effect::RunActions]);
        assert_eq!(s.since(), Some(t(30)));
    }

    #[test]
    fn a_stored_episode_is_restored_to_the_state_it_was_saved_in() {
        let firing = AlertState::restored(AlertPhase::Firing, t(0), Some(t(60)), None, None);
        assert_eq!(
            firing,
            AlertState::Firing {
                since: t(0),
                fired_at: t(60),
                notified_at: t(60)
            }
        );
        assert_eq!(firing.phase(), Some(AlertPhase::Firing));
        // Restored, it goes on as if the server had never stopped: no second first notice.
        let (_, effects) = firing.step(t(70), true, T);
        assert!(effects.is_empty(), "{effects:?}");
        let pending = AlertState::restored(AlertPhase::Pending, t(5), None, None, None);
        assert_eq!(pending, AlertState::Pending { since: t(5) });
        assert_eq!(AlertState::Inactive.phase(), None);
        assert_eq!(AlertState::Inactive.name(), "inactive");
    }
}
