//! Restart samples: one observation of a container's restart count with how its last run
//! ended — the raw material of the restart-rate metric and of incidents.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::pod::{ContainerKind, ContainerState, ContainerView, PodState};

/// One observation of a container's restart count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartSample {
    /// The cluster the pod runs in, when the source names it (several clusters feed one
    /// store): restarts of different clusters never count together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
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
            cluster: pod.cluster.clone(),
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

/// How the first sample of a container instance counts: it shows restarts that happened
/// before anyone watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstSighting {
    /// All of them (an incident's history).
    All,
    /// One when its last run finished after the given time (it just restarted), none
    /// otherwise — a pod that restarted 50 times last week is not 50 restarts now.
    RecentSince(Timestamp),
}

/// Each sample (oldest first) with the restarts it adds: the rise of the count over the
/// previous sample of the same container instance (a pod recreated under the same name is a
/// new instance), or for a first sample what `first` says. Samples that add none are left out.
pub fn rises(samples: &[RestartSample], first: FirstSighting) -> Vec<(&RestartSample, u32)> {
    type Instance<'a> = (Option<&'a str>, &'a str, &'a str, Option<&'a str>, &'a str);
    let mut last: HashMap<Instance, u32> = HashMap::new();
    let mut out = Vec::new();
    for s in samples {
        let id = (
            s.cluster.as_deref(),
            s.namespace.as_str(),
            s.pod.as_str(),
            s.pod_uid.as_deref(),
            s.container.as_str(),
        );
        let added = match (last.insert(id, s.restart_count), first) {
            (Some(before), _) => s.restart_count.saturating_sub(before),
            (None, FirstSighting::All) => s.restart_count,
            (None, FirstSighting::RecentSince(t)) => {
                u32::from(s.restart_count > 0 && s.last_finished_at.is_some_and(|f| f > t))
            }
        };
        if added > 0 {
            out.push((s, added));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(uid: &str, count: u32, finished: i64) -> RestartSample {
        RestartSample {
            cluster: None,
            namespace: "shop".into(),
            pod: "web".into(),
            pod_uid: Some(uid.into()),
            container: "app".into(),
            container_kind: ContainerKind::App,
            workload_kind: None,
            workload_name: None,
            observed_at: Timestamp::from_second(finished + 1).unwrap(),
            restart_count: count,
            last_reason: Some("Error".into()),
            last_exit_code: Some(1),
            last_finished_at: Some(Timestamp::from_second(finished).unwrap()),
        }
    }

    #[test]
    fn the_same_instance_in_two_clusters_counts_in_each() {
        let east = RestartSample {
            cluster: Some("east".into()),
            ..sample("u1", 3, 10)
        };
        let west = RestartSample {
            cluster: Some("west".into()),
            ..sample("u1", 3, 10)
        };
        let added: Vec<u32> = rises(&[east, west], FirstSighting::All)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(added, vec![3, 3]);
    }

    #[test]
    fn rises_count_per_instance_and_first_sightings_as_asked() {
        let samples = [
            sample("a", 50, 100),
            sample("a", 52, 200),
            sample("a", 52, 200),
            // Recreated under the same name: its count starts again.
            sample("b", 1, 300),
        ];
        let all: Vec<u32> = rises(&samples, FirstSighting::All)
            .iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(all, [50, 2, 1]);
        let since = Timestamp::from_second(150).unwrap();
        let recent: Vec<u32> = rises(&samples, FirstSighting::RecentSince(since))
            .iter()
            .map(|r| r.1)
            .collect();
        // The 50 restarts of last week are none now; the recreated pod's just happened.
        assert_eq!(recent, [2, 1]);
    }
}
