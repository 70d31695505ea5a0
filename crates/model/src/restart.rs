//! Restart samples: one observation of a container's restart count with how its last run
//! ended — the raw material of the restart-rate metric and of incidents.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::pod::{ContainerKind, ContainerState, ContainerView, PodState};

/// One observation of a container's restart count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartSample {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: Option<String>,
    pub container: String,
    pub container_kind: ContainerKind,
    pub workload_kind: Option<String>,
    pub workload_name: Option<String>,
    pub observed_at: Timestamp,
    pub restart_count: u32,
    pub last_reason: Option<String>,
    pub last_exit_code: Option<i32>,
    pub last_finished_at: Option<Timestamp>,
}

impl RestartSample {
    /// The sample for container `c` of `pod` observed at `at`.
    pub fn of(at: Timestamp, pod: &PodState, c: &ContainerView) -> RestartSample {
        let workload = pod.owners.workload();
        let (reason, code, finished) = match c.last_terminated() {
            Some(ContainerState::Terminated {
                reason,
                exit_code,
                finished_at,
                ..
            }) => (reason.clone(), Some(*exit_code), *finished_at),
            _ => (None, None, None),
        };
        RestartSample {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            container: c.name.clone(),
            container_kind: c.kind,
            workload_kind: workload.as_ref().map(|w| w.kind.clone()),
            workload_name: workload.as_ref().map(|w| w.name.clone()),
            observed_at: at,
            restart_count: c.restart_count,
            last_reason: reason,
            last_exit_code: code,
            last_finished_at: finished,
        }
    }
}
