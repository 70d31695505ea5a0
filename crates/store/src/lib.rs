//! crashscope's store: events (deduplicated the way the API server aggregates them), pod
//! states over time and restart samples.
//!
//! Sources use the [`Store`] trait; [`SqlStore`] implements it on SQLite (one file in the data
//! directory) or PostgreSQL, chosen by URL. The server's records (custom events, alerts,
//! silences, capture requests, the capture index) are inherent methods of [`SqlStore`].
//! Every source writes through the one [`Ingest`] writer; capture requests are fulfilled by
//! the one loop in [`fulfil`], for the local runtime and the node agent alike.

mod error;
mod events;
pub mod fulfil;
pub mod ingest;
mod lease;
pub mod private;
mod query;
mod records;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use crashscope_model::RestartSample;
pub use error::StoreError;
pub use events::{Facet, FeedSample, FACET_SAMPLE};
pub use ingest::{Feed, Ingest, Tally};
pub use lease::Lease;
pub use query::{Column, Cursor, EventQuery, PodChange, StoredEvent, Upsert};
pub use records::{AlertRecord, CaptureRecord, CaptureRequest, SilenceRecord, Table};
pub use sql::{Backend, SqlStore};

use crashscope_model::{Event, PodState};
use jiff::Timestamp;
use std::future::Future;

/// What every store backend offers.
pub trait Store: Send + Sync {
    /// Records an event occurrence: a new row, or a higher count / later last-seen on the
    /// row with the same dedup key.
    fn upsert_event(&self, ev: &Event) -> impl Future<Output = Result<Upsert, StoreError>> + Send;

    /// Events matching `q`, newest first.
    fn events(
        &self,
        q: &EventQuery,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Records the state of a pod observed at `at`; stores a row only when the state changed
    /// and a restart sample for each container whose restart count rose.
    fn record_pod(
        &self,
        at: Timestamp,
        pod: &PodState,
    ) -> impl Future<Output = Result<PodChange, StoreError>> + Send;

    /// The states recorded for one pod, oldest first.
    fn pod_history(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<(Timestamp, PodState)>, StoreError>> + Send;

    /// Stores the current version of an object (replacing the previous one).
    fn put_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes an object; true when it existed.
    fn delete_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Current objects of `kind`, by namespace and name.
    fn objects(
        &self,
        kind: &str,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, StoreError>> + Send;

    /// Restart samples observed in `[from, to)`, oldest first.
    fn restart_samples(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<RestartSample>, StoreError>> + Send;
}
