//! Evaluating rules at one instant: what each rule sees, per alert group, from the restart
//! samples, the current pods and the recent events. Pure: the server fetches, this decides.

use std::collections::{BTreeMap, BTreeSet};

use crashscope_model::{ContainerKind, Event, PodState, RestartSample};
use jiff::Timestamp;
use serde::Serialize;

use crate::group::GroupKey;
use crate::metric::{restarts, values};
use crate::rule::{EventCondition, MetricCondition, Rule, ScopeFilter};

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub now: Timestamp,
    /// Restart samples, oldest first, covering at least the longest window before `now`.
    pub samples: &'a [RestartSample],
    /// The latest state of each pod (for labels and owners).
    pub pods: &'a [PodState],
    /// Events last seen within the longest window.
    pub events: &'a [Event],
}

/// One rule's verdict on one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub group: GroupKey,
    /// The condition holds now.
    pub active: bool,
    /// The largest value among the group's members (restarts, rate, or event count).
    pub value: f64,
    /// The pods whose values made the condition hold (or that had values, when inactive).
    pub pods: BTreeSet<String>,
}

/// The groups `rule` has something to say about. Groups absent from the result are inactive.
pub fn evaluate(rule: &Rule, inputs: &Inputs<'_>) -> Vec<Observation> {
    let pods: BTreeMap<(String, String), &PodState> = inputs
        .pods
        .iter()
        .map(|p| ((p.namespace.clone(), p.name.clone()), p))
        .collect();
    let selector = rule
        .scope
        .labels
        .clone()
        .and_then(|s| kube_core::Selector::try_from(s).ok());
    let admits = |ns: &str, pod: Option<&str>| -> bool {
        if !rule.scope.namespaces.admits(ns) {
            return false;
        }
        match &selector {
            None => true,
            Some(sel) => pod
                .and_then(|p| pods.get(&(ns.to_string(), p.to_string())))
                .is_some_and(|p| kube_core::SelectorExt::matches(sel, &p.labels)),
        }
    };
    let mut groups: BTreeMap<GroupKey, Observation> = BTreeMap::new();
    if let Some(m) = &rule.metric {
        for (key, value, active) in metric_members(m, &rule.scope, inputs, &admits) {
            merge(
                &mut groups,
                key.coarsen(rule.group_by),
                key.pod.clone(),
                value,
                active,
            );
        }
    }
    if let Some(e) = &rule.event {
        for (key, value, active) in event_members(e, rule, inputs, &pods, &admits) {
            merge(&mut groups, key, None, value, active);
        }
    }
    groups.into_values().collect()
}

fn merge(
    groups: &mut BTreeMap<GroupKey, Observation>,
    key: GroupKey,
    pod: Option<String>,
    value: f64,
    active: bool,
) {
    let o = groups.entry(key.clone()).or_insert_with(|| Observation {
        group: key,
        active: false,
        value: 0.0,
        pods: BTreeSet::new(),
    });
    if active && !o.active {
        // The first active member: the inactive ones' pods are not why it fires.
        o.pods.clear();
        o.value = 0.0;
    }
    if active || !o.active {
        o.value = o.value.max(value);
        o.pods.extend(pod);
    }
    o.active |= active;
}

fn metric_members(
    m: &MetricCondition,
    scope: &ScopeFilter,
    inputs: &Inputs<'_>,
    admits: &dyn Fn(&str, Option<&str>) -> bool,
) -> Vec<(GroupKey, f64, bool)> {
    let samples: Vec<RestartSample> = inputs
        .samples
        .iter()
        .filter(|s| scope.init_containers || s.container_kind != ContainerKind::Init)
        .filter(|s| scope.admits_cluster(s.cluster.as_deref()))
        .filter(|s| admits(&s.namespace, Some(&s.pod)))
        .cloned()
        .collect();
    let from = inputs.now - m.window;
    let seen = restarts(&samples, from);
    values(&seen, m.name, m.by, m.window, inputs.now)
        .into_iter()
        .map(|(k, v)| (k, v, m.op.holds(v, m.threshold)))
        .collect()
}

