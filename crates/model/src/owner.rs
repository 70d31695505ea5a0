//! Owner chains: Pod → ReplicaSet → Deployment (or StatefulSet, DaemonSet, Job → CronJob).
//!
//! Crash loops are tracked per workload, not per pod, so every source has to say which workload
//! a pod belongs to. From a Pod alone the chain stops at its controller; a ReplicaSet named
//! `<deployment>-<pod-template-hash>` is taken to belong to that Deployment (marked `inferred`)
//! until the source has the ReplicaSet object itself and can confirm it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};

use crate::scope::WorkloadRef;

/// One owner in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerLink {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// True when the link was deduced from naming conventions rather than read from an object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
}

impl OwnerLink {
    /// The link an owner reference states (read from an object, so not inferred).
    pub fn from_ref(r: &OwnerReference) -> OwnerLink {
        OwnerLink {
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: Some(r.uid.clone()).filter(|u| !u.is_empty()),
            inferred: false,
        }
    }
}

/// Owners from the nearest (the pod's controller) to the furthest (the workload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChain {
    pub links: Vec<OwnerLink>,
}

impl OwnerChain {
    /// The chain that can be read off a pod's own metadata.
    pub fn from_pod_meta(meta: &ObjectMeta) -> OwnerChain {
        let Some(controller) = controller_of(meta) else {
            return OwnerChain::default();
        };
        let mut links = vec![OwnerLink::from_ref(controller)];
        let hash = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"));
        if controller.kind == "ReplicaSet" {
            if let Some(deployment) = hash.and_then(|h| {
                controller
                    .name
                    .strip_suffix(h.as_str())
                    .and_then(|s| s.strip_suffix('-'))
            }) {
                links.push(OwnerLink {
                    kind: "Deployment".into(),
                    name: deployment.to_string(),
                    uid: None,
                    inferred: true,
                });
            }
        }
        OwnerChain { links }
    }

    /// The pod's direct controller, if any.
    pub fn controller(&self) -> Option<&OwnerLink> {
        self.links.first()
    }

    /// The top of the chain: what an operator calls the workload.
    pub fn workload(&self) -> Option<WorkloadRef> {
        self.links.last().map(|l| WorkloadRef {
            kind: l.kind.clone(),
            name: l.name.clone(),
        })
    }
}

/// The owner reference marked `controller: true`.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(owner_kind: &str, owner_name: &str, hash: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            labels: hash.map(|h| BTreeMap::from([("pod-template-hash".into(), h.into())])),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: owner_kind.into(),
                name: owner_name.into(),
                uid: "u1".into(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn replicaset_with_template_hash_leads_to_deployment() {
        let chain = OwnerChain::from_pod_meta(&meta(
            "ReplicaSet",
            "coredns-66bc5c9577",
            Some("66bc5c9577"),
        ));
        assert_eq!(chain.links.len(), 2);
        let w = chain.workload().unwrap();
        assert_eq!(
            (w.kind.as_str(), w.name.as_str()),
            ("Deployment", "coredns")
        );
        assert!(chain.links[1].inferred);
        assert_eq!(chain.controller().unwrap().name, "coredns-66bc5c9577");
    }

    #[test]
    fn bare_replicaset_and_other_controllers_stop_at_the_controller() {
        let chain = OwnerChain::from_pod_meta(&meta("ReplicaSet", "standalone", None));
        assert_eq!(chain.workload().unwrap().kind, "ReplicaSet");
        let chain = OwnerChain::from_pod_meta(&meta("StatefulSet", "web", None));
        assert_eq!(chain.workload().unwrap().name, "web");
        assert!(OwnerChain::from_pod_meta(&ObjectMeta::default())
            .workload()
            .is_none());
    }
}
