//! A Deployment's revision history as the local runtime keeps it (its ReplicaSets in the
//! store), and going back to a revision — what `kubectl rollout undo` does: the Deployment's
//! pod template (and change cause) replaced by the revision's, after which the controllers
//! roll to it as to any new template. Used by `crashscope rollout` and by the rule engine's
//! rollback action.

use crashscope_store::{SqlStore, Store, StoreError};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::Value;

use crate::deployments::REPLICASET;
use crate::rollout::{CHANGE_CAUSE, REVISION};
use crate::runtime::applied_kind;

/// Why going back failed, in kubectl's words.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("Error from server (NotFound): deployments.apps \"{0}\" not found")]
    NotFound(String),
    #[error("no rollout history found for deployment \"{0}\"")]
    NoHistory(String),
    #[error("unable to find specified revision {0} in history")]
    NoRevision(u64),
    #[error("deployment \"{0}\" cannot be read: {1}")]
    Unreadable(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The template is now revision `to`'s (it was revision `from`'s).
    RolledBack { from: u64, to: u64 },
    /// The template already was revision `to`'s.
    Skipped { to: u64 },
}

/// The applied Deployment `ns/name`.
pub async fn applied(store: &SqlStore, ns: &str, name: &str) -> Result<Deployment, UndoError> {
    let found = store
        .objects(&applied_kind("Deployment"))
        .await?
        .into_iter()
        .find(|v| {
            v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                && v.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        })
        .ok_or_else(|| UndoError::NotFound(name.to_string()))?;
    serde_json::from_value(found).map_err(|e| UndoError::Unreadable(name.into(), e.to_string()))
}

/// The Deployment's ReplicaSets with their revisions, oldest first.
pub async fn revisions(
    store: &SqlStore,
    ns: &str,
    name: &str,
) -> Result<Vec<(u64, ReplicaSet)>, StoreError> {
    let mut out = Vec::new();
    for v in store.objects(REPLICASET).await? {
        let owned = v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            && v.pointer("/metadata/ownerReferences/0/name")
                .and_then(Value::as_str)
                == Some(name);
        if !owned {
            continue;
        }
        let Ok(rs) = serde_json::from_value::<ReplicaSet>(v) else {
            continue;
        };
        if let Some(rev) = revision_of(&rs) {
            out.push((rev, rs));
        }
    }
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

/// A ReplicaSet's revision.
pub fn revision_of(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
}

/// A ReplicaSet's `kubernetes.io/change-cause`.
pub fn change_cause(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_CAUSE))
        .map(String::as_str)
}

/// A ReplicaSet's pod template as the Deployment had it (without the hash label the
/// controller added).
fn template_of(rs: &ReplicaSet) -> Value {
    let mut t = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Goes back to revision `to` (0: the one before the current).
pub async fn undo(store: &SqlStore, ns: &str, name: &str, to: u64) -> Result<Undo, UndoError> {
    let mut d = applied(store, ns, name).await?;
    let revs = revisions(store, ns, name).await?;
    let current = revs.last().map_or(0, |(r, _)| *r);
    let target = if to > 0 {
        revs.iter()
            .find(|(r, _)| *r == to)
            .ok_or(UndoError::NoRevision(to))?
    } else {
        revs.iter()
            .rev()
            .find(|(r, _)| *r < current)
            .ok_or_else(|| UndoError::NoHistory(name.to_string()))?
    };
    let template = template_of(&target.1);
    let Some(spec) = d.spec.as_mut() else {
        return Err(UndoError::Unreadable(name.into(), "it has no spec".into()));
    };
    if serde_json::to_value(&spec.template).unwrap_or(Value::Null) == template {
        return Ok(Undo::Skipped { to: target.0 });
    }
    spec.template = serde_json::from_value(template)
        .map_err(|e| UndoError::Unreadable(name.into(), e.to_string()))?;
    // As the controller does on a rollback: the revision's change cause comes back with it.
    let cause = change_cause(&target.1).map(str::to_string);
    let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
    match cause {
        Some(c) => annotations.insert(CHANGE_CAUSE.into(), c),
        None => annotations.remove(CHANGE_CAUSE),
    };
    let body =
        serde_json::to_value(&d).map_err(|e| UndoError::Unreadable(name.into(), e.to_string()))?;
    store
        .put_object(&applied_kind("Deployment"), ns, name, &body)
        .await?;
    Ok(Undo::RolledBack {
        from: current,
        to: target.0,
    })
}
