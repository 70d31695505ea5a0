//! `crashscope watch`: the cluster's pods, events, owners and nodes into the store, and a
//! live feed of what is new — restarts (with how the last run ended), events (with how many
//! more times they happened), nodes turning (not) ready — until Ctrl-C. With
//! `--health-listen`, `/healthz` and `/readyz` answer probes.

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use crashscope_kube::client::client;
use crashscope_kube::health::Health;
use crashscope_kube::watch::{changes, Change, Selection};
use crashscope_store::SqlStore;
use crashscope_store::{Feed, Ingest};
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::args::{Global, WatchArgs, WatchOutput};

type Shared = Arc<Mutex<Health>>;

pub fn run(g: &Global, a: WatchArgs) -> Result<ExitCode> {
    let catalog = super::catalog(g)?;
    let path = super::store_path(g)?;
    super::runtime()?.block_on(async {
        let client = client(g.kubeconfig.as_deref(), super::context(g)).await?;
        let namespace = if a.all_namespaces {
            None
        } else {
            Some(
                a.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let store = SqlStore::open(&path)
            .await
            .with_context(|| format!("store {}", path.display()))?;
        let health: Shared = Arc::default();
        if let Some(addr) = a.health_listen {
            serve_health(addr, health.clone()).await?;
        }
        let mut rec = Ingest::new(&store, catalog).in_cluster(super::cluster_name(g));
        let sel = Selection {
            namespace: namespace.clone(),
            labels: a.selector.clone(),
            backoff: true,
        };
        eprintln!(
            "watching pods, events, workloads and nodes in {} (store {}); Ctrl-C stops",
            namespace
                .as_deref()
                .map(|n| format!("namespace {n}"))
                .unwrap_or_else(|| "all namespaces".into()),
            path.display()
        );
        let mut out = std::io::stdout();
        rec.pump(
            changes(&client, &sel),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            |change| {
                if let Ok(mut h) = health.lock() {
                    h.observe(change, jiff::Timestamp::now());
                }
                if let Change::Synced(what) = change {
                    tracing::info!("{what}: initial list recorded");
                }
            },
            |feed| {
                for f in &feed {
                    print_feed(&mut out, f, a.output)?;
                }
                out.flush()?;
                anyhow::Ok(())
            },
        )
        .await?;
        eprintln!(
            "{} pod updates and {} events recorded",
            rec.tally.pods, rec.tally.events
        );
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn print_feed(out: &mut impl Write, f: &Feed, output: Option<WatchOutput>) -> Result<()> {
    match (f, output) {
        (Feed::Warning { message }, None) => eprintln!("warning: {message}"),
        (_, Some(WatchOutput::Json)) => writeln!(out, "{}", serde_json::to_string(f)?)?,
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
                .map(|o| format!("{}/{}", o.namespace.as_deref().unwrap_or("-"), o.name))
                .unwrap_or_default(),
            event.message,
            if event.count > 1 {
                format!(" (x{}, +{added})", event.count)
            } else {
                String::new()
            }
        )?,
        (
            Feed::Node {
                name,
                ready,
                reason,
            },
            None,
        ) => writeln!(
            out,
            "NODE     {name} {}{}",
            if *ready { "Ready" } else { "NotReady" },
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )?,
    }
    Ok(())
}

fn respond(ok: bool, h: &Health) -> axum::response::Response {
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(serde_json::to_value(h).unwrap_or_default()),
    )
        .into_response()
}

async fn healthz(State(h): State<Shared>) -> axum::response::Response {
    match h.lock() {
        Ok(h) => respond(h.failing(jiff::Timestamp::now()).is_empty(), &h),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn readyz(State(h): State<Shared>) -> axum::response::Response {
    match h.lock() {
        Ok(h) => respond(h.ready(), &h),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `/healthz`: 503 while a watcher has failed for longer than the grace period.
/// `/readyz`: 503 until pods and events were listed once. Both bodies say why, as JSON.
async fn serve_health(addr: std::net::SocketAddr, health: Shared) -> Result<()> {
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--health-listen {addr}: cannot listen"))?;
    eprintln!("health: http://{addr}/healthz, http://{addr}/readyz");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("health endpoint stopped: {e}");
        }
    });
    Ok(())
}
