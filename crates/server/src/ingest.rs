//! Custom-event ingestion with group commit: concurrent posts queue here and one writer task
//! stores whatever has queued in a single transaction, so one commit (one fsync of the WAL)
//! serves many requests. A post is answered only after its transaction committed — an
//! acknowledged event survives a crash of the server.

use crashscope_model::Event;
use crashscope_store::{SqlStore, StoredEvent};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(StoredEvent, bool), String>>;

struct Job {
    event: Event,
    key: Option<String>,
    reply: Reply,
}

/// The queue in front of the writer.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(store: Arc<SqlStore>, metrics: Arc<Metrics>) -> Ingest {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(writer(store, metrics, rx));
        Ingest { tx }
    }

    /// Stores `event`; the stored event and whether it is new (false: the idempotency key was
    /// seen before). Errors are the store's, already logged.
    pub async fn submit(
        &self,
        event: Event,
        key: Option<String>,
    ) -> Result<(StoredEvent, bool), String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { event, key, reply })
            .await
            .map_err(|_| "the event writer stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the event writer stopped".to_string())?
    }
}

async fn writer(store: Arc<SqlStore>, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let items: Vec<(Event, Option<String>)> = batch
            .iter()
            .map(|j| (j.event.clone(), j.key.clone()))
            .collect();
        let started = Instant::now();
        let result = store.insert_custom_events(&items).await;
        metrics.store_latency("insert_events", started.elapsed().as_secs_f64());
        tracing::debug!(events = items.len(), took = ?started.elapsed(), "event batch stored");
        match result {
            Ok(stored) => {
                for (job, (ev, created)) in batch.drain(..).zip(stored) {
                    if created {
                        metrics.event_ingested(&ev.event.source, ev.event.severity.as_str());
                    }
                    let _ = job.reply.send(Ok((ev, created)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "storing events failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}
