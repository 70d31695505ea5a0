//! The capture-request loop on the store's desk, as the local runtime runs it: a request
//! wakes it at once (no polling interval to wait out), the recorder's captures are indexed
//! and the request taken; a pod of which nothing was recorded fails its request. The
//! recorder here is a stand-in that answers at once: what is tested is the loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crashscope_model::capture::{
    CaptureReport, ContainerRecorder, ContainerRef, RequestState, WrittenCapture,
};
use crashscope_store::fulfil::{fulfil, Patience, StoreDesk};
use crashscope_store::SqlStore;
use jiff::Timestamp;

/// Answers a snapshot of pod `web` with one capture per container; any other pod with none.
#[derive(Default)]
struct Answering {
    asked: Mutex<Vec<String>>,
}

impl ContainerRecorder for Answering {
    fn created(&self, _: i32, _: &ContainerRef) {}
    fn ended(
        &self,
        _: i32,
        _: &ContainerRef,
        _: i32,
        _: Box<dyn FnOnce(Result<WrittenCapture, String>) + Send>,
    ) {
    }
    fn snapshot(
        &self,
        namespace: &str,
        pod: &str,
        _: Option<&str>,
        _: Duration,
        _: Duration,
        report: CaptureReport,
    ) {
        self.asked.lock().unwrap().push(pod.to_string());
        if pod != "web" {
            return report(Vec::new());
        }
        let out = ["app", "sidecar"]
            .into_iter()
            .map(|c| {
                let who = ContainerRef {
                    namespace: namespace.into(),
                    pod: pod.into(),
                    container: c.into(),
                    instance: 4,
                    ..ContainerRef::default()
                };
                let written = WrittenCapture {
                    path: format!("/captures/{namespace}_{pod}_{c}_4-request-1.scap").into(),
                    from: Timestamp::UNIX_EPOCH,
                    to: Timestamp::UNIX_EPOCH,
                    events: 10,
                    drops: 0,
                    bytes: 100,
                };
                (who, Ok(written))
            })
            .collect();
        report(out)
    }
}

async fn state_of(store: &SqlStore, id: i64, want: RequestState) -> bool {
    for _ in 0..200 {
        if store.capture_request(id).await.unwrap().unwrap().state == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn requests_wake_the_loop_and_end_taken_or_failed() {
    let store = Arc::new(SqlStore::in_memory().await.unwrap());
    let recorder = Arc::new(Answering::default());
    // A poll far longer than the test: only the store's notice can wake the desk in time.
    let desk = Arc::new(StoreDesk::new(store.clone(), Duration::from_secs(3600)));
    let task = tokio::spawn(fulfil(desk, recorder.clone(), Patience::default(), |_| {
        true
    }));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let now = Timestamp::now();
    let web = store
        .request_capture(Some(1), "shop", "web", None, 5_000, now)
        .await
        .unwrap();
    assert!(state_of(&store, web.id, RequestState::Taken).await);
    let req = store.capture_request(web.id).await.unwrap().unwrap();
    assert_eq!(
        req.capture.as_deref(),
        Some("/captures/shop_web_app_4-request-1.scap,/captures/shop_web_sidecar_4-request-1.scap")
    );
    let indexed = store.captures().await.unwrap();
    assert_eq!(indexed.len(), 2);
    assert!(indexed
        .iter()
        .all(|c| c.reason == "request" && c.restart == Some(4)));

    let gone = store
        .request_capture(Some(2), "shop", "gone", None, 5_000, now)
        .await
        .unwrap();
    assert!(state_of(&store, gone.id, RequestState::Failed).await);
    // Each request was handed to the recorder once.
    assert_eq!(*recorder.asked.lock().unwrap(), ["web", "gone"]);
    task.abort();
}
