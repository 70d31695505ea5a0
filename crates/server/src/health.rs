//! Whether the rule engine is doing its job, for `/readyz`: ready once a round has run, and
//! not ready again while rounds keep failing — a server that answers but never alerts is
//! not ready.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// Failed rounds in a row after which the server says it is not ready.
pub const FAILING_AFTER: u32 = 3;

/// The engine's recent rounds.
#[derive(Default)]
pub struct EngineHealth {
    ran: AtomicBool,
    failures_in_a_row: AtomicU32,
    last_error: Mutex<String>,
}

/// What `/readyz` says.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Starting,
    Ready,
    Failing { rounds: u32, error: String },
}

impl EngineHealth {
    pub fn succeeded(&self) {
        self.ran.store(true, Ordering::Relaxed);
        self.failures_in_a_row.store(0, Ordering::Relaxed);
    }

    pub fn failed(&self, error: &dyn std::fmt::Display) {
        self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = error.to_string();
        }
    }

    pub fn readiness(&self) -> Readiness {
        let failing = self.failures_in_a_row.load(Ordering::Relaxed);
        if failing >= FAILING_AFTER {
            let error = self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            return Readiness::Failing {
                rounds: failing,
                error,
            };
        }
        if self.ran.load(Ordering::Relaxed) {
            Readiness::Ready
        } else {
            Readiness::Starting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_a_round_and_not_while_rounds_keep_failing() {
        let h = EngineHealth::default();
        assert_eq!(h.readiness(), Readiness::Starting);
        h.succeeded();
        assert_eq!(h.readiness(), Readiness::Ready);
        for _ in 0..FAILING_AFTER - 1 {
            h.failed(&"store down");
        }
        assert_eq!(
            h.readiness(),
            Readiness::Ready,
            "a failure or two is a blip"
        );
        h.failed(&"store down");
        assert!(
            matches!(h.readiness(), Readiness::Failing { rounds: 3, ref error } if error == "store down")
        );
        h.succeeded();
        assert_eq!(h.readiness(), Readiness::Ready);
    }
}
