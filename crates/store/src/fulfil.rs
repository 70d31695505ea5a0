//! Fulfilling capture requests: the one loop that hands each open request for a pod to the
//! flight recorder of the pod's node and reports what it wrote — for the local runtime
//! (requests and captures in this store) and the node agent (both over the server's API)
//! alike. Each request moves by [`RequestState::step`]; the loop wakes when a request is made
//! (the store's notice, the server's long-poll) instead of asking on a timer.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crashscope_model::capture::{
    ContainerRecorder, ContainerRef, RequestEvent, RequestState, WrittenCapture,
};
use jiff::Timestamp;

use crate::{CaptureRecord, CaptureRequest, SqlStore, StoreError};

/// Where requests come from and where captures and outcomes go.
pub trait Desk: Send + Sync + 'static {
    type Error: Display + Send;
    /// Requests made since the last call (all open ones at first); waits until there are
    /// some or a while has passed.
    fn next(&self) -> impl Future<Output = Result<Vec<CaptureRequest>, Self::Error>> + Send;
    /// Takes the request, so that no other pass or recorder takes it too.
    fn claim(&self, req: &CaptureRequest) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Puts a capture that fulfils the request where it belongs; answers with its path.
    fn deliver(
        &self,
        req: &CaptureRequest,
        who: &ContainerRef,
        capture: &WrittenCapture,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
    /// Nothing of the pod was delivered.
    fn give_up(&self, req: &CaptureRequest)
        -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How long the recorder waits for a pod's containers.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// Every duration is multiplied by this (the local runtime's time scale).
    pub scale: f64,
    /// A crash-looping container runs again within the longest back-off (5 min), so a
    /// request waits that long for one of its containers to run.
    pub give_up: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            scale: 1.0,
            give_up: Duration::from_secs(330),
        }
    }
}

/// Runs until the desk's requests end (never, for the store and the server): each request
/// `ours` accepts is claimed once and handed to `recorder`; its captures are delivered as
/// they are written, and the request given up when none could be.
pub async fn fulfil<D: Desk>(
    desk: Arc<D>,
    recorder: Arc<dyn ContainerRecorder>,
    patience: Patience,
    ours: impl Fn(&CaptureRequest) -> bool,
) {
    let mut handled: HashSet<i64> = HashSet::new();
    let scale = patience.scale.max(0.0);
    loop {
        let open = match desk.next().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("capture requests: {e}");
                tokio::time::sleep(Duration::from_secs(2).mul_f64(scale.clamp(0.05, 1.0))).await;
                continue;
            }
        };
        for req in open {
            if !ours(&req) || !handled.insert(req.id) {
                continue;
            }
            if let Err(e) = desk.claim(&req).await {
                tracing::warn!("cannot take capture request {}: {e}", req.id);
                continue;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let wait = Duration::from_millis(u64::try_from(req.duration_ms).unwrap_or(0));
            recorder.snapshot(
                &req.namespace,
                &req.pod,
                req.container.as_deref(),
                wait.mul_f64(scale),
                patience.give_up.mul_f64(scale),
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
            let desk = desk.clone();
            tokio::spawn(async move {
                let mut delivered = 0;
                for (who, r) in rx.await.unwrap_or_default() {
                    let done = match r {
                        Ok(c) => desk
                            .deliver(&req, &who, &c)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    match done {
                        Ok(_) => delivered += 1,
                        Err(e) => tracing::warn!(
                            "capture request {}: {}/{} container {}: {e}",
                            req.id,
                            who.namespace,
                            who.pod,
                            who.container
                        ),
                    }
                }
                if delivered == 0 {
                    tracing::warn!(
                        "capture request {}: nothing of pod {}/{} was recorded; giving it up",
                        req.id,
                        req.namespace,
                        req.pod
                    );
                    if let Err(e) = desk.give_up(&req).await {
                        tracing::warn!("cannot give capture request {} up: {e}", req.id);
                    }
                }
            });
        }
    }
}

/// The store's index entry for a capture of `who`, taken for `reason` (crash, request).
pub fn capture_record(who: &ContainerRef, c: &WrittenCapture, reason: &str) -> CaptureRecord {
    CaptureRecord {
        cluster: None,
        id: 0,
        path: c.path.display().to_string(),
        namespace: Some(who.namespace.clone()),
        pod: Some(who.pod.clone()),
        container: Some(who.container.clone()),
        restart: Some(i64::from(who.instance)),
        window_from: c.from,
        window_to: c.to,
        bytes: i64::try_from(c.bytes).unwrap_or(i64::MAX),
        events: i64::try_from(c.events).unwrap_or(i64::MAX),
        drops: i64::try_from(c.drops).unwrap_or(i64::MAX),
        reason: reason.into(),
        created_at: Timestamp::now(),
    }
}

/// Requests made in this store, captures indexed in it: the local runtime's desk.
pub struct StoreDesk {
    store: Arc<SqlStore>,
    changes: tokio::sync::Mutex<tokio::sync::watch::Receiver<u64>>,
    /// Requests made by another process on the same store are found this often.
    poll: Duration,
}

impl StoreDesk {
    pub fn new(store: Arc<SqlStore>, poll: Duration) -> StoreDesk {
        let changes = tokio::sync::Mutex::new(store.watch_requests());
        StoreDesk {
            store,
            changes,
            poll,
        }
    }
}

impl Desk for StoreDesk {
    type Error = StoreError;

    async fn next(&self) -> Result<Vec<CaptureRequest>, StoreError> {
        let mut changes = self.changes.lock().await;
        loop {
            // Marked seen before reading, so a request made during the read wakes the next wait.
            changes.borrow_and_update();
            let open = self
                .store
                .capture_requests(Some(RequestState::Requested))
                .await?;
            if !open.is_empty() {
                return Ok(open);
            }
            let _ = tokio::time::timeout(self.poll, changes.changed()).await;
        }
    }

    async fn claim(&self, req: &CaptureRequest) -> Result<(), StoreError> {
        self.store
            .move_capture_request(req.id, RequestEvent::Claimed, None, Timestamp::now())
            .await
            .map(drop)
    }

    async fn deliver(
        &self,
        req: &CaptureRequest,
        who: &ContainerRef,
        capture: &WrittenCapture,
    ) -> Result<String, StoreError> {
        let record = capture_record(who, capture, "request");
        self.store.index_capture(&record).await?;
        self.store
            .move_capture_request(
                req.id,
                RequestEvent::Captured,
                Some(&record.path),
                Timestamp::now(),
            )
            .await?;
        Ok(record.path)
    }

    async fn give_up(&self, req: &CaptureRequest) -> Result<(), StoreError> {
        self.store
            .move_capture_request(req.id, RequestEvent::GaveUp, None, Timestamp::now())
            .await
            .map(drop)
    }
}
