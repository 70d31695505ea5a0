//! One crashed container instance and everything known about it: its spec and status, the
//! events about it, its previous log, the capture of its run, changes before the first crash.
//! Rules read a case; they never see more than this.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

use crashscope_model::Event;

use crate::capture::CaptureFacts;
use crate::evidence::{Evidence, Source};
use crate::logs::LogText;

/// How the instance ended, from `lastState.terminated` (or `state.terminated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub reason: Option<String>,
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The field path it was read from.
    pub pointer: String,
}

/// A waiting state with its reason (`CrashLoopBackOff`, `CreateContainerConfigError`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: Option<String>,
    pub pointer: String,
}

/// The container instance being diagnosed.
pub struct Case<'a> {
    pub pod: &'a Pod,
    pub namespace: String,
    pub pod_name: String,
    pub container: String,
    pub init: bool,
    pub spec: Option<&'a Container>,
    /// `spec.containers[i]` or `spec.initContainers[i]`.
    pub spec_pointer: String,
    pub status: Option<&'a ContainerStatus>,
    pub ended: Option<Ended>,
    pub waiting: Option<Waiting>,
    pub restarts: u32,
    /// Kubernetes events about this pod (this container's, or the pod's) and its node.
    pub events: Vec<&'a Event>,
    /// Custom events and rollouts in the pod's namespace or workload.
    pub changes: Vec<&'a Event>,
    pub log: Option<&'a LogText>,
    pub capture: Option<&'a CaptureFacts>,
    /// The pod's other containers' names and ports (for sidecars and port clashes).
    pub siblings: Vec<(&'a str, Vec<u16>)>,
    /// The rest of the cluster (Services, other pods).
    pub world: &'a crate::world::World,
}

impl<'a> Case<'a> {
    pub fn exit_code(&self) -> Option<i32> {
        self.ended.as_ref().map(|e| e.exit_code)
    }

    pub fn reason(&self) -> Option<&str> {
        self.ended.as_ref().and_then(|e| e.reason.as_deref())
    }

    /// The signal that ended the run: the status's own, else 128+N exit codes.
    pub fn signal(&self) -> Option<i32> {
        let e = self.ended.as_ref()?;
        e.signal.or_else(|| {
            (129..=159)
                .contains(&e.exit_code)
                .then(|| e.exit_code - 128)
        })
    }

    /// How long the instance ran.
    pub fn lifetime(&self) -> Option<jiff::SignedDuration> {
        let e = self.ended.as_ref()?;
        Some(e.finished_at?.duration_since(e.started_at?))
    }

    /// Evidence citing the termination: reason and exit code.
    pub fn ended_evidence(&self) -> Option<Evidence> {
        let e = self.ended.as_ref()?;
        let mut text = format!(
            "{} (exit code {})",
            e.reason.as_deref().unwrap_or("Terminated"),
            e.exit_code
        );
        if let Some(s) = e.signal {
            text.push_str(&format!(", signal {s}"));
        }
        if let Some(m) = e.message.as_deref().filter(|m| !m.is_empty()) {
            text.push_str(": ");
            text.push_str(first_line(m));
        }
        Some(Evidence::new(Source::Status, &e.pointer, text))
    }

    /// Events of this case whose reason is one of `reasons`, newest first.
    pub fn events_with(&self, reasons: &[&str]) -> Vec<&'a Event> {
        let mut v: Vec<&Event> = self
            .events
            .iter()
            .copied()
            .filter(|e| reasons.contains(&e.reason.as_str()))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
        v
    }

    /// The pointer to an event.
    pub fn event_pointer(e: &Event) -> String {
        let mut p = format!("event {}", e.reason);
        if let Some(id) = &e.source_id {
            p.push_str(&format!(" ({id})"));
        }
        p.push_str(&format!(" at {}", e.last_seen));
        if e.count > 1 {
            p.push_str(&format!(" x{}", e.count));
        }
        p
    }

    pub fn event_evidence(e: &Event) -> Evidence {
        Evidence::new(
            Source::Event,
            Self::event_pointer(e),
            first_line(&e.message),
        )
    }

    /// The container's memory limit: as written, and in bytes.
    /// The container's place in the pod's spec as a JSON pointer (`/containers/0`), where
    /// patches of it start.
    pub fn spec_path(&self) -> Option<String> {
        let (list, index) = self
            .spec_pointer
            .strip_prefix("spec.")?
            .strip_suffix(']')?
            .split_once('[')?;
        Some(format!("/{list}/{index}"))
    }

    pub fn memory_limit(&self) -> Option<(String, u64)> {
        let q = self
            .spec?
            .resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")?;
        Some((q.0.clone(), crashscope_model::quantity::bytes(&q.0)?))
    }

    /// The container's declared ports.
    pub fn ports(&self) -> Vec<u16> {
        container_ports(self.spec)
    }
}

/// The declared container ports of a container spec.
pub fn container_ports(c: Option<&Container>) -> Vec<u16> {
    c.and_then(|c| c.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The first line of a possibly multi-line message.
pub fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}
