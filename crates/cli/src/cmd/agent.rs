//! `crashscope agent`: flags to the node agent's configuration, and the API server's pods of
//! this node as its input (the agent crate itself does not talk to Kubernetes).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use crashscope_agent::Config;
use crashscope_kube::watch::node_pods;
use crashscope_model::duration::parse_go;
use crashscope_probe::flight::Limits;

use crate::args::{AgentArgs, Global};

fn duration(flag: &str, v: &str) -> Result<Duration> {
    parse_go(v).with_context(|| format!("--{flag} {v:?} is not a duration like 30s or 2m"))
}

fn token(a: &AgentArgs) -> Result<Option<String>> {
    match &a.token_file {
        Some(f) => Ok(Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read --token-file {}", f.display()))?
                .trim()
                .to_string(),
        )),
        None => Ok(std::env::var("CRASHSCOPE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())),
    }
}

pub fn run(g: &Global, a: AgentArgs) -> Result<ExitCode> {
    let limits = Limits {
        before: duration("before", &a.before)?,
        after: duration("after", &a.after)?,
        max_bytes: a.max_mib.max(1) << 20,
        min_interval: duration("capture-interval", &a.capture_interval)?,
        snaplen: a.snaplen,
        env: a.env,
        latency: a.latency,
    };
    let dir = super::store_path(g)?
        .parent()
        .map_or_else(|| PathBuf::from("captures"), |d| d.join("captures"));
    let token = token(&a)?;
    let cfg = Config {
        node: a.node.clone(),
        proc: a.proc.clone(),
        cgroup_root: a.cgroup_root.clone(),
        dir,
        keep: a.keep,
        limits,
        server: a.server.clone().map(|url| (url, token)),
        cluster: super::cluster_name(g),
    };
    super::runtime()?.block_on(async move {
        let client = super::kube_client(g).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot handle SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        crashscope_agent::run(cfg, node_pods(&client, &a.node, true), shutdown)
            .await
            .with_context(|| format!("agent on node {}", a.node))?;
        Ok(ExitCode::SUCCESS)
    })
}
