//! `crashscope rollout status|history|undo deployment/NAME`: a Deployment's rollout in the
//! local runtime, read from the ReplicaSets and status the runtime's controllers keep, in
//! kubectl's words and exit codes.

use anyhow::{bail, Context, Result};
use crashscope_kube::rollout;
use crashscope_local::history::{self, Undo};
use crashscope_model::duration::parse_go;
use crashscope_store::{SqlStore, Store};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::Api;
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::args::{Global, RolloutAction, RolloutArgs};

pub fn run(g: &Global, a: RolloutArgs) -> Result<ExitCode> {
    if super::cluster(g) {
        return super::runtime()?.block_on(on_cluster(g, a.action));
    }
    let path = super::store_path(g)?;
    super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        let ns = |n: Option<String>| n.unwrap_or_else(|| "default".into());
        match a.action {
            RolloutAction::History {
                deployment,
                namespace,
            } => history(&store, &ns(namespace), target(&deployment)?).await,
            RolloutAction::Undo {
                deployment,
                namespace,
                to_revision,
            } => undo(&store, &ns(namespace), target(&deployment)?, to_revision).await,
            RolloutAction::Status {
                deployment,
                namespace,
                watch,
                timeout,
            } => {
                let timeout = timeout_of(&timeout)?;
                status(&store, &ns(namespace), target(&deployment)?, watch, timeout).await
            }
        }
    })
}

async fn on_cluster(g: &Global, action: RolloutAction) -> Result<ExitCode> {
    let client = super::kube_client(g).await?;
    let ns = |n: Option<String>| n.unwrap_or_else(|| client.default_namespace().to_string());
    match action {
        RolloutAction::History {
            deployment,
            namespace,
        } => {
            let name = target(&deployment)?;
            let (_, h) = rollout::history(&client, &ns(namespace), name).await?;
            print_history(name, h.iter().map(|(r, rs)| (*r, rs)));
            Ok(ExitCode::SUCCESS)
        }
        RolloutAction::Undo {
            deployment,
            namespace,
            to_revision,
        } => {
            let (name, ns) = (target(&deployment)?, ns(namespace));
            match rollout::undo(&client, &ns, name, to_revision).await? {
                rollout::Undone::Skipped { to } => println!(
                    "deployment.apps/{name} skipped rollback (current template already matches revision {to})"
                ),
                rollout::Undone::RolledBack { .. } => {
                    println!("deployment.apps/{name} rolled back")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RolloutAction::Status {
            deployment,
            namespace,
            watch,
            timeout,
        } => {
            let timeout = timeout_of(&timeout)?;
            let (name, ns) = (target(&deployment)?, ns(namespace));
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
            let mut progress = Progress::new(watch, timeout);
            loop {
                let d = deployments
                    .get(name)
                    .await
                    .with_context(|| format!("cannot read deployment {ns}/{name}"))?;
                // The controller has seen the latest spec when it reports its generation.
                let observed = d
                    .status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .is_some_and(|o| d.metadata.generation.is_none_or(|g| g <= o));
                if progress.show(where_it_stands(&d, observed.then_some(&d))?)? {
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `rollout status` as it goes: each new message printed once; done when the rollout is,
/// at once without --watch, and an error past --timeout.
struct Progress {
    last: String,
    watch: bool,
    timeout: Duration,
    start: Instant,
}

impl Progress {
    fn new(watch: bool, timeout: Duration) -> Progress {
        Progress {
            last: String::new(),
            watch,
            timeout,
            start: Instant::now(),
        }
    }

    /// Shows where the rollout stands; whether to stop.
    fn show(&mut self, (msg, done): (String, bool)) -> Result<bool> {
        if msg != self.last {
            println!("{msg}");
            self.last = msg;
        }
        if done || !self.watch {
            return Ok(true);
        }
        if !self.timeout.is_zero() && self.start.elapsed() >= self.timeout {
            bail!("timed out waiting for the condition");
        }
        Ok(false)
    }
}

/// `kubectl rollout history`'s table.
fn print_history<'a>(name: &str, revs: impl Iterator<Item = (u64, &'a ReplicaSet)>) {
    println!("deployment.apps/{name} ");
    println!("REVISION  CHANGE-CAUSE");
    for (rev, rs) in revs {
        let cause = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/change-cause"))
            .map_or("<none>", String::as_str);
        println!("{rev:<8}  {cause}");
    }
    println!();
}

/// `--timeout`'s value.
fn timeout_of(arg: &str) -> Result<Duration> {
    match parse_go(arg) {
        Some(d) => Ok(d),
        None => bail!("--timeout {arg:?}: not a duration (e.g. 30s, 5m)"),
    }
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
    let d = history::applied(store, ns, name).await?;
    let revs = history::revisions(store, ns, &d).await?;
    print_history(name, revs.iter().map(|(r, rs)| (*r, rs)));
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
    let mut progress = Progress::new(watch, timeout);
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
        if progress.show(where_it_stands(&d, observed.as_ref())?)? {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
