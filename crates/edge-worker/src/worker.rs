//! Starting and stopping a worker: the HTTP server and the four loops
//! (delivery intake, scheduler, run tracker, outbox sender), sharing one
//! [`Ctx`]. Shutdown (SIGTERM/SIGINT in `cyrus start`) stops claiming, lets
//! in-flight steps finish their writes, and releases this worker's leases.

use crate::alert_sink::AlertSink;
use crate::context::{Ctx, LinearHub, Parts, TrackerHandle};
use crate::http::{HttpState, router};
use anyhow::Context as _;
use cyrus_codegen_executor::{ClientConfig, CodegenClient, RateLimit, RateLimits};
use cyrus_core::config::Config;
use cyrus_linear::WebhookSecrets;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A running worker.
pub struct Worker {
    addr: SocketAddr,
    ctx: Ctx,
    tasks: JoinSet<()>,
    /// What webhook handlers left running (see `HttpState`'s `background`).
    background: tokio_util::task::TaskTracker,
}

impl Worker {
    /// Starts serving on `listener` with `store`. Returns once everything is
    /// accepting work.
    pub async fn start(
        config: Config,
        store: cyrus_store::Store,
        listener: TcpListener,
    ) -> anyhow::Result<Worker> {
        let config = Arc::new(config);
        let store = store.with_sqlite_sync(match config.store.sqlite_synchronous {
            cyrus_core::config::SqliteSynchronous::Full => cyrus_store::SqliteSync::Full,
            cyrus_core::config::SqliteSynchronous::Normal => cyrus_store::SqliteSync::Normal,
        });
        let addr = listener.local_addr()?;
        let codegen = codegen_client(&config, &store)?;
        let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
        let linear = LinearHub::from_config(&config, &owner)?;
        let installed = linear
            .sync(&store)
            .await
            .context("loading Linear installations from the store")?;
        if !installed.is_empty() && !store.has_secret_keys() {
            anyhow::bail!(
                "the store holds {} Linear installation(s) but no secret key was given to read their tokens: set CYRUS_SECRET_KEY (or keep the key file beside the SQLite database)",
                installed.len()
            );
        }
        let (tracker, tracker_rx) = TrackerHandle::channel();
        let images = image_fetcher(&config)?;
        let ctx = Ctx::new(Parts {
            config: config.clone(),
            store,
            codegen,
            linear,
            alerts: AlertSink::new(
                config
                    .alerts
                    .webhook_url
                    .as_ref()
                    .map(|u| u.expose_secret().to_string()),
            ),
            tracker,
            images,
            owner,
        });
        let (handoff, handed) = crate::intake::handoff(&ctx);
        let state = HttpState::new(
            ctx.clone(),
            Arc::new(webhook_secrets(&config)),
            crate::telemetry::prometheus(),
            handoff,
        );
        let background = state.background.clone();
        let mut tasks = JoinSet::new();
        let app = router(state);
        let shutdown = ctx.shutdown.clone();
        tasks.spawn(crate::http::serve::serve(
            listener,
            app,
            crate::http::serve::Limits {
                idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
                max_connections: config.server.max_connections,
            },
            shutdown,
        ));
        tasks.spawn(crate::intake::run_processor(ctx.clone(), handed));
        tasks.spawn(crate::scheduler::run(ctx.clone()));
        tasks.spawn(crate::outbox::run_sender(ctx.clone()));
        tasks.spawn(crate::alert_watch::run(
            ctx.clone(),
            crate::alert_watch::DEFAULT_INTERVAL,
        ));
        tasks.spawn(crate::reconcile::run(
            ctx.clone(),
            crate::reconcile::INTERVAL,
        ));
        tasks.spawn(crate::tracker::run(
            ctx.clone(),
            tracker_rx,
            crate::tracker::poll_config(&config),
        ));
        tracing::info!(%addr, owner = %ctx.owner(), store = ctx.store.backend_name(), "Cyrus worker started");
        Ok(Worker {
            addr,
            ctx,
            tasks,
            background,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn context(&self) -> &Ctx {
        &self.ctx
    }

    /// Stops gracefully: no new claims, in-flight steps finish, leases are
    /// released so another replica can continue at once.
    pub async fn shutdown(mut self) {
        self.ctx.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WITHIN;
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, drain).await.is_err() {
            tracing::warn!(
                "shutdown: some work did not finish within {SHUTDOWN_WITHIN:?}; aborting it"
            );
            self.tasks.abort_all();
        }
        // What the handlers started (a delivery of a sender who hung up,
        // still committing; a new session's acceptance) finishes before the
        // leases it may take are released. Once the server has drained no
        // handler starts more, except one of a request the drain gave up on
        // (still running 10 s after shutdown began): what that stores waits
        // for its lease to expire.
        self.background.close();
        // Its own few seconds at least, even when the loops took all of
        // theirs: an acceptance waits at most 2 s for a burst and 5 s for
        // Linear.
        let background_until = deadline.max(tokio::time::Instant::now() + BACKGROUND_AT_LEAST);
        if tokio::time::timeout_at(background_until, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.background.len(),
                "shutdown: webhook work still running after shutdown began; what it commits is claimed once its lease expires"
            );
        }
        for owner in self.ctx.lease_owners() {
            match self.ctx.store.release_lease(&owner).await {
                Ok(n) => tracing::info!(%owner, released = n, "shutdown: leases released"),
                Err(err) => {
                    tracing::warn!(%owner, error = %err, "shutdown: releasing leases failed")
                }
            }
        }
    }
}

/// The longest a graceful shutdown waits for work in flight.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(20);
/// The least a graceful shutdown gives the webhook work still running
/// once the loops have stopped (so at most 27 s in all, inside the 30 s a
/// service manager waits by default).
const BACKGROUND_AT_LEAST: Duration = Duration::from_secs(7);

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cyrus".into())
}

