//! Leases: which replica of the server holds a duty only one may do at a time (the rule
//! engine's evaluation and notifications), renewed by the holder and taken over by another
//! replica once the holder stops renewing (it died, or lost the store). One row per duty,
//! changed by one conditional upsert, so two replicas can never both hold it at a moment
//! the store decides — as long as their clocks agree within the lease's length.

use std::time::Duration;

use jiff::Timestamp;
use sqlx::Row;

use crate::error::Ctx;
use crate::sql::{ms, SqlStore};
use crate::StoreError;

/// Who holds a lease and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub expires_at: Timestamp,
}

impl SqlStore {
    /// Takes or renews lease `name` for `holder` until `now + ttl`; true when `holder` holds
    /// it afterwards (it was free, expired, or `holder`'s already).
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until = jiff::SignedDuration::try_from(ttl)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .unwrap_or(now);
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(ms(until))
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .ctx("take lease")?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives lease `name` up if `holder` holds it (a replica stopping): another replica takes
    /// it at its next try instead of waiting for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .ctx("release lease")?;
        Ok(())
    }

    /// Who holds lease `name` (possibly expired), if anyone took it.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx("read lease")?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = row.try_get("holder").ctx("read lease")?;
        let expires: i64 = row.try_get("expires_at").ctx("read lease")?;
        Ok(Some(Lease {
            holder,
            expires_at: Timestamp::from_millisecond(expires).unwrap_or(Timestamp::UNIX_EPOCH),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    const TTL: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn one_holder_at_a_time_and_takeover_after_expiry() {
        for (backend, store) in crate::testing::stores().await {
            assert!(
                store.try_lease("engine", "a", t(0), TTL).await.unwrap(),
                "{backend}"
            );
            // b cannot take it while a's lease runs; a renews it.
            assert!(
                !store.try_lease("engine", "b", t(5), TTL).await.unwrap(),
                "{backend}"
            );
            assert!(
                store.try_lease("engine", "a", t(8), TTL).await.unwrap(),
                "{backend}"
            );
            assert!(
                !store.try_lease("engine", "b", t(17), TTL).await.unwrap(),
                "{backend}"
            );
            // a stops renewing: once expired, b takes it, and a cannot renew any more.
            assert!(
                store.try_lease("engine", "b", t(19), TTL).await.unwrap(),
                "{backend}"
            );
            assert!(
                !store.try_lease("engine", "a", t(20), TTL).await.unwrap(),
                "{backend}"
            );
            let l = store.lease("engine").await.unwrap().unwrap();
            assert_eq!((l.holder.as_str(), l.expires_at), ("b", t(29)), "{backend}");
            // Other duties are other rows.
            assert!(
                store.try_lease("other", "a", t(20), TTL).await.unwrap(),
                "{backend}"
            );
        }
    }

    #[tokio::test]
    async fn a_released_lease_is_free_at_once_and_only_its_holder_releases_it() {
        for (backend, store) in crate::testing::stores().await {
            assert!(store.try_lease("engine", "a", t(0), TTL).await.unwrap());
            store.release_lease("engine", "b").await.unwrap();
            assert!(
                !store.try_lease("engine", "b", t(1), TTL).await.unwrap(),
                "{backend}"
            );
            store.release_lease("engine", "a").await.unwrap();
            assert!(
                store.try_lease("engine", "b", t(1), TTL).await.unwrap(),
                "{backend}"
            );
            assert_eq!(store.lease("nothing").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn concurrent_takers_of_a_free_lease_get_one_holder() {
        for (backend, store) in crate::testing::stores().await {
            let store = std::sync::Arc::new(store);
            let tries = (0..8).map(|i| {
                let s = store.clone();
                tokio::spawn(async move {
                    s.try_lease("engine", &format!("r{i}"), t(0), TTL)
                        .await
                        .unwrap()
                })
            });
            let mut won = 0;
            for h in tries {
                won += usize::from(h.await.unwrap());
            }
            assert_eq!(won, 1, "{backend}");
        }
    }
}
