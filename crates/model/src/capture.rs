//! What a system-call recorder and the sources that start containers say to each other: which
//! container instance, the capture written for it, and the port a recorder implements. Lives
//! here so the eBPF recorder, the local runtime and the node agent share it without depending
//! on each other.

use jiff::Timestamp;
use std::path::PathBuf;

/// A capture a recorder wrote: where, which stretch of time, how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCapture {
    pub path: PathBuf,
    pub from: Timestamp,
    pub to: Timestamp,
    pub events: u64,
    /// Events the probe lost while recording (all containers: the ring is shared).
    pub drops: u64,
    pub bytes: u64,
}

/// Which container instance a recorder is told about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    pub image: String,
    /// The restart count of this instance.
    pub instance: i32,
}

/// A system-call recorder following the runtime's containers (the eBPF flight recorder).
pub trait ContainerRecorder: Send + Sync {
    /// The container's process exists and has not run yet.
    fn created(&self, pid: i32, who: &ContainerRef);
    /// It ended with `exit_code` (128 + signal when killed). `report` is called once with
    /// the capture written for it, if the recorder writes one.
    fn ended(
        &self,
        pid: i32,
        who: &ContainerRef,
        exit_code: i32,
        report: Box<dyn FnOnce(Result<WrittenCapture, String>) + Send>,
    );

    /// A capture of pod `namespace/pod` was requested (an alert's action). Fulfilled by the
    /// next failure of one of its containers (the rate limit lifted for it), or — once a
    /// container has run for `wait` — by a copy of its recent window; after `give_up`, by
    /// whatever runs then. `report` gets one entry per container instance; none when nothing
    /// of the pod was recorded.
    fn snapshot(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        wait: std::time::Duration,
        give_up: std::time::Duration,
        report: CaptureReport,
    ) {
        let _ = (namespace, pod, container, wait, give_up);
        report(Vec::new());
    }
}

/// What a capture request gets back: per container instance, its capture or why not.
pub type CaptureReport =
    Box<dyn FnOnce(Vec<(ContainerRef, Result<WrittenCapture, String>)>) + Send>;
