//! A Deployment's revisions in a cluster and going back to one, as `kubectl rollout history`
//! and `kubectl rollout undo` do: the Deployment and the ReplicaSets its selector finds
//! (revisions computed by [`crashscope_model::rollback`], for the cluster and the local
//! runtime alike), and the JSON patch kubectl sends. Patching needs a role crashscope does
//! not have by default; a refusal says which one to grant.

use crashscope_model::rollback::{self, Plan, RollbackError};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};

/// The opt-in role that allows rolling back (`deploy/rollback-rbac.yaml`).
pub const ROLE_HINT: &str = "rolling back is opt-in; grant the ClusterRole crashscope-rollback \
     (kubectl apply -f deploy/rollback-rbac.yaml) to the identity crashscope runs as";

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("Error from server (NotFound): deployments.apps \"{0}\" not found")]
    NotFound(String),
    #[error("{message}\ncrashscope may not patch deployments in {namespace}: {ROLE_HINT}")]
    Forbidden { namespace: String, message: String },
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Rollback(#[from] RollbackError),
    #[error("cannot encode the patch: {0}")]
    Encode(String),
}

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> RolloutError {
    move |source| RolloutError::Kube { what, source }
}

/// The Deployment `ns/name` and its revisions, oldest first.
pub async fn history(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<(Deployment, Vec<(u64, ReplicaSet)>), RolloutError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = match deployments.get(name).await {
        Ok(d) => d,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(RolloutError::NotFound(name.to_string()))
        }
        Err(e) => return Err(kube_err(format!("cannot read deployment {ns}/{name}"))(e)),
    };
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let list = sets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err(format!(
            "cannot list the replica sets of deployment {ns}/{name}"
        )))?;
    let h = rollback::history(&d, list.items);
    Ok((d, h))
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    RolledBack {
        from: u64,
        to: u64,
    },
    /// The Deployment already had revision `to`'s template.
    Skipped {
        to: u64,
    },
}

/// Rolls Deployment `ns/name` back to revision `to` (0: the one before the newest), sending
/// the JSON patch of the template and annotations that kubectl sends.
pub async fn undo(
    client: &kube::Client,
    ns: &str,
    name: &str,
    to: u64,
) -> Result<Undone, RolloutError> {
    let (d, h) = history(client, ns, name).await?;
    let plan = rollback::undo(&d, &h, to)?;
    let (from, to, patch) = match &plan {
        Plan::Skip { to } => return Ok(Undone::Skipped { to: *to }),
        Plan::Patch { from, to, .. } => (*from, *to, plan.json_patch().unwrap_or_default()),
    };
    let body = serde_json::to_vec(&patch).map_err(|e| RolloutError::Encode(e.to_string()))?;
    let req = http::Request::patch(format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"))
        .header("Content-Type", "application/json-patch+json")
        .body(body)
        .map_err(|e| RolloutError::Encode(e.to_string()))?;
    match client.request::<Deployment>(req).await {
        Ok(_) => Ok(Undone::RolledBack { from, to }),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(RolloutError::Forbidden {
            namespace: ns.to_string(),
            message: s.message,
        }),
        Err(e) => Err(kube_err(format!("cannot roll back deployment {ns}/{name}"))(e)),
    }
}
