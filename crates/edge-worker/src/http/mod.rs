//! The worker's HTTP surface: Linear's webhook, the OAuth install callback,
//! health, readiness, metrics and the dashboard.

mod health;
mod oauth;
pub mod serve;
mod webhook;

use crate::context::Ctx;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use cyrus_linear::WebhookSecrets;
use std::sync::Arc;

/// Shared by the handlers; one allocation, so the per-request clone axum
/// makes of its state is one reference count.
#[derive(Clone)]
pub struct HttpState(Arc<Shared>);

pub struct Shared {
    pub ctx: Ctx,
    pub secrets: Arc<WebhookSecrets>,
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// Bounds the new sessions accepted straight from the webhook handler
    /// (see `webhook::INLINE_ACCEPTS`).
    pub(crate) inline: Arc<tokio::sync::Semaphore>,
    /// Stored deliveries go to this process's delivery processor in memory.
    pub(crate) handoff: crate::intake::Handoff,
    /// The work a webhook handler starts that outlives its answer (or its
    /// sender, who may hang up): storing a delivery, a new session's inline
    /// acceptance. Shutdown waits for it before releasing this process's
    /// leases, so nothing it commits is left leased to a worker that is gone.
    pub(crate) background: tokio_util::task::TaskTracker,
}

impl HttpState {
    pub(crate) fn new(
        ctx: Ctx,
        secrets: Arc<WebhookSecrets>,
        prometheus: metrics_exporter_prometheus::PrometheusHandle,
        handoff: crate::intake::Handoff,
    ) -> HttpState {
        HttpState(Arc::new(Shared {
            ctx,
            secrets,
            prometheus,
            inline: Arc::new(tokio::sync::Semaphore::new(webhook::INLINE_ACCEPTS)),
            handoff,
            background: tokio_util::task::TaskTracker::new(),
        }))
    }
}

impl std::ops::Deref for HttpState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<HttpState> for Ctx {
    fn from_ref(state: &HttpState) -> Ctx {
        state.ctx.clone()
    }
}

/// Bodies up to this size are read so the verifier can answer 413 with a
/// JSON reason; larger ones are cut off by axum.
const READ_LIMIT: usize = 2 * 1024 * 1024;

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/webhooks/linear", post(webhook::linear))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/oauth/callback", get(oauth::callback))
        .merge(crate::dashboard::routes(state.ctx.clone()))
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(state)
}
