//! A Deployment's revision history as the local runtime keeps it (its ReplicaSets in the
//! store), and going back to a revision as `kubectl rollout undo` does
//! ([`crashscope_model::rollback`]: the revision's template and annotations put on the applied
//! Deployment, after which the controllers roll to it as to any new template). Used by
//! `crashscope rollout` and by the rule engine's rollback action.

use crashscope_model::rollback::{self, Plan, RollbackError};
use crashscope_store::{SqlStore, Store, StoreError};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::Value;

use crate::deployments::REPLICASET;
use crate::rollout::CHANGE_CAUSE;
use crate::runtime::applied_kind;

/// Why going back failed, in kubectl's words.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("Error from server (NotFound): deployments.apps \"{0}\" not found")]
    NotFound(String),
    #[error(transparent)]
    Rollback(#[from] RollbackError),
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
    typed(applied_json(store, ns, name).await?, name)
}

fn typed(v: Value, name: &str) -> Result<Deployment, UndoError> {
    serde_json::from_value(v).map_err(|e| UndoError::Unreadable(name.into(), e.to_string()))
}

async fn applied_json(store: &SqlStore, ns: &str, name: &str) -> Result<Value, UndoError> {
    store
        .objects(&applied_kind("Deployment"))
        .await?
        .into_iter()
        .find(|v| {
            v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                && v.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        })
        .ok_or_else(|| UndoError::NotFound(name.to_string()))
}

/// The ReplicaSets of Deployment `d` (in namespace `ns`) with their revisions, oldest first.
pub async fn revisions(
    store: &SqlStore,
    ns: &str,
    d: &Deployment,
) -> Result<Vec<(u64, ReplicaSet)>, StoreError> {
    let sets = store
        .objects(REPLICASET)
        .await?
        .into_iter()
        .filter(|v| v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
        .filter_map(|v| serde_json::from_value::<ReplicaSet>(v).ok())
        .collect();
    Ok(rollback::history(d, sets))
}

/// Goes back to revision `to` (0: the one before the current).
pub async fn undo(store: &SqlStore, ns: &str, name: &str, to: u64) -> Result<Undo, UndoError> {
    let mut body = applied_json(store, ns, name).await?;
    let d = typed(body.clone(), name)?;
    let revs = revisions(store, ns, &d).await?;
    let (from, to, template, annotations) = match rollback::undo(&d, &revs, to)? {
        Plan::Skip { to } => return Ok(Undo::Skipped { to }),
        Plan::Patch {
            from,
            to,
            template,
            annotations,
        } => (from, to, template, annotations),
    };
    body["spec"]["template"] = template;
    // The applied manifest keeps its own annotations; the revision's change cause comes back
    // (the local ReplicaSets carry no others).
    let cause = annotations.get(CHANGE_CAUSE).cloned();
    let mut own = d.metadata.annotations.unwrap_or_default();
    match cause {
        Some(c) => own.insert(CHANGE_CAUSE.into(), c),
        None => own.remove(CHANGE_CAUSE),
    };
    body["metadata"]["annotations"] =
        serde_json::to_value(own).map_err(|e| UndoError::Unreadable(name.into(), e.to_string()))?;
    store
        .put_object(&applied_kind("Deployment"), ns, name, &body)
        .await?;
    Ok(Undo::RolledBack { from, to })
}
