//! The operator dashboard at `/` (server-rendered, no external assets, works
//! offline), its auto-refreshing fragment and the same data as JSON at
//! `/api/status`. All three sit behind the token [`gate`].

mod chart;
pub mod gate;
mod page;
pub mod snapshot;

use crate::http::HttpState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, middleware};
use maud::Markup;
pub use snapshot::Snapshot;

pub fn routes(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/live", get(live))
        .route("/api/status", get(status))
        .route_layer(middleware::from_fn_with_state(state, gate::require))
}

async fn index(State(state): State<HttpState>) -> impl IntoResponse {
    let snapshot = Snapshot::gather(&state.ctx).await;
    no_store(page::page(&snapshot))
}

async fn live(State(state): State<HttpState>) -> impl IntoResponse {
    let snapshot = Snapshot::gather(&state.ctx).await;
    no_store(page::live(&snapshot))
}

async fn status(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Snapshot::gather(&state.ctx).await),
    )
}

/// Live figures must never come from a cache.
fn no_store(markup: Markup) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], markup)
}
