//! Events the local runtime emits, in the kubelet's and scheduler's words, as model events
//! (the store aggregates repeats into one occurrence with a rising count, like the API server).

use crashscope_model::{Catalog, Event, EventType, ObjectRef};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// Source name of events produced by the local runtime.
pub const SOURCE_LOCAL: &str = "local";

/// Builds an event about an object as `reporter` reports it (`ScalingReplicaSet` about a
/// Deployment by the deployment-controller, the kubelet's about a pod).
pub fn object_event(
    involved: ObjectRef,
    reporter: &str,
    event_type: EventType,
    reason: &str,
    message: String,
    catalog: &Catalog,
) -> Event {
    let severity = catalog
        .classify(&involved.kind, reason, event_type)
        .severity;
    Event::about(
        SOURCE_LOCAL,
        reporter,
        event_type,
        severity,
        reason,
        message,
        involved,
        Timestamp::now(),
    )
}

/// Builds an event about `pod` (and one of its containers when `container` is given).
pub fn pod_event(
    pod: &Pod,
    container: Option<(&str, bool)>,
    reporter: &str,
    event_type: EventType,
    reason: &str,
    message: String,
    catalog: &Catalog,
) -> Event {
    let field_path = container.map(|(name, init)| {
        if init {
            format!("spec.initContainers{{{name}}}")
        } else {
            format!("spec.containers{{{name}}}")
        }
    });
    let involved = ObjectRef {
        kind: "Pod".into(),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone(),
        api_version: Some("v1".into()),
        field_path,
    };
    let mut ev = object_event(involved, reporter, event_type, reason, message, catalog);
    ev.scope.node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    ev.scope.workload = crashscope_model::OwnerChain::from_pod_meta(&pod.metadata).workload();
    ev
}
