//! The accept loop: axum's router on hyper with an idle timeout, bounded
//! connections and a graceful drain.
//!
//! `axum::serve` keeps an idle keep-alive connection for as long as the
//! client does and sets no header timeout. Webhook senders keep pools: a
//! burst of 1 000 delegations left 405 idle connections holding about
//! 25 MiB of buffers in the worker (measured with heaptrack), and a client
//! that never finishes its headers would hold a connection forever. Here:
//!
//! - a connection that sends no complete request head within
//!   `server.idleTimeoutSecs` ([`HEADER_READ_TIMEOUT`] by default) —
//!   including an idle keep-alive connection waiting for its next request —
//!   is closed. The default (75 s, as nginx; Fastify uses 72 s)
//!   is longer than senders keep idle pooled connections, so it is the
//!   sender that closes an idle connection. A server closing one instead
//!   races the sender's next request on it, which HTTP/1.1 cannot prevent
//!   (the sender sees a reset and the delivery is retried much later);
//! - at most [`MAX_CONNECTIONS`] connections are open; past that new ones
//!   wait in the listen backlog until one closes;
//! - each connection's read buffer is capped at [`MAX_BUF`] (request heads
//!   larger than that are refused; bodies stream through it).
//!
//! At shutdown an idle connection is closed at once and a request in flight
//! is answered (with `Connection: close`) before its connection closes.

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
/// Open connections at most (each costs a task and its buffers).
pub const MAX_CONNECTIONS: usize = 1024;
/// Per-connection read buffer cap (hyper's floor is 8 KiB; its default
/// ~400 KiB). A webhook's head is well under 2 KiB.
const MAX_BUF: usize = 16 * 1024;
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
        .header_read_timeout(idle_timeout)
        .max_buf_size(MAX_BUF);
    let graceful = GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
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
            drop(slot);
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