/// The Codegen client, admitted by token buckets in the store: Codegen's
/// limits are per token, which every replica shares, so the budget must be
/// shared too (on SQLite this also covers several processes on one host).
fn codegen_client(config: &Config, store: &cyrus_store::Store) -> anyhow::Result<CodegenClient> {
    let c = &config.codegen;
    let mut client = ClientConfig::new(c.base_url.clone(), c.org_id, c.api_token.clone());
    let limit = |max: u32, per: Duration, burst: u32| RateLimit {
        max,
        per,
        burst: burst.min(max).max(1),
    };
    client.rate_limits = RateLimits {
        create: limit(c.rate_limits.create_per_minute, c.rate_limits.window(60), 5),
        read: limit(c.rate_limits.reads_per_30s, c.rate_limits.window(30), 10),
        logs: limit(c.rate_limits.logs_per_minute, c.rate_limits.window(60), 10),
    };
    let permits =
        crate::shared_rate::StorePermits::new(store.clone(), c.org_id, client.rate_limits);
    CodegenClient::with_rate_permit(client, std::sync::Arc::new(permits))
        .context("building the Codegen client")
}

fn webhook_secrets(config: &Config) -> WebhookSecrets {
    let mut secrets = match &config.linear.webhook_secret {
        Some(secret) => WebhookSecrets::with_default(secret.clone()),
        None => WebhookSecrets::new(),
    };
    for ws in &config.linear.workspaces {
        secrets.insert(ws.organization_id.clone(), ws.webhook_secret.clone());
    }
    secrets
}

/// The one image fetcher, under the configuration's image rules.
fn image_fetcher(config: &Config) -> anyhow::Result<cyrus_linear::uploads::ImageFetcher> {
    let origin = config.linear.uploads_url.parse().with_context(|| {
        format!(
            "linear.uploadsUrl {:?} is not a URL",
            config.linear.uploads_url
        )
    })?;
    cyrus_linear::uploads::ImageFetcher::new(cyrus_linear::uploads::ImageRules {
        upload_origin: origin,
        allowed_hosts: config.images.allowed_hosts.clone(),
        max_bytes: config.images.max_bytes,
        timeout: std::time::Duration::from_secs(config.images.timeout_secs),
    })
    .context("building the image fetcher")
}
