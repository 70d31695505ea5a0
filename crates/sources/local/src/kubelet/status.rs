//! The status the API shows for a pod the kubelet runs: each container's status, the pod's
//! phase and conditions, computed from what the containers did — as the kubelet computes them.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;

/// The pod as the kubelet keeps it while running it.
pub(super) struct Record {
    pub(super) pod: Pod,
    pub(super) statuses: BTreeMap<String, ContainerStatus>,
    pub(super) init_done: bool,
    pub(super) failed: bool,
    pub(super) conditions: BTreeMap<&'static str, (bool, Timestamp)>,
    pub(super) start_time: Timestamp,
}

pub(super) fn t(ts: Timestamp) -> Time {
    Time(ts)
}

pub(super) fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..ContainerState::default()
    }
}

pub(super) fn condition(r: &mut Record, name: &'static str, value: bool) {
    let now = Timestamp::now();
    match r.conditions.get(name) {
        Some((v, _)) if *v == value => {}
        _ => {
            r.conditions.insert(name, (value, now));
        }
    }
}

/// PodStatus as the kubelet computes it from the container statuses.
pub(super) fn status(r: &Record) -> PodStatus {
    let spec = r.pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| r.statuses.get(&c.name).cloned())
        .collect();
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .filter_map(|c| r.statuses.get(&c.name).cloned())
        .collect();
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in &app {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(term) = st.terminated {
            stopped += 1;
            if term.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    let phase = if r.failed {
        "Failed"
    } else if !r.init_done || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        }
    } else {
        "Pending"
    };
    let unready: Vec<&str> = app
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = Vec::new();
    let order = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    for name in order {
        let Some((value, when)) = r.conditions.get(name) else {
            continue;
        };
        let (reason, message) = match name {
            "Ready" | "ContainersReady" if !value && !unready.is_empty() => (
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            ),
            "Initialized" if !value => (
                Some("ContainersNotInitialized".to_string()),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    init.iter()
                        .filter(|s| !init_succeeded(s))
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            ),
            _ => (None, None),
        };
        conditions.push(PodCondition {
            type_: name.to_string(),
            status: if *value { "True" } else { "False" }.into(),
            last_transition_time: Some(t(*when)),
            reason,
            message,
            ..PodCondition::default()
        });
    }
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some("127.0.0.1".into()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: "127.0.0.1".into(),
        }]),
        pod_ip: Some("127.0.0.1".into()),
        pod_ips: Some(vec![k8s_openapi::api::core::v1::PodIP {
            ip: "127.0.0.1".into(),
        }]),
        start_time: Some(t(r.start_time)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        qos_class: Some(qos(&spec)),
        ..PodStatus::default()
    }
}

fn init_succeeded(s: &ContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|x| x.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// The QoS class by kubectl's rules (shared with the describe view).
fn qos(spec: &k8s_openapi::api::core::v1::PodSpec) -> String {
    let pod = Pod {
        spec: Some(spec.clone()),
        ..Pod::default()
    };
    crashscope_model::qos::qos_class(&pod)
}

pub(super) fn new_status(c: &Container, init_with_init_containers: bool) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        state: Some(waiting(
            if init_with_init_containers {
                "PodInitializing"
            } else {
                "ContainerCreating"
            },
            None,
        )),
        ..ContainerStatus::default()
    }
}
