//! What a source saw change: the Kubernetes objects crashscope keeps (pods, events, the
//! owner chain's ReplicaSets and Deployments, nodes), events a source produced itself, and
//! the watch bookkeeping (relists, syncs, retried failures). The Kubernetes watcher and the
//! local runtime emit these; the store's one ingest writer records them.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};

use crate::Event;

/// The resources watched, by the name RBAC and error messages use.
pub const PODS: &str = "pods";
pub const EVENTS: &str = "events";
pub const EVENTS_V1: &str = "events.events.k8s.io";
pub const REPLICASETS: &str = "replicasets";
pub const DEPLOYMENTS: &str = "deployments";
pub const NODES: &str = "nodes";
pub const RESOURCES: [&str; 6] = [PODS, EVENTS, EVENTS_V1, REPLICASETS, DEPLOYMENTS, NODES];

/// What a source saw.
#[derive(Debug)]
pub enum Change {
    Pod(Box<Pod>),
    PodDeleted(Box<Pod>),
    /// An Event from either API group, in its core/v1 form.
    Event(Box<KubeEvent>),
    /// An event the source produced already in crashscope's form (the local runtime's kubelet).
    Occurred(Box<Event>),
    ReplicaSet(Box<ReplicaSet>),
    ReplicaSetDeleted(Box<ReplicaSet>),
    Deployment(Box<Deployment>),
    DeploymentDeleted(Box<Deployment>),
    Node(Box<Node>),
    NodeDeleted(Box<Node>),
    /// A watcher starts listing again (at start, after `410 Gone` or a failed list).
    Relist(&'static str),
    /// A watcher's list finished: the view of that resource is complete.
    Synced(&'static str),
    /// A failure the watcher will retry; the text says what and, for 403, which permission.
    Error {
        resource: &'static str,
        message: String,
    },
}

impl Change {
    /// The resource this change is about (for health tracking).
    pub fn resource(&self) -> &'static str {
        match self {
            Change::Pod(_) | Change::PodDeleted(_) => PODS,
            Change::Event(_) | Change::Occurred(_) => EVENTS,
            Change::ReplicaSet(_) | Change::ReplicaSetDeleted(_) => REPLICASETS,
            Change::Deployment(_) | Change::DeploymentDeleted(_) => DEPLOYMENTS,
            Change::Node(_) | Change::NodeDeleted(_) => NODES,
            Change::Relist(r) | Change::Synced(r) | Change::Error { resource: r, .. } => r,
        }
    }
}
