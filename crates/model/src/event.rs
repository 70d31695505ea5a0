//! One event on crashscope's feed, whatever produced it: a Kubernetes Event, the local
//! runtime, a custom event posted by CI (a deploy), or the node agent.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::scope::{ObjectRef, Scope};
use crate::severity::Severity;

/// Kubernetes' own two-valued event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }

    /// Reads an API `type` field; anything but `Warning` is `Normal`, as kubectl treats it.
    pub fn from_api(s: Option<&str>) -> EventType {
        match s {
            Some(t) if t.eq_ignore_ascii_case("warning") => EventType::Warning,
            _ => EventType::Normal,
        }
    }
}

/// Source name used for events read from the Kubernetes API.
pub const SOURCE_KUBERNETES: &str = "kubernetes";
/// Source name of what crashscope itself reports (diagnoses, the actions it took).
pub const SOURCE_CRASHSCOPE: &str = "crashscope";
/// Source name of alerts firing and resolving (the rule engine's episodes on the feed).
pub const SOURCE_ALERT: &str = "alert";
/// Source name of captures stored (a flight recorder's, a request's, an upload).
pub const SOURCE_CAPTURE: &str = "capture";

/// An event as crashscope stores and shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Which feed it came from: `kubernetes`, `local`, or a custom source such as `jenkins`.
    pub source: String,
    /// Who reported it inside that source, kubectl-style: `kubelet, node-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
    pub reason: String,
    pub message: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub severity: Severity,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involved: Option<ObjectRef>,
    /// How many times this occurrence has happened (the API server's aggregation count).
    pub count: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Identity of the source object (a Kubernetes Event's namespace/name), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Free-form labels of a custom event (`version: 1.4.2`, `pipeline: deploy`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Event {
    /// Whether the event records a change someone made to namespace `ns` (a deploy posted
    /// by CI or any custom source, a Deployment's rollout or rollback): what a crash loop
    /// that starts right after may come from.
    pub fn is_change_in(&self, ns: &str) -> bool {
        // crashscope's own findings (Diagnosed, RollbackSkipped, alerts, captures) change
        // nothing; a rollback it made does.
        let custom = ![
            SOURCE_KUBERNETES,
            "local",
            SOURCE_CRASHSCOPE,
            SOURCE_ALERT,
            SOURCE_CAPTURE,
        ]
        .contains(&self.source.as_str());
        let rollout = matches!(
            self.reason.as_str(),
            "ScalingReplicaSet" | "DeploymentRollback" | "RolledBack"
        );
        (custom || rollout) && self.scope.namespace.as_deref().is_none_or(|n| n == ns)
    }

    /// A new event about `involved`, seen once at `now`, in the scope the object gives.
    #[allow(clippy::too_many_arguments)]
    pub fn about(
        source: &str,
        reporter: &str,
        event_type: EventType,
        severity: Severity,
        reason: &str,
        message: String,
        involved: ObjectRef,
        now: Timestamp,
    ) -> Event {
        Event {
            source: source.into(),
            reporter: Some(reporter.into()),
            reason: reason.into(),
            message,
            event_type,
            severity,
            scope: Scope::from_involved(&involved),
            involved: Some(involved),
            count: 1,
            first_seen: now,
            last_seen: now,
            source_id: None,
            tags: Default::default(),
        }
    }

    /// The key under which repeated occurrences collapse into one, as the API server aggregates
    /// them: same involved object, reason, message, type and reporter.
    pub fn dedup_key(&self) -> String {
        let obj = self.involved.as_ref();
        let parts = [
            self.source.as_str(),
            self.reporter.as_deref().unwrap_or(""),
            obj.map(|o| o.kind.as_str()).unwrap_or(""),
            obj.and_then(|o| o.namespace.as_deref()).unwrap_or(""),
            obj.map(|o| o.name.as_str()).unwrap_or(""),
            obj.and_then(|o| o.uid.as_deref()).unwrap_or(""),
            obj.and_then(|o| o.field_path.as_deref()).unwrap_or(""),
            self.event_type.as_str(),
            self.reason.as_str(),
            self.message.as_str(),
        ];
        // Unit separators cannot occur in Kubernetes names, so the key is unambiguous.
        let key = parts.join("\u{1f}");
        // The same object and message in two clusters are two events (keys of events
        // without a cluster stay what they were).
        match self.scope.cluster.as_deref() {
            Some(c) => format!("{c}\u{1f}{key}"),
            None => key,
        }
    }

    /// Normalizes a core/v1 Event, classifying its reason with `catalog`.
    /// Returns `None` for an event without any timestamp, which cannot be placed on a feed.
    pub fn from_kube(ev: &KubeEvent, catalog: &Catalog) -> Option<Event> {
        let involved = ObjectRef {
            kind: ev.involved_object.kind.clone().unwrap_or_default(),
            namespace: ev.involved_object.namespace.clone(),
            name: ev.involved_object.name.clone().unwrap_or_default(),
            uid: ev.involved_object.uid.clone(),
            api_version: ev.involved_object.api_version.clone(),
            field_path: ev.involved_object.field_path.clone(),
        };
        let times = event_times(ev)?;
        let reason = ev.reason.clone().unwrap_or_default();
        let event_type = EventType::from_api(ev.type_.as_deref());
        let severity = catalog
            .classify(&involved.kind, &reason, event_type)
            .severity;
        let scope = {
            let mut s = Scope::from_involved(&involved);
            s.node = s
                .node
                .or_else(|| ev.source.as_ref().and_then(|x| x.host.clone()));
            s
        };
        Some(Event {
            source: SOURCE_KUBERNETES.into(),
            reporter: event_reporter(ev),
            reason,
            message: ev.message.clone().unwrap_or_default(),
            event_type,
            severity,
            scope,
            involved: Some(involved),
            count: times.count,
            first_seen: times.first,
            last_seen: times.last,
            source_id: ev
                .metadata
                .name
                .as_ref()
                .map(|n| format!("{}/{}", ev.metadata.namespace.as_deref().unwrap_or(""), n)),
            tags: BTreeMap::new(),
        })
    }
}

