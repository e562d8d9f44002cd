//! Liveness, readiness and Prometheus metrics.

use super::HttpState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

/// The process is up and serving.
pub async fn healthz(State(state): State<HttpState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "owner": state.ctx.owner(),
        "version": env!("CARGO_PKG_VERSION"),
        "started_at_ms": state.ctx.started_at_ms(),
    }))
}

/// Ready when the store answers and its migrations are applied.
pub async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let store = &state.ctx.store;
    let reachable = store.ping().await;
    let migrated = match &reachable {
        Ok(()) => store.migrations_applied().await.unwrap_or(false),
        Err(_) => false,
    };
    let ready = reachable.is_ok() && migrated;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "store": {
                "backend": store.backend_name(),
                "reachable": reachable.is_ok(),
                "error": reachable.err().map(|e| e.to_string()),
                "migrations_applied": migrated,
            }
        })),
    )
}

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    crate::gauges::refresh(&state.ctx).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}
