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
//! - at most `server.maxConnections` connections are open. Senders keep
//!   idle connections in their pools: a burst of 1 000 concurrent
//!   deliveries leaves about as many idle connections behind, each held
//!   open for the idle timeout. Waiting for one of them to time out would
//!   leave a new connection unanswered for up to that long (the sender
//!   times out, and Linear retries the delivery much later), so at the
//!   cap the least recently used connection is asked to close instead: at
//!   once if it is idle, after its answer if a request is in flight (as at
//!   shutdown);
//! - each connection's read buffer is capped at [`MAX_BUF`] (request heads
//!   larger than that are refused; bodies stream through it).
//!
//! At shutdown an idle connection is closed at once and a request in flight
//! is answered (with `Connection: close`) before its connection closes.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The default longest wait for a request head, idle keep-alive time
/// included (`server.idleTimeoutSecs`). Linear sends each delivery as one
/// quick request; reconnecting after a pause costs little, idle connections
/// cost memory.
pub const HEADER_READ_TIMEOUT: Duration =
    Duration::from_secs(cyrus_core::config::defaults::IDLE_TIMEOUT_SECS);
/// Per-connection read buffer cap (hyper's floor is 8 KiB; its default
/// ~400 KiB). A webhook's head is well under 2 KiB.
const MAX_BUF: usize = 16 * 1024;
/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);
/// At the cap, how long to wait for the connection asked to close before
/// asking the next one (it may be answering a slow request).
const EVICTION_WAIT: Duration = Duration::from_millis(100);

/// What bounds the server's connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest wait for a request head (`server.idleTimeoutSecs`).
    pub idle_timeout: Duration,
    /// Open connections at most (`server.maxConnections`).
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown`, then lets in-flight
/// requests finish (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    // HTTP/1.1 only: Linear and Prometheus speak it, and it lets the header
    // timer run from the first byte (version sniffing would wait forever).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_BUF);
    let connections = Arc::new(Connections::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
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
        let slot = loop {
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                break Some(slot);
            }
            if connections.ask_one_to_close() {
                metrics::counter!("cyrus_http_connections_evicted_total").increment(1);
            }
            tokio::select! {
                slot = slots.clone().acquire_owned() => break slot.ok(),
                _ = tokio::time::sleep(EVICTION_WAIT) => {}
                _ = shutdown.cancelled() => break None,
            }
        };
        let Some(slot) = slot else { break };
        let _ = stream.set_nodelay(true);
        let (id, usage, close) = connections.open(&shutdown);
        let service = {
            let (started, ended) = (Arc::clone(&usage), usage);
            let clock = connections.clock;
            app.clone()
                .map_request(move |req| {
                    started.begin(clock);
                    req
                })
                .map_response(move |res| {
                    ended.end();
                    res
                })
        };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connections = Arc::clone(&connections);
        tracker.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = close.cancelled() => {
                    // Idle: closed now; answering: closed after the answer
                    // (which says `Connection: close`).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(error = %err, "HTTP: connection ended with an error");
            }
            connections.closed(id);
            drop(slot);
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("HTTP: some requests were still running {DRAIN:?} after shutdown began");
    }
}

/// The open connections, so that at the cap one can be asked to close.
struct Connections {
    /// Where [`Usage::last_request_ms`] counts from.
    clock: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            clock: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }
}

struct Open {
    usage: Arc<Usage>,
    /// Cancelled to ask the connection to close (a child of the shutdown
    /// token, so shutdown asks every connection).
    close: CancellationToken,
}

/// How a connection is being used, updated by its requests.
#[derive(Default)]
struct Usage {
    /// When its latest request began, in ms since [`Connections::clock`]
    /// (0: none yet).
    last_request_ms: AtomicU64,
    /// Requests begun and not yet answered.
    in_flight: AtomicUsize,
}

impl Usage {
    fn begin(&self, clock: Instant) {
        let ms = clock.elapsed().as_millis() as u64 + 1;
        self.last_request_ms.store(ms, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    fn open(&self, shutdown: &CancellationToken) -> (u64, Arc<Usage>, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let usage = Arc::new(Usage::default());
        let close = shutdown.child_token();
        let open = Open {
            usage: Arc::clone(&usage),
            close: close.clone(),
        };
        self.lock().insert(id, open);
        (id, usage, close)
    }

    fn closed(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Asks the connection that has waited longest for a request to close,
    /// preferring one with no request in flight; `false` if every open
    /// connection has been asked already.
    fn ask_one_to_close(&self) -> bool {
        let open = self.lock();
        let candidate = open
            .values()
            .filter(|c| !c.close.is_cancelled())
            .min_by_key(|c| {
                let busy = c.usage.in_flight.load(Ordering::Relaxed) > 0;
                (busy, c.usage.last_request_ms.load(Ordering::Relaxed))
            });
        match candidate {
            Some(c) => {
                c.close.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Connections;
    use std::sync::atomic::Ordering;
    use tokio_util::sync::CancellationToken;

    /// Idle connections go first, least recently used first; one answering
    /// a request only when every idle one has been asked.
    #[test]
    fn the_idle_connection_used_longest_ago_is_asked_to_close_first() {
        let connections = Connections::default();
        let shutdown = CancellationToken::new();
        let mut opened = Vec::new();
        for last_request_ms in [10, 30, 20] {
            let (_, usage, close) = connections.open(&shutdown);
            usage
                .last_request_ms
                .store(last_request_ms, Ordering::Relaxed);
            opened.push((usage, close));
        }
        // The oldest is answering a request.
        opened[0].0.in_flight.store(1, Ordering::Relaxed);
        let asked = |opened: &[(_, CancellationToken)]| -> Vec<bool> {
            opened.iter().map(|(_, c)| c.is_cancelled()).collect()
        };
        assert!(connections.ask_one_to_close());
        assert_eq!(asked(&opened), [false, false, true]);
        assert!(connections.ask_one_to_close());
        assert_eq!(asked(&opened), [false, true, true]);
        assert!(connections.ask_one_to_close());
        assert_eq!(asked(&opened), [true, true, true]);
        assert!(!connections.ask_one_to_close(), "every one was asked");
        assert!(!shutdown.is_cancelled(), "asking one is not a shutdown");
    }
}