impl Event {
    /// The core/v1 Event an API server would hold for this event (for kubectl-style views).
    pub fn to_kube(&self) -> KubeEvent {
        use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
        let obj = self.involved.clone().unwrap_or_default();
        let (component, host) = match self.reporter.as_deref() {
            Some(r) => match r.split_once(", ") {
                Some((c, h)) => (Some(c.to_string()), Some(h.to_string())),
                None => (Some(r.to_string()), None),
            },
            None => (None, None),
        };
        KubeEvent {
            metadata: ObjectMeta {
                name: self.source_id.clone(),
                namespace: obj.namespace.clone(),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some(obj.kind),
                namespace: obj.namespace,
                name: Some(obj.name),
                uid: obj.uid,
                api_version: obj.api_version,
                field_path: obj.field_path,
                ..ObjectReference::default()
            },
            reason: Some(self.reason.clone()),
            message: Some(self.message.clone()),
            type_: Some(self.event_type.as_str().to_string()),
            count: Some(i32::try_from(self.count).unwrap_or(i32::MAX)),
            first_timestamp: Some(Time(self.first_seen)),
            last_timestamp: Some(Time(self.last_seen)),
            source: Some(EventSource { component, host }),
            ..KubeEvent::default()
        }
    }
}

/// The core/v1 view of an events.k8s.io/v1 Event, field for field as the API server converts
/// between the two groups — so the same object read through either API normalizes to the
/// same event (same dedup key, same count).
pub fn core_from_v1(ev: &k8s_openapi::api::events::v1::Event) -> KubeEvent {
    use k8s_openapi::api::core::v1::EventSeries;
    KubeEvent {
        metadata: ev.metadata.clone(),
        involved_object: ev.regarding.clone().unwrap_or_default(),
        related: ev.related.clone(),
        reason: ev.reason.clone(),
        message: ev.note.clone(),
        type_: ev.type_.clone(),
        action: ev.action.clone(),
        count: ev.deprecated_count,
        first_timestamp: ev.deprecated_first_timestamp.clone(),
        last_timestamp: ev.deprecated_last_timestamp.clone(),
        event_time: ev.event_time.clone(),
        series: ev.series.as_ref().map(|s| EventSeries {
            count: Some(s.count),
            last_observed_time: Some(s.last_observed_time.clone()),
        }),
        source: ev.deprecated_source.clone(),
        reporting_component: ev.reporting_controller.clone(),
        reporting_instance: ev.reporting_instance.clone(),
    }
}

/// First seen, last seen and count of a core/v1 Event, from whichever of the legacy fields,
/// `eventTime` and `series` the reporter filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventTimes {
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u32,
}

pub fn event_times(ev: &KubeEvent) -> Option<EventTimes> {
    let event_time = ev.event_time.as_ref().map(|t| t.0);
    let created = ev.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let first = ev
        .first_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(event_time)
        .or(created)?;
    let series_last = ev
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0);
    // With a series, lastTimestamp is frozen at the first occurrence: take the later one.
    let last = match (ev.last_timestamp.as_ref().map(|t| t.0), series_last) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .or(event_time)
    .unwrap_or(first);
    let count = ev
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(ev.count)
        .unwrap_or(1)
        .max(1);
    Some(EventTimes {
        first,
        last: last.max(first),
        count: u32::try_from(count).unwrap_or(1),
    })
}

