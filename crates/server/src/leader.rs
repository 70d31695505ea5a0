//! Which replica of the server runs the rule engine. Several replicas may serve one
//! PostgreSQL store (all serve the API and ingest); exactly one evaluates the rules and sends
//! notifications — the holder of the store's `engine` lease, renewed every round. When the
//! holder dies another replica takes the lease once it expires (at most its length plus a
//! round later), restores the alerts from the store and goes on: no alert is notified
//! twice, and none is left unresolved.

use std::sync::Arc;
use std::time::Duration;

use crashscope_store::{SqlStore, StoreError};
use jiff::Timestamp;

/// The lease's name in the store.
pub const ENGINE_LEASE: &str = "engine";

/// Whether this replica runs the engine: an explicit state machine over each round's try
/// of the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    Standby,
    Leading,
}

/// A change of leadership, for the log and for restoring alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Took,
    Lost,
}

impl Leadership {
    /// The next state after a round's try of the lease: `held` says whether the lease is
    /// this replica's now, `None` when the store could not be asked.
    pub fn step(self, held: Option<bool>) -> (Leadership, Option<Change>) {
        use Leadership::*;
        match (self, held) {
            (Standby, Some(true)) => (Leading, Some(Change::Took)),
            (Leading, Some(false)) => (Standby, Some(Change::Lost)),
            // A leader that cannot reach the store cannot know that its lease still runs:
            // it stops, rather than risk notifying beside the replica that took over.
            (Leading, None) => (Standby, Some(Change::Lost)),
            (s, _) => (s, None),
        }
    }
}

/// This replica: its identity in the lease and the lease's length.
#[derive(Clone)]
pub struct Replica {
    store: Arc<SqlStore>,
    id: Arc<str>,
    ttl: Duration,
}

impl Replica {
    /// A replica evaluating every `interval`: its lease lasts three rounds (at least 3 s),
    /// so a round or two late (a slow store, a pause) does not hand the engine over.
    pub fn new(store: Arc<SqlStore>, interval: Duration) -> Replica {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown-host".into());
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "{host}/{}/{}/{}",
            std::process::id(),
            Timestamp::now().as_nanosecond() % 1_000_000_000,
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        Replica {
            store,
            id: id.into(),
            ttl: (interval * 3).max(Duration::from_secs(3)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Takes or renews the engine's lease; whether this replica holds it.
    pub async fn try_hold(&self, now: Timestamp) -> Result<bool, StoreError> {
        self.store
            .try_lease(ENGINE_LEASE, &self.id, now, self.ttl)
            .await
    }

    /// Gives the lease up (the server stops).
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(ENGINE_LEASE, &self.id).await {
            tracing::warn!(error = %e, "cannot release the engine's lease; another replica takes it when it expires");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Leadership::*;

    #[test]
    fn a_replica_leads_while_it_holds_the_lease() {
        assert_eq!(Standby.step(Some(false)), (Standby, None));
        assert_eq!(Standby.step(Some(true)), (Leading, Some(Change::Took)));
        assert_eq!(Leading.step(Some(true)), (Leading, None));
        assert_eq!(Leading.step(Some(false)), (Standby, Some(Change::Lost)));
    }

    #[test]
    fn a_leader_that_cannot_reach_the_store_stands_down() {
        assert_eq!(Leading.step(None), (Standby, Some(Change::Lost)));
        assert_eq!(Standby.step(None), (Standby, None));
    }

    #[tokio::test]
    async fn two_replicas_one_leader_and_a_release_hands_over() {
        let store = Arc::new(SqlStore::in_memory().await.unwrap());
        let a = Replica::new(store.clone(), Duration::from_secs(1));
        let b = Replica::new(store.clone(), Duration::from_secs(1));
        assert_ne!(a.id(), b.id());
        let now = Timestamp::now();
        assert!(a.try_hold(now).await.unwrap());
        assert!(!b.try_hold(now).await.unwrap());
        a.release().await;
        assert!(b.try_hold(now).await.unwrap());
        assert!(!a.try_hold(now).await.unwrap());
    }
}
