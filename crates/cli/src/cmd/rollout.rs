//! `crashscope rollout status|history|undo deployment/NAME`: a Deployment's rollout in the
//! local runtime, read from the ReplicaSets and status the runtime's controllers keep, in
//! kubectl's words and exit codes.

use anyhow::{bail, Result};
use crashscope_local::history::{self, Undo};
use crashscope_model::duration::parse_go;
use crashscope_store::{SqlStore, Store};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::args::{Global, RolloutAction, RolloutArgs};

pub fn run(g: &Global, a: RolloutArgs) -> Result<ExitCode> {
    let path = super::store_path(g)?;
    super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        match a.action {
            RolloutAction::History {
                deployment,
                namespace,
            } => history(&store, &namespace, target(&deployment)?).await,
            RolloutAction::Undo {
                deployment,
                namespace,
                to_revision,
            } => undo(&store, &namespace, target(&deployment)?, to_revision).await,
            RolloutAction::Status {
                deployment,
                namespace,
                watch,
                timeout,
            } => {
                let Some(timeout) = parse_go(&timeout) else {
                    bail!("--timeout {timeout:?}: not a duration (e.g. 30s, 5m)");
                };
                status(&store, &namespace, target(&deployment)?, watch, timeout).await
            }
        }
    })
}

/// The Deployment's name from `deployment/NAME` (kubectl's spellings) or a bare name.
fn target(arg: &str) -> Result<&str> {
    let name = match arg.split_once('/') {
        None => arg,
        Some(("deployment" | "deployments" | "deploy" | "deployment.apps", n)) => n,
        Some((kind, _)) => {
            bail!("{arg}: rollout works on Deployments here (deployment/NAME), not {kind}")
        }
    };
    if name.is_empty() {
        bail!("{arg}: the Deployment's name is missing");
    }
    Ok(name)
}

async fn history(store: &SqlStore, ns: &str, name: &str) -> Result<ExitCode> {
    history::applied(store, ns, name).await?;
    let revs = history::revisions(store, ns, name).await?;
    println!("deployment.apps/{name} ");
    println!("REVISION  CHANGE-CAUSE");
    for (rev, rs) in &revs {
        let cause = history::change_cause(rs).unwrap_or("<none>");
        println!("{rev:<8}  {cause}");
    }
    println!();
    Ok(ExitCode::SUCCESS)
}

async fn undo(store: &SqlStore, ns: &str, name: &str, to: u64) -> Result<ExitCode> {
    match history::undo(store, ns, name, to).await? {
        Undo::RolledBack { .. } => println!("deployment.apps/{name} rolled back"),
        Undo::Skipped { to } => println!(
            "deployment.apps/{name} skipped rollback (current template already matches revision {to})"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the rollout stands, in `kubectl rollout status`'s words: `Ok(done)` or the
/// deadline error.
fn where_it_stands(applied: &Deployment, observed: Option<&Deployment>) -> Result<(String, bool)> {
    let name = applied.metadata.name.as_deref().unwrap_or("");
    let seen = observed.filter(|o| {
        let t = |d: &Deployment| {
            d.spec
                .as_ref()
                .map(|s| serde_json::to_value(&s.template).ok())
        };
        t(o) == t(applied)
    });
    let Some(d) = seen else {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    };
    let st = d.status.clone().unwrap_or_default();
    let timed_out = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if timed_out {
        bail!("deployment \"{name}\" exceeded its progress deadline");
    }
    let want = applied.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let avail = st.available_replicas.unwrap_or(0);
    Ok(if updated < want {
        (format!("Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."), false)
    } else if total > updated {
        (format!("Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...", total - updated), false)
    } else if avail < updated {
        (format!("Waiting for deployment \"{name}\" rollout to finish: {avail} of {updated} updated replicas are available..."), false)
    } else {
        (
            format!("deployment \"{name}\" successfully rolled out"),
            true,
        )
    })
}

async fn status(
    store: &SqlStore,
    ns: &str,
    name: &str,
    watch: bool,
    timeout: Duration,
) -> Result<ExitCode> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let d = history::applied(store, ns, name).await?;
        let observed: Option<Deployment> = store
            .objects("Deployment")
            .await?
            .into_iter()
            .find(|v| {
                v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                    && v.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            })
            .and_then(|v| serde_json::from_value(v).ok());
        let (msg, done) = where_it_stands(&d, observed.as_ref())?;
        if msg != last {
            println!("{msg}");
            last = msg;
        }
        if done || !watch {
            return Ok(ExitCode::SUCCESS);
        }
        if !timeout.is_zero() && start.elapsed() >= timeout {
            bail!("timed out waiting for the condition");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
