//! The state of a pod at one moment, read from a Kubernetes Pod object: phase, conditions,
//! every container's current and last state, restarts and owner chain.
//!
//! Missing or odd fields never fail the conversion: a pod without status is `Pending` with
//! containers whose state is unknown, and an unknown phase is kept as written.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState as KubeContainerState, ContainerStatus, Pod,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::backoff::{BackoffEstimate, BackoffPolicy};
use crate::owner::OwnerChain;

/// A namespaced object's namespace — `default` when unset, as the API server fills it in —
/// and its name.
pub fn namespace_name(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Which list of the pod spec a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    Init,
    /// An init container with `restartPolicy: Always`: runs alongside the app containers.
    Sidecar,
    App,
}

/// What a container is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ContainerState {
    Waiting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Running {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
    },
    Terminated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finished_at: Option<Timestamp>,
    },
    /// The status does not say (no status yet, or an empty state object).
    Unknown,
}

impl ContainerState {
    /// Reads a Kubernetes container state; `None` or an empty object is `Unknown`.
    pub fn from_kube(s: Option<&KubeContainerState>) -> ContainerState {
        let Some(s) = s else {
            return ContainerState::Unknown;
        };
        if let Some(t) = &s.terminated {
            ContainerState::Terminated {
                reason: non_empty(t.reason.as_deref()),
                exit_code: t.exit_code,
                signal: t.signal.filter(|s| *s != 0),
                message: non_empty(t.message.as_deref()),
                started_at: t.started_at.as_ref().map(|t| t.0),
                finished_at: t.finished_at.as_ref().map(|t| t.0),
            }
        } else if let Some(r) = &s.running {
            ContainerState::Running {
                started_at: r.started_at.as_ref().map(|t| t.0),
            }
        } else if let Some(w) = &s.waiting {
            ContainerState::Waiting {
                reason: non_empty(w.reason.as_deref()),
                message: non_empty(w.message.as_deref()),
            }
        } else {
            ContainerState::Unknown
        }
    }

