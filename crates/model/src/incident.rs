//! Incidents: crash loops as an operator thinks of them. A crash loop is keyed by namespace,
//! owning workload, container and how the container last ended — not by pod — so the five
//! pods of one Deployment that crash the same way are one incident with five pods in it, and
//! a container that starts failing differently (OOMKilled after Error) is a second incident.
//! Init containers count like any other.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::pod::ContainerKind;
use crate::restart::{rises, FirstSighting, RestartSample};

/// What makes two restarts the same incident.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IncidentKey {
    /// The cluster, when the restarts' source names one: incidents never span clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    /// The top of the owner chain, or `Pod` for a bare pod.
    pub workload_kind: String,
    pub workload_name: String,
    pub container: String,
    /// The last terminated reason (`Error`, `OOMKilled`, ...), `Unknown` when not reported.
    pub reason: String,
}

/// One crash loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    #[serde(flatten)]
    pub key: IncidentKey,
    pub container_kind: ContainerKind,
    /// The pods that restarted this way, by name.
    pub pods: BTreeSet<String>,
    /// Restarts attributed to this incident (rises of the restart count; a container first
    /// seen with N restarts brings those N).
    pub restarts: u32,
    pub exit_codes: BTreeSet<i32>,
    /// When the first and the latest of these restarts were observed.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// Groups restart samples (oldest first, as stores return them) into incidents, the most
/// recently active first.
pub fn incidents(samples: &[RestartSample]) -> Vec<Incident> {
    let mut out: BTreeMap<IncidentKey, Incident> = BTreeMap::new();
    for (s, added) in rises(samples, FirstSighting::All) {
        let key = key_of(s);
        let when = s.last_finished_at.unwrap_or(s.observed_at);
        let inc = out.entry(key.clone()).or_insert_with(|| Incident {
            key,
            container_kind: s.container_kind,
            pods: BTreeSet::new(),
            restarts: 0,
            exit_codes: BTreeSet::new(),
            first_seen: when,
            last_seen: when,
        });
        inc.pods.insert(s.pod.clone());
        inc.restarts += added;
        inc.exit_codes.extend(s.last_exit_code);
        inc.first_seen = inc.first_seen.min(when);
        inc.last_seen = inc.last_seen.max(when);
    }
    let mut v: Vec<Incident> = out.into_values().collect();
    v.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
    v
}

fn key_of(s: &RestartSample) -> IncidentKey {
    let (workload_kind, workload_name) = match (&s.workload_kind, &s.workload_name) {
        (Some(k), Some(n)) => (k.clone(), n.clone()),
        _ => ("Pod".to_string(), s.pod.clone()),
    };
    IncidentKey {
        cluster: s.cluster.clone(),
        namespace: s.namespace.clone(),
        workload_kind,
        workload_name,
        container: s.container.clone(),
        reason: s.last_reason.clone().unwrap_or_else(|| "Unknown".into()),
    }
}

