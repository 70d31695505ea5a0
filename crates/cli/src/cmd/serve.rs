//! `crashscope serve`: the server (API, rules, notifications, /metrics) over the store, with
//! the sources it is asked to run beside it — the local runtime (`--local`) and/or the
//! cluster's watchers (`--kube`) — so one command runs the whole pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use crashscope_kube::client::client;
use crashscope_kube::watch::{changes, Selection};
use crashscope_local::runtime::{self, Runtime};
use crashscope_model::duration::parse_go;
use crashscope_rules::{Receiver, RuleFile, Target};
use crashscope_server::{ChannelConfig, Config, Tokens};
use crashscope_store::Ingest;
use crashscope_store::SqlStore;

use crate::args::{Global, ServeArgs};

pub fn run(g: &Global, a: ServeArgs) -> Result<ExitCode> {
    if a.print_default_rules {
        print!("{}", crashscope_rules::rule::DEFAULT_RULES);
        return Ok(ExitCode::SUCCESS);
    }
    let rules = match &a.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the rules {}", p.display()))?;
            RuleFile::parse(&p.display().to_string(), &text)?
        }
        None => RuleFile::defaults(),
    };
    let interval = positive_duration("--eval-interval", &a.eval_interval)?;
    let header_timeout = positive_duration("--header-timeout", &a.header_timeout)?;
    let limits = crashscope_server::listen::ConnectionLimits {
        header_timeout,
        max_connections: match a.max_connections {
            Some(0) => bail!("--max-connections must be at least 1"),
            Some(n) => n,
            None => crashscope_server::listen::connection_budget(),
        },
    };
    let data_dir = super::store_path(g)?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let channels = channels(&a, &rules.notify)?;
    let objects = super::local::read_manifests(&a.local)?;
    let local_cfg = if a.local.is_empty() {
        None
    } else {
        let mut cfg = super::local::config(g, &a.runtime)?;
        cfg.recorder = super::local::recorder(&cfg, &a.runtime);
        Some(cfg)
    };
    let catalog = super::catalog(g)?;
    super::local::multi_thread()?.block_on(async {
        let store = match &a.store {
            Some(url) => SqlStore::connect(url).await?,
            None => SqlStore::open(&data_dir.join("crashscope.db")).await?,
        };
        let store = Arc::new(store);
        let (tokens, token_path) = Tokens::load(a.token_file.as_deref(), &data_dir)?;
        // One watcher per cluster: each context given (recorded under its name), or the
        // kubeconfig's current one (under --cluster-name, if given). Their clients also let
        // the rule engine act (the opt-in rollback).
        let contexts: Vec<(Option<String>, Option<String>)> = if g.context.len() > 1 {
            g.context
                .iter()
                .map(|c| (Some(c.clone()), Some(c.clone())))
                .collect()
        } else {
            vec![(
                super::context(g).map(str::to_string),
                super::cluster_name(g),
            )]
        };
        let mut watched = Vec::new();
        for (context, cluster) in contexts.into_iter().filter(|_| a.kube) {
            let client = client(g.kubeconfig.as_deref(), context.as_deref())
                .await
                .with_context(|| match &context {
                    Some(c) => format!("context {c}"),
                    None => "the kubeconfig's current context".to_string(),
                })?;
            watched.push((cluster, client));
        }
        let clusters = watched
            .iter()
            .map(|(name, client)| crashscope_server::remedy::ClusterClient {
                name: name.clone(),
                client: client.clone(),
            })
            .collect();
        let running = crashscope_server::start(Config {
            listen: a.listen,
            store: store.clone(),
            tokens,
            rules,
            channels,
            interval,
            data_dir: data_dir.clone(),
            limits,
            ui: Some(crashscope_web::router),
            clusters,
            tls: match (&a.tls_cert, &a.tls_key) {
                (Some(cert), Some(key)) => Some(crashscope_server::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                (None, None) => None,
                _ => bail!("--tls-cert and --tls-key go together"),
            },
        })
        .await?;
        eprintln!(
            "serving the crashscope API on http://{} (store {})",
            running.addr,
            store.location()
        );
        if let Some(p) = token_path {
            eprintln!(
                "API token: {} (send it as Authorization: Bearer <token>)",
                p.display()
            );
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(cfg) = local_cfg {
            for line in runtime::apply(&store, objects).await? {
                eprintln!("{line}");
            }
            let rt = Runtime::new(cfg, store.clone());
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                rt.run(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("the local runtime")
            }));
        }
        for (cluster, client) in watched {
            let store = store.clone();
            let catalog = catalog.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let sel = Selection {
                    namespace: None,
                    labels: None,
                    backoff: true,
                };
                Ingest::new(&*store, catalog)
                    .in_cluster(cluster)
                    .pump(
                        changes(&client, &sel),
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                        |_| {},
                        |_| anyhow::Ok(()),
                    )
                    .await?;
                anyhow::Ok(())
            }));
        }
        let mut running = running;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => eprintln!("stopping…"),
            r = running.wait() => r?,
        }
        let _ = stop_tx.send(true);
        let mut failed = false;
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("error: {e:#}");
                    failed = true;
                }
                Err(e) => {
                    eprintln!("error: a source task failed: {e}");
                    failed = true;
                }
            }
        }
        running.shutdown().await?;
        anyhow::Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// A webhook signing secret from its file.
fn secret(file: Option<&std::path::PathBuf>) -> Result<Option<String>> {
    let Some(p) = file else { return Ok(None) };
    let s = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read the webhook secret {}", p.display()))?;
    let s = s.trim().to_string();
    if s.is_empty() {
        bail!("the webhook secret file {} is empty", p.display());
    }
    Ok(Some(s))
}

/// The channels of the flags, then those of the rule file's `notify:` section.
fn channels(a: &ServeArgs, receivers: &[Receiver]) -> Result<Vec<ChannelConfig>> {
    let secret_flag = secret(a.webhook_secret_file.as_ref())?;
    let mut out = Vec::new();
    for (flag, urls) in [
        ("--webhook", &a.webhook),
        ("--slack", &a.slack),
        ("--alertmanager", &a.alertmanager),
    ] {
        for u in urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("{flag} {u:?} is not an http:// or https:// URL");
            }
            out.push(match flag {
                "--webhook" => ChannelConfig::Webhook {
                    url: u.clone(),
                    secret: secret_flag.clone(),
                },
                "--slack" => ChannelConfig::Slack { url: u.clone() },
                _ => ChannelConfig::Alertmanager { url: u.clone() },
            });
        }
    }
    for r in receivers {
        // Checked when the rule file was read.
        let Ok(target) = r.target() else { continue };
        out.push(match target {
            Target::Webhook { url, secret_file } => ChannelConfig::Webhook {
                url: url.into(),
                secret: secret(secret_file)?,
            },
            Target::Slack(url) => ChannelConfig::Slack { url: url.into() },
            Target::Alertmanager(url) => ChannelConfig::Alertmanager { url: url.into() },
        });
    }
    Ok(out)
}

/// A flag's duration, longer than zero.
fn positive_duration(flag: &str, value: &str) -> Result<std::time::Duration> {
    parse_go(value)
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} {value:?} is not a duration like 10s"))
}
