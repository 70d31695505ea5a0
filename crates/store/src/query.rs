//! The values that go in and out of a store: event queries and results, upsert outcomes,
//! pod changes and restart samples.

use crashscope_model::{Event, RestartSample, Severity};
use jiff::Timestamp;
use serde::Serialize;

/// Which events to return. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub min_severity: Option<Severity>,
    /// Only events of this cluster (several clusters feeding one store).
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub workload_kind: Option<String>,
    pub workload_name: Option<String>,
    pub pod: Option<String>,
    pub reason: Option<String>,
    pub source: Option<String>,
    /// Case-insensitive substring of the message or reason.
    pub text: Option<String>,
    /// Events whose column has none of these values (events without a value stay).
    pub excluded: Vec<(Column, String)>,
    /// Only events older than this position in the feed (the next page).
    pub before: Option<Cursor>,
    pub limit: Option<u32>,
}

/// A column an event query can exclude values of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Cluster,
    Namespace,
    Node,
    Pod,
    Reason,
    Source,
}

impl Column {
    pub const ALL: [Column; 6] = [
        Column::Cluster,
        Column::Namespace,
        Column::Node,
        Column::Pod,
        Column::Reason,
        Column::Source,
    ];

    /// Its name in queries (and in the events table).
    pub fn name(self) -> &'static str {
        match self {
            Column::Cluster => "cluster",
            Column::Namespace => "namespace",
            Column::Node => "node",
            Column::Pod => "pod",
            Column::Reason => "reason",
            Column::Source => "source",
        }
    }

    pub fn parse(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A position in the newest-first event feed: the last event of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub last_seen: i64,
    pub id: i64,
}

impl Cursor {
    /// The cursor after `ev` in the feed.
    pub fn after(ev: &StoredEvent) -> Cursor {
        Cursor {
            last_seen: ev.event.last_seen.as_millisecond(),
            id: ev.id,
        }
    }

    /// The opaque form handed to API clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.last_seen, self.id)
    }

    /// Reads what [`Cursor::encode`] wrote; None for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (a, b) = s.split_once('.')?;
        Some(Cursor {
            last_seen: a.parse().ok()?,
            id: b.parse().ok()?,
        })
    }
}

/// An event as stored, with its row id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new occurrence.
    Inserted { id: i64 },
    /// A known occurrence happened again `added` more times (or was seen later).
    Updated { id: i64, added: u32 },
    /// Nothing new (a replay of what is stored).
    Unchanged { id: i64 },
}

/// What recording a pod state did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodChange {
    /// The state differed from the last one stored and was recorded.
    pub stored: bool,
    /// Restart samples written (containers whose restart count rose, or first seen).
    pub restarts: Vec<RestartSample>,
}
