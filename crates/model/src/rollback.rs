//! What `kubectl rollout history` and `kubectl rollout undo` compute from a Deployment and
//! its ReplicaSets (for a cluster, and for the local runtime's Deployments alike): the revisions, the one to go back to, whether the Deployment already has
//! its template, and the JSON patch kubectl sends (the template without the
//! `pod-template-hash` label, and the annotations: the Deployment's own controller
//! annotations kept, the revision's others — its change cause — brought back).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Annotations the rollback keeps from the Deployment instead of taking the ReplicaSet's.
const SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

const HASH: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Why there is nothing to go back to, in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error("no rollout history found for deployment \"{0}\"")]
    NoHistory(String),
    #[error("unable to find specified revision {0} in history")]
    NoRevision(u64),
}

/// What undo does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Going from revision `from` to `to`: the Deployment's pod template and annotations
    /// become these ([`Plan::json_patch`] is the request kubectl sends).
    Patch {
        from: u64,
        to: u64,
        template: Value,
        annotations: BTreeMap<String, String>,
    },
    /// The Deployment already has revision `to`'s template.
    Skip { to: u64 },
}

impl Plan {
    /// The JSON patch (RFC 6902) `kubectl rollout undo` sends; None for a skip.
    pub fn json_patch(&self) -> Option<Value> {
        match self {
            Plan::Patch {
                template,
                annotations,
                ..
            } => Some(json!([
                {"op": "replace", "path": "/spec/template", "value": template},
                {"op": "replace", "path": "/metadata/annotations", "value": annotations},
            ])),
            Plan::Skip { .. } => None,
        }
    }
}

/// A ReplicaSet's revision.
pub fn revision(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(REVISION)?
        .parse()
        .ok()
}

/// The Deployment's ReplicaSets (controlled by it) with their revisions, oldest first.
pub fn history(d: &Deployment, sets: Vec<ReplicaSet>) -> Vec<(u64, ReplicaSet)> {
    let uid = d.metadata.uid.as_deref();
    let mut out: Vec<(u64, ReplicaSet)> = sets
        .into_iter()
        .filter(|rs| {
            rs.metadata.owner_references.iter().flatten().any(|o| {
                o.controller == Some(true) && o.kind == "Deployment" && Some(o.uid.as_str()) == uid
            })
        })
        .filter_map(|rs| Some((revision(&rs)?, rs)))
        .collect();
    out.sort_by_key(|(r, _)| *r);
    out
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH);
    }
    t
}

/// The undo of Deployment `d` to revision `to` (0: the one before the newest).
pub fn undo(d: &Deployment, history: &[(u64, ReplicaSet)], to: u64) -> Result<Plan, RollbackError> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let current = history.last().map_or(0, |(r, _)| *r);
    let (rev, rs) = if to > 0 {
        history
            .iter()
            .find(|(r, _)| *r == to)
            .ok_or(RollbackError::NoRevision(to))?
    } else {
        history
            .iter()
            .rev()
            .find(|(r, _)| *r < current)
            .ok_or(RollbackError::NoHistory(name))?
    };
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let target = without_hash(&template);
    let now = d
        .spec
        .as_ref()
        .map(|s| without_hash(&serde_json::to_value(&s.template).unwrap_or(Value::Null)))
        .unwrap_or(Value::Null);
    if target == now {
        return Ok(Plan::Skip { to: *rev });
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    let own = d.metadata.annotations.clone().unwrap_or_default();
    for k in SKIP {
        if let Some(v) = own.get(k) {
            annotations.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    Ok(Plan::Patch {
        from: current,
        to: *rev,
        template: target,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(rev: u64, uid: &str, image: &str, cause: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{rev}"), "annotations": {
                "deployment.kubernetes.io/revision": rev.to_string(),
                "kubernetes.io/change-cause": cause},
              "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                   "uid": uid, "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{rev}")}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    fn deployment(image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "uid": "u1", "annotations": {
                "deployment.kubernetes.io/revision": "2", "kubernetes.io/change-cause": "v2"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn undo_patches_the_template_and_brings_the_change_cause_back() {
        let d = deployment("web:2");
        let h = history(
            &d,
            vec![
                rs(2, "u1", "web:2", "v2"),
                rs(1, "u1", "web:1", "v1"),
                rs(7, "someone-else", "x", "x"),
            ],
        );
        assert_eq!(h.iter().map(|(r, _)| *r).collect::<Vec<_>>(), [1, 2]);
        let plan = undo(&d, &h, 0).unwrap();
        let Plan::Patch { from, to, .. } = plan else {
            panic!()
        };
        let patch = plan.json_patch().unwrap();
        assert_eq!((from, to), (2, 1));
        assert_eq!(
            patch,
            json!([
                {"op": "replace", "path": "/spec/template", "value": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
                {"op": "replace", "path": "/metadata/annotations", "value": {
                    "deployment.kubernetes.io/revision": "2",
                    "kubernetes.io/change-cause": "v1"}},
            ])
        );
        assert_eq!(undo(&d, &h, 2).unwrap(), Plan::Skip { to: 2 });
        assert_eq!(undo(&d, &h, 5), Err(RollbackError::NoRevision(5)));
        assert!(matches!(
            undo(&d, &h[1..], 0),
            Err(RollbackError::NoHistory(_))
        ));
    }
}
