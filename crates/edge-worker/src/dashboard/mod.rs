//! The operator dashboard at `/` (server-rendered, no external assets, works
//! offline), its auto-refreshing fragment and the same data as JSON at
//! `/api/status`, and the audit log at `/audit` (JSON: `/api/audit`). All sit
//! behind the token [`gate`].

mod audit;
mod chart;
mod experiments;
pub mod gate;
mod page;
pub mod snapshot;

use crate::context::Ctx;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, middleware};
use maud::Markup;
pub use snapshot::Snapshot;

/// The dashboard's routes, for any router state the worker's [`Ctx`] can be
/// taken from.
pub fn routes<S>(ctx: Ctx) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Ctx: FromRef<S>,
{
    Router::new()
        .route("/", get(index))
        .route("/dashboard/live", get(live))
        .route("/api/status", get(status))
        .route("/audit", get(audit::page))
        .route("/api/audit", get(audit::api))
        .route("/experiments", get(experiments::page))
        .route("/api/experiments", get(experiments::api))
        .route_layer(middleware::from_fn_with_state(ctx, gate::require))
}

async fn index(State(ctx): State<Ctx>) -> impl IntoResponse {
    let snapshot = Snapshot::gather(&ctx).await;
    no_store(page::page(&snapshot))
}

async fn live(State(ctx): State<Ctx>) -> impl IntoResponse {
    let snapshot = Snapshot::gather(&ctx).await;
    no_store(page::live(&snapshot))
}

async fn status(State(ctx): State<Ctx>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Snapshot::gather(&ctx).await),
    )
}

/// Live figures must never come from a cache.
fn no_store(markup: Markup) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], markup)
}
