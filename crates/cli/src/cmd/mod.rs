//! One module per command; `run` dispatches.

mod agent;
mod capture;
mod captures;
mod demo;
mod describe;
mod diagnose;
mod events;
mod fix;
mod get;
mod incidents;
mod ingest;
mod inspect;
mod local;
mod logs;
mod rollout;
mod serve;
mod top;
mod watch;

use anyhow::{bail, Context, Result};
use crashscope_model::backoff::BackoffPolicy;
use crashscope_model::duration::parse_go;
use crashscope_model::Catalog;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::args::{BackoffVariant, Cli, Command, Global};

pub fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    if g.context.len() > 1 && !matches!(cli.command, Command::Serve(_)) {
        bail!(
            "--context is given {} times: only `serve --kube` watches several clusters",
            g.context.len()
        );
    }
    if g.cluster_name.is_some() && g.context.len() > 1 {
        bail!("--cluster-name names one cluster; with several --context each is named after its context");
    }
    match cli.command {
        Command::Get(a) => get::run(g, a),
        Command::Describe(a) => describe::run(g, a),
        Command::Events(a) => events::run(g, a),
        Command::Ingest(a) => ingest::run(g, a),
        Command::Run(a) => local::run(g, a),
        Command::Apply(a) => local::apply(g, a, false),
        Command::Delete(a) => local::apply(g, a, true),
        Command::Logs(a) => logs::run(g, a),
        Command::Rollout(a) => rollout::run(g, a),
        Command::Top(a) => top::run(g, a),
        Command::Demo(a) => demo::run(g, a),
        Command::Inspect(a) => inspect::run(a),
        Command::Watch(a) => watch::run(g, a),
        Command::Capture(a) => capture::run(g, a),
        Command::Serve(a) => serve::run(g, a),
        Command::Agent(a) => agent::run(g, a),
        Command::Diagnose(a) => diagnose::run(g, a),
        Command::Fix(a) => fix::run(g, a),
        Command::Captures { output } => captures::run(g, output),
        Command::Completion { shell } => {
            crate::complete::script(shell, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The back-off policy the flags ask for.
pub fn backoff_policy(g: &Global) -> Result<BackoffPolicy> {
    let base = match g.backoff {
        BackoffVariant::Kubelet => BackoffPolicy::kubelet(),
        BackoffVariant::ReducedDecay => BackoffPolicy::reduced_decay(),
    };
    match &g.backoff_max {
        None => Ok(base),
        Some(s) => {
            let max = parse_go(s)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--backoff-max {s:?} is not a duration like 60s or 5m"))?;
            Ok(base.with_max(max))
        }
    }
}

/// `--since DURATION` as the instant that long before `now`.
pub fn since(now: jiff::Timestamp, arg: Option<&str>) -> Result<Option<jiff::Timestamp>> {
    let Some(s) = arg else { return Ok(None) };
    let d =
        parse_go(s).with_context(|| format!("--since {s:?} is not a duration like 30m or 2h"))?;
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .filter(|t| *t >= crashscope_model::time_range::EARLIEST)
        .map(Some)
        .with_context(|| format!("--since {s:?} reaches back before 1970"))
}

/// The built-in catalog with the user's overrides.
pub fn catalog(g: &Global) -> Result<Catalog> {
    let builtin = Catalog::profile(match g.event_profile {
        crate::args::EventProfile::Crash => crashscope_model::Profile::Crash,
        crate::args::EventProfile::Sysdig => crashscope_model::Profile::Sysdig,
    });
    let Some(path) = &g.event_catalog else {
        return Ok(builtin);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read event catalog {}", path.display()))?;
    Ok(builtin.with_overrides(Catalog::parse(&text, &path.display().to_string())?))
}

/// The store file under `--data-dir` or the user's data directory.
pub fn store_path(g: &Global) -> Result<PathBuf> {
    let dir = match &g.data_dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .context("cannot tell the user's data directory; pass --data-dir")?
            .join("crashscope"),
    };
    Ok(dir.join("crashscope.db"))
}

/// The one --context given, if any (several are refused before a command runs, but for
/// `serve`).
pub fn context(g: &Global) -> Option<&str> {
    g.context.first().map(String::as_str)
}

/// The name a single watched cluster is recorded under: --cluster-name, else the context's.
pub fn cluster_name(g: &Global) -> Option<String> {
    g.cluster_name
        .clone()
        .or_else(|| context(g).map(str::to_string))
}

/// Whether reads go to the cluster rather than the local store.
pub fn cluster(g: &Global) -> bool {
    g.cluster || g.kubeconfig.is_some() || !g.context.is_empty()
}

/// A client for the cluster the flags name.
pub async fn kube_client(g: &Global) -> Result<kube::Client> {
    crashscope_kube::client::client(g.kubeconfig.as_deref(), context(g))
        .await
        .context("cannot reach the cluster")
}

/// The namespace a cluster read covers: -n, else none with -A, else the context's.
pub fn cluster_namespace(
    client: &kube::Client,
    namespace: Option<&str>,
    all: bool,
) -> Option<String> {
    match (namespace, all) {
        (Some(ns), _) => Some(ns.to_string()),
        (None, true) => None,
        (None, false) => Some(client.default_namespace().to_string()),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Exit status after printing what could be read: failure if anything could not.
pub fn status(had_errors: bool) -> ExitCode {
    if had_errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
