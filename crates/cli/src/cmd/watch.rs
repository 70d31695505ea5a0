//! `crashscope watch`: the cluster's pods and events into the store, and a live feed of
//! what is new — restarts (with how the last run ended) and events (with how many more
//! times they happened) — until Ctrl-C.

use anyhow::{Context, Result};
use crashscope_kube::watch::{changes, client, Change, Feed, Recorder, Selection};
use crashscope_store::SqliteStore;
use futures::StreamExt;
use std::io::Write;
use std::process::ExitCode;

use crate::args::{Global, WatchArgs, WatchOutput};

pub fn run(g: &Global, a: WatchArgs) -> Result<ExitCode> {
    let catalog = super::catalog(g)?;
    let path = super::store_path(g)?;
    super::runtime()?.block_on(async {
        let client = client(a.kubeconfig.as_deref(), a.context.as_deref()).await?;
        let namespace = if a.all_namespaces {
            None
        } else {
            Some(
                a.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let store = SqliteStore::open(&path)
            .await
            .with_context(|| format!("store {}", path.display()))?;
        let mut rec = Recorder::new(&store, catalog);
        let sel = Selection {
            namespace: namespace.clone(),
            labels: a.selector.clone(),
            backoff: true,
        };
        eprintln!(
            "watching pods and events in {} (store {}); Ctrl-C stops",
            namespace
                .as_deref()
                .map(|n| format!("namespace {n}"))
                .unwrap_or_else(|| "all namespaces".into()),
            path.display()
        );
        let mut stream = Box::pin(changes(&client, &sel));
        let mut out = std::io::stdout();
        loop {
            let change = tokio::select! {
                c = stream.next() => match c { Some(c) => c, None => break },
                _ = tokio::signal::ctrl_c() => break,
            };
            if let Change::Synced(what) = &change {
                tracing::info!("{what}: initial list recorded");
            }
            for f in rec.record(change).await? {
                match (&f, a.output) {
                    (Feed::Warning { message }, None) => eprintln!("warning: {message}"),
                    (_, Some(WatchOutput::Json)) => {
                        writeln!(out, "{}", serde_json::to_string(&f)?)?
                    }
                    (Feed::Restart(r), None) => writeln!(
                        out,
                        "RESTART  {}/{} container={} restarts={} last={}{}",
                        r.namespace,
                        r.pod,
                        r.container,
                        r.restart_count,
                        r.last_reason.as_deref().unwrap_or("?"),
                        r.last_exit_code
                            .map(|c| format!(" (exit {c})"))
                            .unwrap_or_default()
                    )?,
                    (Feed::Event { event, added }, None) => writeln!(
                        out,
                        "EVENT    {} {} {}: {}{}",
                        event.severity,
                        event.reason,
                        event
                            .involved
                            .as_ref()
                            .map(|o| format!(
                                "{}/{}",
                                o.namespace.as_deref().unwrap_or("-"),
                                o.name
                            ))
                            .unwrap_or_default(),
                        event.message,
                        if event.count > 1 {
                            format!(" (x{}, +{added})", event.count)
                        } else {
                            String::new()
                        }
                    )?,
                }
            }
            out.flush()?;
        }
        eprintln!(
            "{} pod updates and {} events recorded",
            rec.pods, rec.events
        );
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
