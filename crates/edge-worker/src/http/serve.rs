//! The accept loop: axum's router on hyper with an idle timeout and a
//! graceful drain.
//!
//! `axum::serve` keeps an idle keep-alive connection for as long as the
//! client does and sets no header timeout. Webhook senders keep pools: a
//! burst of 1 000 delegations left 405 idle connections holding about
//! 25 MiB of buffers in the worker (measured with heaptrack), and a client
//! that never finishes its headers would hold a connection forever. Here a
//! connection that sends no complete request head within
//! `server.idleTimeoutSecs` ([`HEADER_READ_TIMEOUT`] by default) — including an idle keep-alive connection
//! waiting for its next request — is closed.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The default longest wait for a request head, idle keep-alive time
/// included (`server.idleTimeoutSecs`). Linear sends each delivery as one
/// quick request; reconnecting after a pause costs little, idle connections
/// cost memory.
pub const HEADER_READ_TIMEOUT: Duration =
    Duration::from_secs(cyrus_core::config::defaults::IDLE_TIMEOUT_SECS);
/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, then lets in-flight
/// requests finish (at most [`DRAIN`]). Connections without a complete
/// request head within `idle_timeout` are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) {
    // HTTP/1.1 only: Linear and Prometheus speak it, and it lets the header
    // timer run from the first byte (version sniffing would wait forever).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: pause, don't spin.
                    tracing::warn!(error = %err, "HTTP: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(conn).await {
                tracing::debug!(error = %err, "HTTP: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP: some requests were still running {DRAIN:?} after shutdown began");
    }
}
