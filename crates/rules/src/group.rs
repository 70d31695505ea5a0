//! Where a value or an alert belongs: a namespace, workload, pod or container, derived from a
//! restart sample, a pod or an event at the level a rule asks for.

use std::collections::BTreeMap;
use std::fmt;

use crashscope_model::{PodState, RestartSample, Scope};
use serde::Serialize;

use crate::rule::GroupBy;

/// A scope at one level; finer fields are empty above their level. A bare pod is its own
/// workload (`Pod/name`), as in incidents.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    /// The cluster, when the source names one: alerts never span clusters.
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub workload_kind: Option<String>,
    pub workload_name: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

impl GroupKey {
    fn build(
        by: GroupBy,
        cluster: Option<&str>,
        namespace: Option<&str>,
        workload: Option<(&str, &str)>,
        pod: Option<&str>,
        container: Option<&str>,
    ) -> GroupKey {
        let workload = workload.or(pod.map(|p| ("Pod", p)));
        let mut k = GroupKey {
            cluster: cluster.map(str::to_string),
            namespace: namespace.map(str::to_string),
            ..GroupKey::default()
        };
        if by <= GroupBy::Workload {
            k.workload_kind = workload.map(|w| w.0.to_string());
            k.workload_name = workload.map(|w| w.1.to_string());
        }
        if by <= GroupBy::Pod {
            k.pod = pod.map(str::to_string);
        }
        if by <= GroupBy::Container {
            k.container = container.map(str::to_string);
        }
        k
    }

    pub fn of_sample(s: &RestartSample, by: GroupBy) -> GroupKey {
        let workload = s.workload_kind.as_deref().zip(s.workload_name.as_deref());
        Self::build(
            by,
            s.cluster.as_deref(),
            Some(&s.namespace),
            workload,
            Some(&s.pod),
            Some(&s.container),
        )
    }

    /// The key of an event's scope; `pods` supplies the workload of a pod the event names
    /// without one.
    pub fn of_scope(
        scope: &Scope,
        by: GroupBy,
        pods: &BTreeMap<(String, String), &PodState>,
    ) -> GroupKey {
        let from_pod = scope
            .namespace
            .clone()
            .zip(scope.pod.clone())
            .and_then(|k| pods.get(&k))
            .and_then(|p| p.owners.workload());
        let workload = scope.workload.clone().or(from_pod);
        Self::build(
            by,
            scope.cluster.as_deref(),
            scope.namespace.as_deref(),
            workload
                .as_ref()
                .map(|w| (w.kind.as_str(), w.name.as_str())),
            scope.pod.as_deref(),
            scope.container.as_deref(),
        )
    }

    /// The same key coarsened to `by`.
    pub fn coarsen(&self, by: GroupBy) -> GroupKey {
        let workload = self
            .workload_kind
            .as_deref()
            .zip(self.workload_name.as_deref());
        Self::build(
            by,
            self.cluster.as_deref(),
            self.namespace.as_deref(),
            workload,
            self.pod.as_deref(),
            self.container.as_deref(),
        )
    }

    /// Prometheus-style labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("workload_kind", &self.workload_kind),
            ("workload", &self.workload_name),
            ("pod", &self.pod),
            ("container", &self.container),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
        .collect()
    }

    /// The most specific name: `deployment/nginx`, `pod/x`, a container `pod/x/c`.
    pub fn short(&self) -> String {
        match (
            &self.pod,
            &self.container,
            &self.workload_kind,
            &self.workload_name,
        ) {
            (Some(p), Some(c), _, _) => format!("pod/{p}/{c}"),
            (Some(p), None, _, _) => format!("pod/{p}"),
            (None, _, Some(k), Some(n)) => format!("{}/{n}", k.to_lowercase()),
            _ => self
                .namespace
                .as_ref()
                .map(|n| format!("namespace/{n}"))
                .unwrap_or_else(|| "cluster".into()),
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.cluster {
            write!(f, "{c}:")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.short()),
            None => f.write_str(&self.short()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crashscope_model::scope::WorkloadRef;

    #[test]
    fn the_cluster_leads_the_key_its_labels_and_its_name() {
        let scope = Scope {
            cluster: Some("east".into()),
            namespace: Some("shop".into()),
            workload: Some(WorkloadRef {
                kind: "Deployment".into(),
                name: "web".into(),
            }),
            pod: Some("web-1".into()),
            ..Scope::default()
        };
        let k = GroupKey::of_scope(&scope, GroupBy::Workload, &BTreeMap::new());
        assert_eq!(k.to_string(), "east:shop/deployment/web");
        assert_eq!(k.labels().get("cluster").map(String::as_str), Some("east"));
        let other = GroupKey::of_scope(
            &Scope {
                cluster: Some("west".into()),
                ..scope.clone()
            },
            GroupBy::Workload,
            &BTreeMap::new(),
        );
        assert_ne!(k, other, "two clusters' workloads are two groups");
        assert_eq!(
            k.coarsen(GroupBy::Namespace).to_string(),
            "east:shop/namespace/shop"
        );
    }
}