    pub fn waiting_reason(&self) -> Option<&str> {
        match self {
            ContainerState::Waiting { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running { .. })
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// One container of a pod: its spec facts and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub name: String,
    pub kind: ContainerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub state: ContainerState,
    /// The previous run, when the container has restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<ContainerState>,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    pub restart_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

impl ContainerView {
    fn from_status(kind: ContainerKind, spec: Option<&Container>, st: &ContainerStatus) -> Self {
        let last_state = match ContainerState::from_kube(st.last_state.as_ref()) {
            ContainerState::Unknown => None,
            s => Some(s),
        };
        ContainerView {
            name: st.name.clone(),
            kind,
            image: non_empty(Some(st.image.as_str()))
                .or_else(|| spec.and_then(|c| c.image.clone())),
            state: ContainerState::from_kube(st.state.as_ref()),
            last_state,
            ready: st.ready,
            started: st.started,
            restart_count: u32::try_from(st.restart_count).unwrap_or(0),
            container_id: st.container_id.clone().filter(|s| !s.is_empty()),
        }
    }

    fn from_spec(kind: ContainerKind, spec: &Container) -> Self {
        ContainerView {
            name: spec.name.clone(),
            kind,
            image: spec.image.clone(),
            state: ContainerState::Unknown,
            last_state: None,
            ready: false,
            started: None,
            restart_count: 0,
            container_id: None,
        }
    }

    /// Is the kubelet holding this container back after crashes?
    pub fn is_crash_looping(&self) -> bool {
        self.state.waiting_reason() == Some("CrashLoopBackOff")
    }

    /// The last run's termination, when there was one.
    pub fn last_terminated(&self) -> Option<&ContainerState> {
        self.last_state
            .as_ref()
            .filter(|s| matches!(s, ContainerState::Terminated { .. }))
    }

    /// Where a crash-looping container stands in the kubelet's back-off, or `None` when it is
    /// not in back-off or its last exit time is unknown.
    pub fn backoff(&self, policy: &BackoffPolicy) -> Option<BackoffEstimate> {
        if !self.is_crash_looping() {
            return None;
        }
        let ContainerState::Terminated {
            started_at,
            finished_at: Some(finished),
            ..
        } = self.last_terminated()?
        else {
            return None;
        };
        let message = match &self.state {
            ContainerState::Waiting { message, .. } => message.as_deref(),
            _ => None,
        };
        Some(BackoffEstimate::from_status(
            policy,
            self.restart_count,
            message,
            *started_at,
            *finished,
        ))
    }
}

/// One pod condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A pod at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    /// The cluster the pod runs in, when the source names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `status.phase` as written (Pending, Running, Succeeded, Failed, Unknown — or anything
    /// else an API server sent); `Pending` when the pod has no status.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub conditions: Vec<Condition>,
    /// Init containers (and sidecars) in spec order, then app containers in spec order.
    pub containers: Vec<ContainerView>,
    pub owners: OwnerChain,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Timestamp>,
}

impl PodState {
    /// Reads the state of `pod`. Never fails: absent fields become defaults.
    pub fn from_pod(pod: &Pod) -> PodState {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let init_specs: Vec<&Container> = spec
            .and_then(|s| s.init_containers.as_ref())
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let app_specs: Vec<&Container> = spec
            .map(|s| s.containers.iter().collect())
            .unwrap_or_default();

        let init_kind = |name: &str| {
            let sidecar = init_specs
                .iter()
                .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"));
            if sidecar {
                ContainerKind::Sidecar
            } else {
                ContainerKind::Init
            }
        };
        let mut containers = Vec::new();
        merge(
            &mut containers,
            &init_specs,
            status.and_then(|s| s.init_container_statuses.as_deref()),
            init_kind,
        );
        merge(
            &mut containers,
            &app_specs,
            status.and_then(|s| s.container_statuses.as_deref()),
            |_| ContainerKind::App,
        );

        let (namespace, name) = namespace_name(meta);
        PodState {
            cluster: None,
            namespace,
            name,
            uid: meta.uid.clone(),
            node: spec.and_then(|s| s.node_name.clone()),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into()),
            reason: status.and_then(|s| non_empty(s.reason.as_deref())),
            message: status.and_then(|s| non_empty(s.message.as_deref())),
            conditions: status
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| {
                    cs.iter()
                        .map(|c| Condition {
                            type_: c.type_.clone(),
                            status: c.status.clone(),
                            reason: non_empty(c.reason.as_deref()),
                            message: non_empty(c.message.as_deref()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            containers,
            owners: OwnerChain::from_pod_meta(meta),
            labels: meta.labels.clone().unwrap_or_default(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            deleted: meta.deletion_timestamp.as_ref().map(|t| t.0),
        }
    }

    /// Sum of restarts over all containers.
    pub fn restarts(&self) -> u32 {
        self.containers
            .iter()
            .map(|c| c.restart_count)
            .fold(0u32, u32::saturating_add)
    }

    /// Containers the kubelet is holding back in `CrashLoopBackOff`.
    pub fn crash_looping(&self) -> impl Iterator<Item = &ContainerView> {
        self.containers.iter().filter(|c| c.is_crash_looping())
    }

    pub fn container(&self, name: &str) -> Option<&ContainerView> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// Statuses in spec order; spec containers without a status get an unknown state; statuses
/// for containers missing from the spec are kept after them.
fn merge(
    out: &mut Vec<ContainerView>,
    specs: &[&Container],
    statuses: Option<&[ContainerStatus]>,
    kind_of: impl Fn(&str) -> ContainerKind,
) {
    let statuses = statuses.unwrap_or_default();
    for spec in specs {
        let kind = kind_of(&spec.name);
        match statuses.iter().find(|s| s.name == spec.name) {
            Some(st) => out.push(ContainerView::from_status(kind, Some(spec), st)),
            None => out.push(ContainerView::from_spec(kind, spec)),
        }
    }
    for st in statuses {
        if !specs.iter().any(|c| c.name == st.name) {
            out.push(ContainerView::from_status(kind_of(&st.name), None, st));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn crash_looping_container_reports_its_backoff() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "my-pod", "namespace": "argocd", "uid": "u"},
            "spec": {"containers": [{"name": "main", "image": "alpine"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "main", "image": "alpine", "imageID": "", "ready": false,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 40s restarting failed container=main pod=my-pod_argocd(u)"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": "2018-12-02T09:20:25Z", "finishedAt": "2018-12-02T09:20:25Z"}}
            }]}
        }));
        let s = PodState::from_pod(&p);
        assert_eq!(s.restarts(), 3);
        let c = s.crash_looping().next().unwrap();
        let b = c.backoff(&BackoffPolicy::kubelet()).unwrap();
        assert_eq!((b.step, b.delay.as_secs()), (3, 40));
        assert_eq!(b.next_restart.to_string(), "2018-12-02T09:21:05Z");
    }

    #[test]
    fn pod_without_status_is_pending_with_unknown_containers() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "x"},
            "spec": {"initContainers": [{"name": "init"}, {"name": "proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "app"}]}
        }));
        let s = PodState::from_pod(&p);
        assert_eq!(s.phase, "Pending");
        assert_eq!(s.namespace, "default");
        let kinds: Vec<_> = s
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("init", ContainerKind::Init),
                ("proxy", ContainerKind::Sidecar),
                ("app", ContainerKind::App)
            ]
        );
        assert!(s
            .containers
            .iter()
            .all(|c| c.state == ContainerState::Unknown));
    }

    #[test]
    fn empty_and_null_last_state_mean_no_previous_run() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Weird", "containerStatuses": [
                {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 0,
                 "lastState": {}, "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}},
                {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": -4,
                 "lastState": null, "state": {"terminated": {"exitCode": 0, "signal": 0}}}
            ]}
        }));
        let s = PodState::from_pod(&p);
        assert_eq!(s.phase, "Weird");
        assert!(s.containers.iter().all(|c| c.last_state.is_none()));
        assert_eq!(s.containers[1].restart_count, 0);
        assert!(matches!(
            s.containers[1].state,
            ContainerState::Terminated { signal: None, .. }
        ));
        assert!(s.containers[0].backoff(&BackoffPolicy::kubelet()).is_none());
    }
}
