//! The agent's view of its node's pods, from the API server: which pod a cgroup's uid
//! belongs to and which container (and restart) a container id is.

use std::collections::HashMap;

use crashscope_model::capture::ContainerRef;
use crashscope_probe::cgroup::{status_id, ContainerCgroup};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The pods scheduled to this node, by uid.
#[derive(Debug, Default)]
pub struct NodePods {
    by_uid: HashMap<String, Pod>,
}

fn uid(pod: &Pod) -> Option<&str> {
    pod.metadata.uid.as_deref()
}

impl NodePods {
    /// Keeps the latest version of a pod; true when it was not known.
    pub fn apply(&mut self, pod: Pod) -> bool {
        let Some(u) = uid(&pod).map(str::to_string) else {
            return false;
        };
        self.by_uid.insert(u, pod).is_none()
    }

    pub fn delete(&mut self, pod: &Pod) {
        if let Some(u) = uid(pod) {
            self.by_uid.remove(u);
        }
    }

    pub fn uids(&self) -> Vec<String> {
        self.by_uid.keys().cloned().collect()
    }

    /// Whether a pod (namespace, name) runs on this node.
    pub fn has(&self, namespace: &str, name: &str) -> bool {
        self.by_uid.values().any(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
    }

    /// Who a container found in a cgroup is. The status names the id once the kubelet
    /// reported it (running: this restart; last terminated: the one before); a container
    /// that died before any report is recognised when the pod has a single container.
    pub fn resolve(&self, cg: &ContainerCgroup) -> Option<ContainerRef> {
        let pod = self.by_uid.get(&cg.pod_uid)?;
        let status = pod.status.as_ref();
        let all: Vec<&ContainerStatus> = status
            .into_iter()
            .flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            })
            .collect();
        let is = |id: &Option<String>| id.as_deref().map(status_id) == Some(&cg.container_id);
        let found = all.iter().find_map(|c| {
            if is(&c.container_id) {
                Some((*c, c.restart_count))
            } else if c
                .last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some_and(|t| is(&t.container_id))
            {
                Some((*c, (c.restart_count - 1).max(0)))
            } else {
                None
            }
        });
        let (name, image, instance) = match found {
            Some((c, n)) => (c.name.clone(), c.image.clone(), n),
            None => {
                let spec = pod.spec.as_ref()?;
                let [only] = spec.containers.as_slice() else {
                    return None;
                };
                let restarts = all
                    .iter()
                    .find(|c| c.name == only.name)
                    .map_or(0, |c| c.restart_count);
                (
                    only.name.clone(),
                    only.image.clone().unwrap_or_default(),
                    restarts,
                )
            }
        };
        Some(ContainerRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: cg.pod_uid.clone(),
            container: name,
            image,
            instance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crashscope_probe::cgroup::Runtime;

    /// The kube-system pods of a kind v1.34 node, as its API server listed them.
    fn recorded() -> Vec<Pod> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../../shared/fixtures/k8s/api-replays-v1-34/pod-list.json"
        );
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let list: serde_json::Value =
            serde_json::from_str(all[0]["response_body"].as_str().unwrap()).unwrap();
        serde_json::from_value(list["items"].clone()).unwrap()
    }

    fn cg(uid: &str, id: &str) -> ContainerCgroup {
        ContainerCgroup {
            pod_uid: uid.into(),
            container_id: id.into(),
            runtime: Runtime::Containerd,
        }
    }

    const UID: &str = "72fcc706-9db7-435d-b4fd-cafc1c92fef2";
    const ID: &str = "f9fb50df75084709b6e12a0a2048d7718bea44bc7e31bdd344c23a1d62414237";

    #[test]
    fn a_running_container_is_named_by_its_id() {
        let mut pods = NodePods::default();
        for p in recorded() {
            assert!(pods.apply(p));
        }
        let who = pods.resolve(&cg(UID, ID)).unwrap();
        assert_eq!(
            (
                who.namespace.as_str(),
                who.pod.as_str(),
                who.container.as_str()
            ),
            ("kube-system", "coredns-66bc5c9577-2g8hl", "coredns")
        );
        assert_eq!(who.instance, 0);
        assert!(who.image.contains("coredns"), "{}", who.image);
        assert!(pods.has("kube-system", "coredns-66bc5c9577-2g8hl"));
        assert!(pods
            .resolve(&cg("00000000-0000-0000-0000-000000000000", ID))
            .is_none());
    }

    #[test]
    fn a_dead_container_is_the_restart_before_and_an_unreported_one_the_only_container() {
        let mut pods = NodePods::default();
        let mut pod = recorded().remove(0);
        let cs = &mut pod
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0];
        cs.restart_count = 3;
        cs.last_state = Some(k8s_openapi::api::core::v1::ContainerState {
            terminated: Some(k8s_openapi::api::core::v1::ContainerStateTerminated {
                container_id: Some(format!("containerd://{ID}")),
                exit_code: 1,
                ..Default::default()
            }),
            ..Default::default()
        });
        cs.container_id = Some(format!("containerd://{}", "a".repeat(64)));
        pods.apply(pod.clone());
        assert_eq!(pods.resolve(&cg(UID, ID)).map(|w| w.instance), Some(2));
        let unknown = pods.resolve(&cg(UID, &"b".repeat(64))).unwrap();
        assert_eq!(
            (unknown.container.as_str(), unknown.instance),
            ("coredns", 3)
        );
        pods.delete(&pod);
        assert!(pods.resolve(&cg(UID, ID)).is_none());
    }
}
