//! Where something happened: the scope of an event (cluster → node → namespace → workload →
//! pod → container) and references to the Kubernetes object it is about.

use serde::{Deserialize, Serialize};

/// The most specific level a [`Scope`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeLevel {
    Cluster,
    Node,
    Namespace,
    Workload,
    Pod,
    Container,
}

/// A workload: the top of a pod's owner chain (Deployment, StatefulSet, DaemonSet, Job, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: String,
    pub name: String,
}

/// Where an event happened. Every field is optional; filled fields narrow the scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl Scope {
    /// The most specific level this scope names.
    pub fn level(&self) -> ScopeLevel {
        if self.container.is_some() {
            ScopeLevel::Container
        } else if self.pod.is_some() {
            ScopeLevel::Pod
        } else if self.workload.is_some() {
            ScopeLevel::Workload
        } else if self.namespace.is_some() {
            ScopeLevel::Namespace
        } else if self.node.is_some() {
            ScopeLevel::Node
        } else {
            ScopeLevel::Cluster
        }
    }

    /// Scope of an event about `involved`, reading the container out of a field path such as
    /// `spec.containers{nginx}` the way the kubelet writes it.
    pub fn from_involved(involved: &ObjectRef) -> Scope {
        let mut scope = Scope {
            namespace: involved.namespace.clone(),
            ..Scope::default()
        };
        match involved.kind.as_str() {
            "Node" => scope.node = Some(involved.name.clone()),
            "Pod" => {
                scope.pod = Some(involved.name.clone());
                scope.container = involved
                    .field_path
                    .as_deref()
                    .and_then(container_from_field_path);
            }
            "Namespace" => scope.namespace = Some(involved.name.clone()),
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job"
            | "CronJob" => {
                scope.workload = Some(WorkloadRef {
                    kind: involved.kind.clone(),
                    name: involved.name.clone(),
                })
            }
            _ => {}
        }
        scope
    }
}

/// The container named by a kubelet field path: `spec.containers{nginx}`,
/// `spec.initContainers{wait}` or `spec.ephemeralContainers{debug}`.
pub fn container_from_field_path(path: &str) -> Option<String> {
    let rest = [
        "spec.containers{",
        "spec.initContainers{",
        "spec.ephemeralContainers{",
    ]
    .iter()
    .find_map(|p| path.strip_prefix(p))?;
    let name = rest.split('}').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// A reference to a Kubernetes object, as in an Event's `involvedObject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_comes_from_the_field_path() {
        assert_eq!(
            container_from_field_path("spec.containers{nginx}").as_deref(),
            Some("nginx")
        );
        assert_eq!(
            container_from_field_path("spec.initContainers{wait-dns}").as_deref(),
            Some("wait-dns")
        );
        assert_eq!(container_from_field_path("spec.containers{}"), None);
        assert_eq!(container_from_field_path("metadata.name"), None);
    }

    #[test]
    fn pod_event_scope_reaches_the_container() {
        let involved = ObjectRef {
            kind: "Pod".into(),
            namespace: Some("default".into()),
            name: "nginx-7c5ddbdf54-x2x9q".into(),
            field_path: Some("spec.containers{nginx}".into()),
            ..ObjectRef::default()
        };
        let scope = Scope::from_involved(&involved);
        assert_eq!(scope.level(), ScopeLevel::Container);
        assert_eq!(scope.container.as_deref(), Some("nginx"));
        assert_eq!(scope.namespace.as_deref(), Some("default"));

        let node = ObjectRef {
            kind: "Node".into(),
            name: "worker-1".into(),
            ..ObjectRef::default()
        };
        assert_eq!(Scope::from_involved(&node).level(), ScopeLevel::Node);
        assert_eq!(Scope::default().level(), ScopeLevel::Cluster);
    }
}