/// kubectl's "From" column: `component, host` from `source`, else the reporting controller.
pub fn event_reporter(ev: &KubeEvent) -> Option<String> {
    let (component, host) = match &ev.source {
        Some(s) if s.component.as_deref().is_some_and(|c| !c.is_empty()) => {
            (s.component.clone(), s.host.clone())
        }
        _ => (
            ev.reporting_component.clone(),
            ev.reporting_instance.clone(),
        ),
    };
    let component = component.filter(|c| !c.is_empty())?;
    Some(match host.filter(|h| !h.is_empty()) {
        Some(h) => format!("{component}, {h}"),
        None => component,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_same_event_in_two_clusters_has_two_keys() {
        let mut e = Event::from_kube(&backoff_event(), &Catalog::builtin()).unwrap();
        let plain = e.dedup_key();
        e.scope.cluster = Some("east".into());
        let east = e.dedup_key();
        e.scope.cluster = Some("west".into());
        assert_ne!(east, e.dedup_key());
        assert_ne!(plain, east);
        assert!(
            east.ends_with(&plain),
            "keys without a cluster stay as they were"
        );
    }

    use super::*;

    fn backoff_event() -> KubeEvent {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nginx-abc.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-abc",
                "uid": "u-1", "fieldPath": "spec.containers{nginx}"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container nginx in pod nginx-abc_default(u-1)",
            "type": "Warning",
            "count": 5,
            "firstTimestamp": "2026-11-28T10:00:00Z",
            "lastTimestamp": "2026-11-28T10:02:30Z",
            "source": {"component": "kubelet", "host": "node-1"}
        }))
        .unwrap()
    }

    /// The same BackOff object as events.k8s.io/v1 serves it (a series instead of a count).
    fn backoff_event_v1(series: i32) -> k8s_openapi::api::events::v1::Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nginx-abc.17a", "namespace": "default"},
            "regarding": {"kind": "Pod", "namespace": "default", "name": "nginx-abc",
                "uid": "u-1", "fieldPath": "spec.containers{nginx}"},
            "reason": "BackOff",
            "note": "Back-off restarting failed container nginx in pod nginx-abc_default(u-1)",
            "type": "Warning",
            "eventTime": null,
            "deprecatedCount": 5,
            "deprecatedFirstTimestamp": "2026-11-28T10:00:00Z",
            "deprecatedLastTimestamp": "2026-11-28T10:02:30Z",
            "deprecatedSource": {"component": "kubelet", "host": "node-1"},
            "series": {"count": series, "lastObservedTime": "2026-11-28T10:04:00.000000Z"}
        }))
        .unwrap()
    }

    #[test]
    fn an_events_k8s_io_event_is_the_same_occurrence_as_its_core_view() {
        let cat = Catalog::builtin();
        let core = Event::from_kube(&backoff_event(), &cat).unwrap();
        let v1 = Event::from_kube(&core_from_v1(&backoff_event_v1(7)), &cat).unwrap();
        assert_eq!(core.dedup_key(), v1.dedup_key());
        assert_eq!(core.source_id, v1.source_id);
        // series.count and lastObservedTime carry the later occurrences.
        assert_eq!(v1.count, 7);
        assert_eq!(v1.last_seen.to_string(), "2026-11-28T10:04:00Z");
        assert_eq!(v1.first_seen, core.first_seen);
    }

    #[test]
    fn kube_event_is_normalized_with_scope_and_severity() {
        let ev = Event::from_kube(&backoff_event(), &Catalog::builtin()).unwrap();
        assert_eq!(ev.severity, Severity::Warning);
        assert_eq!(ev.count, 5);
        assert_eq!(ev.reporter.as_deref(), Some("kubelet, node-1"));
        assert_eq!(ev.scope.container.as_deref(), Some("nginx"));
        assert_eq!(ev.scope.node.as_deref(), Some("node-1"));
        assert_eq!(ev.source_id.as_deref(), Some("default/nginx-abc.17a"));
        assert!(ev.first_seen < ev.last_seen);
    }

    #[test]
    fn dedup_key_ignores_count_and_time_but_not_message() {
        let a = Event::from_kube(&backoff_event(), &Catalog::builtin()).unwrap();
        let mut b = a.clone();
        b.count = 9;
        b.last_seen += jiff::SignedDuration::from_secs(60);
        assert_eq!(a.dedup_key(), b.dedup_key());
        b.message.push('!');
        assert_ne!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn series_events_use_series_count_and_time() {
        let ev: KubeEvent = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "BackOff", "type": "Warning",
            "eventTime": "2026-11-28T10:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-11-28T10:05:00.000000Z"},
            "reportingComponent": "kubelet", "reportingInstance": "node-2"
        }))
        .unwrap();
        let t = event_times(&ev).unwrap();
        assert_eq!(t.count, 7);
        assert_eq!(t.last.duration_since(t.first).as_secs(), 300);
        assert_eq!(event_reporter(&ev).as_deref(), Some("kubelet, node-2"));
    }

    #[test]
    fn to_kube_round_trips_what_describe_shows() {
        let ev = Event::from_kube(&backoff_event(), &Catalog::builtin()).unwrap();
        let back = Event::from_kube(&ev.to_kube(), &Catalog::builtin()).unwrap();
        assert_eq!(back.dedup_key(), ev.dedup_key());
        assert_eq!(
            (back.count, back.first_seen, back.last_seen),
            (ev.count, ev.first_seen, ev.last_seen)
        );
    }

    #[test]
    fn event_without_any_time_is_refused() {
        let ev: KubeEvent = serde_json::from_value(serde_json::json!({
            "metadata": {}, "involvedObject": {}
        }))
        .unwrap();
        assert!(Event::from_kube(&ev, &Catalog::builtin()).is_none());
    }
}
