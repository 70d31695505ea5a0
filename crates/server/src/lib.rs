//! crashscope's server: the HTTP API over the store (events, custom events, pods, incidents,
//! alerts, silences, captures, the restart metric), bearer-token auth, `/metrics`, and the
//! rule engine that raises alerts and notifies webhooks, Slack and Alertmanager.
//!
//! The sources that feed the store (local runtime, Kubernetes watchers) are started beside it
//! by the `crashscope serve` command; the server only reads what they record.

pub mod api;
pub mod auth;
pub mod diagnosis;
pub mod engine;
pub mod error;
pub mod guard;
pub mod health;
pub mod ingest;
pub mod leader;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod remedy;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crashscope_rules::RuleFile;
use crashscope_store::SqlStore;

pub use api::AppState;
pub use auth::Tokens;
pub use notify::{ChannelConfig, Notification, Notifier};

/// How to run the server.
pub struct Config {
    pub listen: SocketAddr,
    pub store: Arc<SqlStore>,
    pub tokens: Tokens,
    pub rules: RuleFile,
    pub channels: Vec<ChannelConfig>,
    /// How often rules are evaluated.
    pub interval: Duration,
    pub data_dir: PathBuf,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<tls::TlsFiles>,
    /// Connection cap and header deadline.
    pub limits: listen::ConnectionLimits,
    /// The web UI's routes, merged beside the API (`crashscope_web::router`).
    pub ui: Option<UiRouter>,
    /// The watched clusters the rule engine may act on (its `rollback` action).
    pub clusters: Vec<remedy::ClusterClient>,
}

/// Makes the web UI's routes from the server's tokens. A function the binary passes in, so
/// that the server does not depend on the UI that depends on it.
pub type UiRouter = fn(Arc<Tokens>) -> axum::Router<AppState>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// A started server.
pub struct Running {
    /// The address it listens on (the port is real when 0 was asked).
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    engine: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    replica: leader::Replica,
}

pub use metrics::Metrics;

impl Running {
    /// Stops serving (in-flight requests finish) and stops the rule engine.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        self.engine.abort();
        // Another replica takes the engine over at its next round, not after the lease ends.
        self.replica.release().await;
        match self.server.await {
            Ok(r) => r.map_err(ServeError::Serve),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the HTTP server ends on its own (it does not, unless it fails).
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        match (&mut self.server).await {
            Ok(r) => r.map_err(ServeError::Serve),
            Err(_) => Ok(()),
        }
    }
}

/// Binds, starts the rule engine and the HTTP server, and returns at once.
pub async fn start(cfg: Config) -> Result<Running, ServeError> {
    let cfg_tls = cfg.tls.clone();
    let limits = cfg.limits;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: cfg.listen,
        source,
    })?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(health::EngineHealth::default());
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let rules = Arc::new(cfg.rules);
    let state = AppState {
        store: cfg.store.clone(),
        metrics: metrics.clone(),
        ingest: ingest::Ingest::start(cfg.store.clone(), metrics.clone()),
        health: health.clone(),
        captures_dir: cfg.data_dir.join("captures"),
        uploads: Arc::new(tokio::sync::Semaphore::new(api::UPLOADS_AT_ONCE)),
        data_dir: cfg.data_dir.clone(),
        stopping: stopping_rx,
        rules: rules.clone(),
    };
    let notifier = Notifier::new(cfg.channels, metrics.clone(), format!("http://{addr}"));
    let mut engine = engine::Engine::new(cfg.store.clone(), rules, notifier, metrics.clone())
        .with_data_dir(cfg.data_dir.clone())
        .with_clusters(cfg.clusters);
    let interval = cfg.interval;
    let engine_metrics = metrics.clone();
    let replica = leader::Replica::new(cfg.store.clone(), interval);
    let holder = replica.clone();
    let engine = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lead = leader::Leadership::Standby;
        loop {
            tick.tick().await;
            let now = jiff::Timestamp::now();
            let held = holder.try_hold(now).await;
            let (next, change) = lead.step(held.as_ref().ok().copied());
            lead = next;
            engine_metrics.set_leader(lead == leader::Leadership::Leading);
            match change {
                Some(leader::Change::Took) => {
                    tracing::info!(replica = %holder.id(), "this replica evaluates the rules now");
                    if let Err(e) = engine.restore().await {
                        tracing::warn!(error = %e, "cannot restore alerts from the store");
                    }
                }
                Some(leader::Change::Lost) => tracing::warn!(
                    replica = %holder.id(),
                    "another replica evaluates the rules now (this one's lease lapsed)"
                ),
                None => {}
            }
            let result = match held {
                Err(e) => Err(e),
                Ok(_) if lead == leader::Leadership::Leading => engine.round(now).await,
                // A standby serves the API and ingests; it is healthy when the store answers.
                Ok(_) => Ok(()),
            };
            match result {
                Ok(()) => health.succeeded(),
                Err(e) => {
                    tracing::warn!(error = %e, "rule evaluation failed; retrying next round");
                    engine_metrics.evaluation_failed();
                    health.failed(&e);
                }
            }
        }
    });
    let app = api::router(state, Arc::new(cfg.tokens), cfg.ui);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
        let _ = stopping_tx.send(true);
    };
    let server = match &cfg_tls {
        Some(files) => {
            let acceptor = tls::acceptor(files)?;
            let listener =
                tls::TlsListener::new(listener, acceptor).map_err(|source| ServeError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
            tokio::spawn(listen::serve(listener, app, limits, shutdown))
        }
        None => {
            // Without TCP_NODELAY a response written in two segments waits for the client's
            // delayed ACK: tens of milliseconds per request.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            tokio::spawn(listen::serve(listener, app, limits, shutdown))
        }
    };
    tracing::info!(%addr, "serving");
    Ok(Running {
        addr,
        metrics,
        server,
        engine,
        stop,
        replica,
    })
}