/// Brings each incident's latest crash up to what its pods show now. A container's newest
/// termination is in its status the moment it ends, while the restart sample that carries
/// it waits for the kubelet to restart the container (after the back-off): without this the
/// incident's LAST lags one crash behind `get pods`.
pub fn refresh_from_pods(incidents: &mut [Incident], pods: &[crate::PodState]) {
    for p in pods {
        for c in &p.containers {
            // The newest end: the current state right after a crash, else the last state
            // (in back-off).
            let newest = [Some(&c.state), c.last_state.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|st| match st {
                    crate::ContainerState::Terminated {
                        reason,
                        finished_at: Some(f),
                        ..
                    } => Some((reason.clone(), *f)),
                    _ => None,
                })
                .max_by_key(|(_, f)| *f);
            let Some((reason, finished)) = newest else {
                continue;
            };
            let mut s = RestartSample::of(Timestamp::UNIX_EPOCH, p, c);
            s.last_reason = reason;
            let key = key_of(&s);
            if let Some(inc) = incidents
                .iter_mut()
                .find(|i| i.key == key && i.pods.contains(&p.name))
            {
                inc.last_seen = inc.last_seen.max(finished);
            }
        }
    }
    incidents.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pod: &str, container: &str, count: u32, reason: &str, at: i64) -> RestartSample {
        RestartSample {
            cluster: None,
            namespace: "shop".into(),
            pod: pod.into(),
            pod_uid: Some(format!("uid-{pod}")),
            container: container.into(),
            container_kind: ContainerKind::App,
            workload_kind: Some("Deployment".into()),
            workload_name: Some("web".into()),
            observed_at: Timestamp::from_second(1_800_000_000 + at).unwrap(),
            restart_count: count,
            last_reason: Some(reason.into()),
            last_exit_code: Some(if reason == "OOMKilled" { 137 } else { 1 }),
            last_finished_at: None,
        }
    }

    #[test]
    fn the_latest_crash_shows_before_the_kubelet_restarts_the_container() {
        let mut s = sample("web-1", "nginx", 2, "Error", 0);
        s.last_finished_at = Some(Timestamp::from_second(1_800_000_000).unwrap());
        let mut inc = incidents(&[s]);
        // The pod now: the third crash ended 40 s later; the restart count is still 2.
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-7d4b9c", "uid": "rs", "controller": true}]},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {"containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "",
                "ready": false, "restartCount": 2,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "finishedAt": "2027-01-15T08:00:40Z"}}}]}
        }))
        .unwrap();
        let mut state = crate::PodState::from_pod(&pod);
        state.owners.links.push(crate::OwnerLink {
            kind: "Deployment".into(),
            name: "web".into(),
            uid: None,
            inferred: false,
        });
        refresh_from_pods(&mut inc, &[state]);
        assert_eq!(inc[0].last_seen.to_string(), "2027-01-15T08:00:40Z");
    }

    #[test]
    fn five_pods_of_one_deployment_are_one_incident() {
        let mut samples = Vec::new();
        for i in 0..5 {
            let pod = format!("web-7d4b9c-{i}");
            samples.push(sample(&pod, "nginx", 0, "Error", i));
            samples.push(sample(&pod, "nginx", 1, "Error", 10 + i));
            samples.push(sample(&pod, "nginx", 2, "Error", 30 + i));
        }
        let inc = incidents(&samples);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].pods.len(), 5);
        assert_eq!(inc[0].restarts, 10);
        assert_eq!(inc[0].key.workload_name, "web");
        assert_eq!(inc[0].exit_codes, BTreeSet::from([1]));
    }

    #[test]
    fn a_new_way_of_failing_is_a_new_incident_and_replays_add_nothing() {
        let samples = vec![
            sample("web-1", "nginx", 3, "Error", 0),
            sample("web-1", "nginx", 3, "Error", 5),
            sample("web-1", "nginx", 4, "OOMKilled", 10),
        ];
        let inc = incidents(&samples);
        assert_eq!(inc.len(), 2);
        // Most recent first.
        assert_eq!(inc[0].key.reason, "OOMKilled");
        assert_eq!(inc[0].restarts, 1);
        assert_eq!(inc[1].restarts, 3, "first sighting brings its restarts");
    }

    #[test]
    fn bare_pods_and_init_containers_are_their_own_workload() {
        let mut s = sample("debug", "init-db", 2, "Error", 0);
        s.workload_kind = None;
        s.workload_name = None;
        s.container_kind = ContainerKind::Init;
        let inc = incidents(&[s]);
        assert_eq!(
            (
                inc[0].key.workload_kind.as_str(),
                inc[0].key.workload_name.as_str()
            ),
            ("Pod", "debug")
        );
        assert_eq!(inc[0].container_kind, ContainerKind::Init);
    }

    #[test]
    fn a_recreated_pod_with_the_same_name_counts_from_zero() {
        let mut again = sample("web-0", "nginx", 1, "Error", 20);
        again.pod_uid = Some("uid-new".into());
        let inc = incidents(&[sample("web-0", "nginx", 5, "Error", 0), again]);
        assert_eq!(inc[0].restarts, 6);
    }
}