fn event_members(
    e: &EventCondition,
    rule: &Rule,
    inputs: &Inputs<'_>,
    pods: &BTreeMap<(String, String), &PodState>,
    admits: &dyn Fn(&str, Option<&str>) -> bool,
) -> Vec<(GroupKey, f64, bool)> {
    let from = inputs.now.checked_sub(e.window).unwrap_or(Timestamp::MIN);
    let text = e.text.as_ref().map(|t| t.to_lowercase());
    let mut counts: BTreeMap<GroupKey, u64> = BTreeMap::new();
    for ev in inputs.events {
        let matches = (e.reason.is_empty() || e.reason.contains(&ev.reason))
            && e.min_severity.is_none_or(|s| ev.severity >= s)
            && (e.source.is_empty() || e.source.contains(&ev.source))
            && text
                .as_ref()
                .is_none_or(|t| ev.message.to_lowercase().contains(t))
            && ev.last_seen > from
            && ev.last_seen <= inputs.now
            && rule.scope.admits_cluster(ev.scope.cluster.as_deref())
            && admits(
                ev.scope.namespace.as_deref().unwrap_or(""),
                ev.scope.pod.as_deref(),
            );
        if !matches {
            continue;
        }
        // An occurrence first seen inside the window counts fully; one that started before it
        // and was seen again inside counts once (the store keeps totals, not each repeat).
        let n = if ev.first_seen > from {
            u64::from(ev.count.max(1))
        } else {
            1
        };
        *counts
            .entry(GroupKey::of_scope(&ev.scope, rule.group_by, pods))
            .or_default() += n;
    }
    counts
        .into_iter()
        .map(|(k, n)| (k, n as f64, n >= u64::from(e.min_count)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::RuleFile;
    use crashscope_model::{EventType, Scope, Severity};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn sample(pod: &str, at: i64, count: u32) -> RestartSample {
        crate::metric::tests::sample(pod, at, count, (count > 0).then_some(at - 1))
    }

    #[test]
    fn three_restarts_in_four_minutes_make_one_alert_for_the_deployment() {
        let rules = RuleFile::defaults();
        let rule = &rules.rules[0];
        let samples = vec![
            sample("nginx-a", 1000, 0),
            sample("nginx-a", 1010, 1),
            sample("nginx-a", 1030, 2),
            sample("nginx-b", 1000, 0),
            sample("nginx-b", 1050, 1),
        ];
        let before = Inputs {
            now: t(1040),
            samples: &samples[..3],
            pods: &[],
            events: &[],
        };
        let o = evaluate(rule, &before);
        assert_eq!(o.len(), 1);
        assert!(!o[0].active, "two restarts are not three");
        let samples_later = [samples.clone(), vec![sample("nginx-a", 1070, 3)]].concat();
        let now = Inputs {
            now: t(1080),
            samples: &samples_later,
            pods: &[],
            events: &[],
        };
        let o = evaluate(rule, &now);
        assert_eq!(o.len(), 1, "one alert per workload: {o:?}");
        assert!(o[0].active);
        assert_eq!(o[0].group.to_string(), "default/deployment/nginx");
        assert_eq!(o[0].value, 3.0);
        assert_eq!(o[0].pods, BTreeSet::from(["nginx-a".to_string()]));
        // Five minutes later the restarts have left the window.
        let quiet = Inputs {
            now: t(1080 + 300),
            samples: &samples_later,
            pods: &[],
            events: &[],
        };
        assert!(evaluate(rule, &quiet).iter().all(|o| !o.active));
    }

    #[test]
    fn scope_filters_namespaces_labels_and_init_containers() {
        let yaml = "rules:\n- name: r\n  metric: {name: kubernetes.pod.restart.count, window: 4m, threshold: 1}\n  scope:\n    namespaces: {exclude: [kube-system]}\n    labels: {matchLabels: {app: web}}\n    init_containers: false\n";
        let rule = RuleFile::parse("r", yaml).unwrap().rules.remove(0);
        let web = pod("web-1", "web", None);
        let other = pod("db-1", "db", None);
        let mut s_web = sample("web-1", 1010, 1);
        let s_db = sample("db-1", 1010, 1);
        let mut s_sys = sample("web-1", 1010, 1);
        s_sys.namespace = "kube-system".into();
        let mut s_init = sample("web-1", 1010, 1);
        s_init.container = "wait".into();
        s_init.container_kind = ContainerKind::Init;
        s_web.pod_uid = Some("w".into());
        let pods = [web, other];
        let samples = [s_web, s_db, s_sys, s_init];
        let o = evaluate(
            &rule,
            &Inputs {
                now: t(1020),
                samples: &samples,
                pods: &pods,
                events: &[],
            },
        );
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].pods, BTreeSet::from(["web-1".to_string()]));
        assert_eq!(o[0].value, 1.0, "the init container is left out");
    }

    /// A pod as the API serves it; with a ReplicaSet owner its workload is the Deployment.
    fn pod(name: &str, app: &str, replicaset: Option<&str>) -> PodState {
        let owners: Vec<serde_json::Value> = replicaset
            .map(|rs| serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "u", "controller": true}))
            .into_iter()
            .collect();
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}, "ownerReferences": owners},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        PodState::from_pod(&p)
    }

    fn backoff(pod: &str, first: i64, last: i64, count: u32) -> Event {
        Event {
            source: "kubernetes".into(),
            reporter: None,
            reason: "BackOff".into(),
            message: "Back-off restarting failed container".into(),
            event_type: EventType::Warning,
            severity: Severity::Warning,
            scope: Scope {
                namespace: Some("default".into()),
                pod: Some(pod.into()),
                ..Scope::default()
            },
            involved: None,
            count,
            first_seen: t(first),
            last_seen: t(last),
            source_id: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn event_rules_count_matching_events_in_the_window_per_workload() {
        let rule = RuleFile::defaults().rules.remove(1);
        let mut pod = pod("nginx-a", "nginx", Some("nginx-7d9f6b8c5d"));
        // As the watcher records it once the ReplicaSet confirms its Deployment.
        pod.owners.links.push(crashscope_model::OwnerLink {
            kind: "Deployment".into(),
            name: "nginx".into(),
            uid: None,
            inferred: false,
        });
        let events = [
            backoff("nginx-a", 900, 1000, 4),
            backoff("bare", 100, 200, 1),
        ];
        let pods = [pod];
        let o = evaluate(
            &rule,
            &Inputs {
                now: t(1010),
                samples: &[],
                pods: &pods,
                events: &events,
            },
        );
        assert_eq!(o.len(), 1, "the old event is outside the window: {o:?}");
        assert_eq!(o[0].group.to_string(), "default/deployment/nginx");
        assert!(o[0].active);
        assert_eq!(o[0].value, 4.0);
    }
}
