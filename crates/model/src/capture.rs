//! What a system-call recorder and the sources that start containers say to each other: which
//! container instance, the capture written for it, and the port a recorder implements. Lives
//! here so the eBPF recorder, the local runtime and the node agent share it without depending
//! on each other.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
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

    /// What the runtime knows about the container whose process is `pid` that its system
    /// calls do not say — why it killed it, how much memory it had used — written into its
    /// capture as a notification named `id`.
    fn note(&self, pid: i32, id: &str, text: String) {
        let _ = (pid, id, text);
    }

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

/// The name the recorder gives a capture file, and how readers get the container instance
/// back from it: `NAMESPACE_POD_CONTAINER_RESTART.scap`, with `-request-SEQ` before `.scap`
/// for a capture taken on request. Kubernetes names have no `_`, so it splits back
/// unambiguously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureName {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The restart count of the instance recorded.
    pub instance: i32,
    /// The sequence number of the request it was taken for.
    pub request: Option<u64>,
}

impl CaptureName {
    /// The name of the capture of `who` (taken on request `request`).
    pub fn of(who: &ContainerRef, request: Option<u64>) -> CaptureName {
        CaptureName {
            namespace: who.namespace.clone(),
            pod: who.pod.clone(),
            container: who.container.clone(),
            instance: who.instance,
            request,
        }
    }

    pub fn file_name(&self) -> String {
        let request = self
            .request
            .map(|seq| format!("-request-{seq}"))
            .unwrap_or_default();
        format!(
            "{}_{}_{}_{}{request}.scap",
            self.namespace, self.pod, self.container, self.instance
        )
    }

    /// The parts of a recorder's file name; None for any other file.
    pub fn parse(name: &str) -> Option<CaptureName> {
        let stem = name.strip_suffix(".scap")?;
        let mut it = stem.rsplitn(4, '_');
        let last = it.next()?;
        let (instance, request) = match last.split_once("-request-") {
            Some((i, seq)) => (i, Some(seq.parse().ok()?)),
            None => (last, None),
        };
        let instance = instance.parse().ok()?;
        let container = it.next()?.to_string();
        let pod = it.next()?.to_string();
        let namespace = it.next()?.to_string();
        Some(CaptureName {
            namespace,
            pod,
            container,
            instance,
            request,
        })
    }
}

/// Where a capture request is. An alert's action (or an operator) requests a capture of a
/// pod; the recorder of the pod's node claims it, then it is taken — one capture per
/// container instance — or failed, when nothing of the pod was recorded in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Requested,
    /// A recorder took it and is waiting for the pod's containers.
    Taking,
    Taken,
    Failed,
}

/// What happens to a capture request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEvent {
    /// A recorder takes it (no other will).
    Claimed,
    /// A capture fulfilling it arrived.
    Captured,
    /// The recorder gave it up: nothing of the pod was recorded.
    GaveUp,
}

/// A capture request cannot make that move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a capture request that is {from} cannot be {event}")]
pub struct BadMove {
    pub from: RequestState,
    pub event: &'static str,
}

impl RequestState {
    pub const ALL: [RequestState; 4] = [
        RequestState::Requested,
        RequestState::Taking,
        RequestState::Taken,
        RequestState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Requested => "requested",
            RequestState::Taking => "taking",
            RequestState::Taken => "taken",
            RequestState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The state after `event`. A taken request stays taken when more captures arrive (one
    /// per container instance); it cannot be given up any more.
    pub fn step(self, event: RequestEvent) -> Result<RequestState, BadMove> {
        use RequestEvent::*;
        use RequestState::*;
        match (self, event) {
            (Requested, Claimed) => Ok(Taking),
            (Requested | Taking | Taken, Captured) => Ok(Taken),
            (Requested | Taking, GaveUp) => Ok(Failed),
            (from, event) => Err(BadMove {
                from,
                event: match event {
                    Claimed => "claimed",
                    Captured => "fulfilled",
                    GaveUp => "given up",
                },
            }),
        }
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_split_back_into_the_instance_they_name() {
        let who = ContainerRef {
            namespace: "default".into(),
            pod: "nginx-59f7fb6775-bbvrm".into(),
            container: "nginx".into(),
            instance: 3,
            ..ContainerRef::default()
        };
        let crash = CaptureName::of(&who, None);
        assert_eq!(
            crash.file_name(),
            "default_nginx-59f7fb6775-bbvrm_nginx_3.scap"
        );
        assert_eq!(CaptureName::parse(&crash.file_name()), Some(crash));
        let asked = CaptureName::of(&who, Some(1764360000000));
        assert_eq!(
            asked.file_name(),
            "default_nginx-59f7fb6775-bbvrm_nginx_3-request-1764360000000.scap"
        );
        assert_eq!(CaptureName::parse(&asked.file_name()), Some(asked));
        assert_eq!(CaptureName::parse("notes.txt"), None);
        assert_eq!(CaptureName::parse("a_b.scap"), None);
        assert_eq!(CaptureName::parse("a_b_c_x.scap"), None);
    }

    #[test]
    fn capture_requests_move_only_forward() {
        use RequestEvent::*;
        use RequestState::*;
        assert_eq!(Requested.step(Claimed), Ok(Taking));
        assert_eq!(Taking.step(Captured), Ok(Taken));
        assert_eq!(Taking.step(GaveUp), Ok(Failed));
        // An agent sends its capture with the request id without claiming it first.
        assert_eq!(Requested.step(Captured), Ok(Taken));
        assert_eq!(Taken.step(Captured), Ok(Taken));
        assert!(Taken.step(GaveUp).is_err());
        let e = Taking.step(Claimed).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a capture request that is taking cannot be claimed"
        );
        assert!(Failed.step(Captured).is_err());
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(RequestState::parse("done"), None);
    }
}
