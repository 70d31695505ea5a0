//! Health and readiness of the watchers, for `/healthz` and `/readyz`: each watcher is a small
//! state machine driven by what it reports. Ready means the pods and events watchers have
//! listed everything once (the store then reflects the cluster); healthy means no watcher has
//! been failing for longer than a grace period (a probe restarts a stuck watcher process).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::watch::{Change, EVENTS, PODS, RESOURCES};

/// Where one watcher stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum WatcherHealth {
    /// Nothing reported yet.
    Starting,
    /// Listing (first time, or again after 410); `synced` if a list completed before.
    Listing { synced: bool },
    /// Listed and watching.
    Live,
    /// Errors since `since`, retrying; `synced` if a list completed before.
    Failing {
        since: Timestamp,
        error: String,
        synced: bool,
    },
}

/// What a watcher reported, reduced to what health needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Relist,
    Synced,
    /// An object arrived: the watch works.
    Item,
    Error(String),
}

impl WatcherHealth {
    fn synced(&self) -> bool {
        match self {
            WatcherHealth::Starting => false,
            WatcherHealth::Live => true,
            WatcherHealth::Listing { synced } | WatcherHealth::Failing { synced, .. } => *synced,
        }
    }

    pub fn step(self, signal: Signal, now: Timestamp) -> WatcherHealth {
        let synced = self.synced();
        match (self, signal) {
            (_, Signal::Relist) => WatcherHealth::Listing { synced },
            (_, Signal::Synced) => WatcherHealth::Live,
            (WatcherHealth::Failing { .. }, Signal::Item) if synced => WatcherHealth::Live,
            (WatcherHealth::Failing { .. } | WatcherHealth::Starting, Signal::Item) => {
                WatcherHealth::Listing { synced }
            }
            (s @ (WatcherHealth::Live | WatcherHealth::Listing { .. }), Signal::Item) => s,
            (WatcherHealth::Failing { since, .. }, Signal::Error(error)) => {
                WatcherHealth::Failing {
                    since,
                    error,
                    synced,
                }
            }
            (_, Signal::Error(error)) => WatcherHealth::Failing {
                since: now,
                error,
                synced,
            },
        }
    }
}

/// All watchers' health.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub watchers: BTreeMap<&'static str, WatcherHealth>,
    /// How long a watcher may fail before the process counts as unhealthy.
    #[serde(skip)]
    pub grace: SignedDuration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            watchers: RESOURCES
                .iter()
                .map(|r| (*r, WatcherHealth::Starting))
                .collect(),
            grace: SignedDuration::from_mins(5),
        }
    }
}

impl Health {
    /// Follows one change of the merged stream.
    pub fn observe(&mut self, change: &Change, now: Timestamp) {
        let signal = match change {
            Change::Relist(_) => Signal::Relist,
            Change::Synced(_) => Signal::Synced,
            Change::Error { message, .. } => Signal::Error(message.clone()),
            _ => Signal::Item,
        };
        let w = self
            .watchers
            .entry(change.resource())
            .or_insert(WatcherHealth::Starting);
        *w = w.clone().step(signal, now);
    }

    /// The store reflects the cluster's pods and events.
    pub fn ready(&self) -> bool {
        [PODS, EVENTS]
            .iter()
            .all(|r| self.watchers.get(r).is_some_and(WatcherHealth::synced))
    }

    /// Watchers failing for longer than the grace period.
    pub fn failing(&self, now: Timestamp) -> Vec<(&'static str, &str)> {
        self.watchers
            .iter()
            .filter_map(|(r, w)| match w {
                WatcherHealth::Failing { since, error, .. }
                    if now.duration_since(*since) > self.grace =>
                {
                    Some((*r, error.as_str()))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn a_watcher_is_live_after_its_first_list_and_stays_synced_through_a_relist() {
        let w = WatcherHealth::Starting
            .step(Signal::Relist, t(0))
            .step(Signal::Item, t(1));
        assert_eq!(w, WatcherHealth::Listing { synced: false });
        let w = w.step(Signal::Synced, t(2));
        assert_eq!(w, WatcherHealth::Live);
        let w = w.step(Signal::Relist, t(3));
        assert_eq!(w, WatcherHealth::Listing { synced: true });
    }

    #[test]
    fn failures_keep_their_start_and_end_with_the_next_object() {
        let w = WatcherHealth::Live
            .step(Signal::Error("a".into()), t(10))
            .step(Signal::Error("b".into()), t(20));
        assert_eq!(
            w,
            WatcherHealth::Failing {
                since: t(10),
                error: "b".into(),
                synced: true
            }
        );
        assert_eq!(w.step(Signal::Item, t(30)), WatcherHealth::Live);
        // Never listed: an object is not enough, the list must complete.
        let w = WatcherHealth::Starting.step(Signal::Error("403".into()), t(0));
        assert_eq!(
            w.clone().step(Signal::Item, t(1)),
            WatcherHealth::Listing { synced: false }
        );
    }

    #[test]
    fn ready_needs_pods_and_events_and_health_allows_a_grace_period() {
        let mut h = Health::default();
        assert!(!h.ready());
        h.observe(&Change::Synced(PODS), t(0));
        assert!(!h.ready());
        h.observe(&Change::Synced(EVENTS), t(0));
        assert!(
            h.ready(),
            "nodes and deployments are optional for readiness"
        );
        let forbidden = Change::Error {
            resource: crate::watch::NODES,
            message: "forbidden".into(),
        };
        h.observe(&forbidden, t(0));
        assert!(h.failing(t(60)).is_empty());
        assert_eq!(h.failing(t(301)), vec![("nodes", "forbidden")]);
        assert!(h.ready());
    }
}
