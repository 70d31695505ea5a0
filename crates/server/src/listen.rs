//! How connections are taken: at most so many at once, a deadline for a request's headers,
//! and a graceful stop. axum's own `serve` has neither a cap nor a header deadline, so a
//! thousand half-sent requests would hold every file descriptor and lock out even `/healthz`.
//!
//! Past the cap the server stops accepting: new connections wait in the kernel's backlog
//! (costing no descriptor) until the header deadline frees a slot held by an idle client.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

/// Limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A client must send a request's headers within this long, or the connection closes
    /// (also between requests on a kept-alive connection).
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: connection_budget(),
        }
    }
}

/// Descriptors this process may open, less a reserve for the store, captures, logs and
/// outgoing notifications; between 16 and 10,000 connections.
pub fn connection_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let soft = if ok {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    soft.saturating_sub(256).clamp(16, 10_000)
}

/// Serves `app` on `listener` until `stop` completes; then finishes the requests in flight.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (io, _peer) = tokio::select! {
            c = listener.accept() => c,
            _ = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stopping.changed() => {
                        conn.as_mut().graceful_shutdown();
                        if changed.is_err() {
                            // The server is gone; finish this request and end.
                            let _ = conn.as_mut().await;
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a slot: having them all back means every connection ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}
