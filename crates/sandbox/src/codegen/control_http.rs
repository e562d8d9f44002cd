//! `/_control/...`: the control API over HTTP, for `cyrus sandbox` users and
//! non-Rust tests. Unauthenticated (the simulator listens on loopback),
//! never counted, rate limited or faulted. Documented in the crate README.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::control::{CodegenControl, ControlError};
use super::faults::Faults;
use super::options::{RateLimits, SimMcpProvider};
use super::script::RunScript;

type Ctl = State<CodegenControl>;

pub fn router(control: CodegenControl) -> Router {
    Router::new()
        .route(
            "/_control/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/_control/allowance", post(allowance))
        .route("/_control/rate-limits", post(rate_limits))
        .route("/_control/integrations", post(integration))
        .route(
            "/_control/integrations/{integration_type}",
            axum::routing::delete(remove_integration),
        )
        .route(
            "/_control/mcp-providers",
            get(get_mcp_providers).put(put_mcp_providers),
        )
        .route("/_control/script/next", post(script_next))
        .route("/_control/script/run/{id}", post(script_run))
        .route("/_control/clock", get(clock))
        .route("/_control/clock/advance", post(advance))
        .route("/_control/clock/scale", post(scale))
        .route("/_control/runs", get(runs))
        .route("/_control/stats", get(stats))
        .with_state(control)
}

async fn get_faults(State(c): Ctl) -> Json<Faults> {
    Json(c.faults())
}

async fn put_faults(State(c): Ctl, Json(f): Json<Faults>) -> Result<Json<Faults>, ControlError> {
    c.set_faults(f)?;
    Ok(Json(c.faults()))
}

async fn clear_faults(State(c): Ctl) -> Json<Faults> {
    c.clear_faults();
    Json(c.faults())
}

#[derive(Deserialize)]
struct Allowance {
    remaining: Option<u32>,
}

async fn allowance(State(c): Ctl, Json(a): Json<Allowance>) -> Json<Value> {
    c.set_run_allowance(a.remaining);
    Json(json!({"remaining": a.remaining}))
}

async fn rate_limits(State(c): Ctl, Json(l): Json<RateLimits>) -> Json<RateLimits> {
    c.set_rate_limits(l.clone());
    Json(l)
}

#[derive(Deserialize)]
struct Integration {
    integration_type: String,
    active: bool,
}

async fn integration(State(c): Ctl, Json(i): Json<Integration>) -> Json<Value> {
    c.set_integration(&i.integration_type, i.active);
    Json(json!({"integration_type": i.integration_type, "active": i.active}))
}

async fn remove_integration(State(c): Ctl, Path(kind): Path<String>) -> Json<Value> {
    c.remove_integration(&kind);
    Json(json!({"removed": kind}))
}

async fn get_mcp_providers(State(c): Ctl) -> Json<Vec<SimMcpProvider>> {
    Json(c.mcp_providers())
}

async fn put_mcp_providers(
    State(c): Ctl,
    Json(list): Json<Vec<SimMcpProvider>>,
) -> Json<Vec<SimMcpProvider>> {
    c.set_mcp_providers(list);
    Json(c.mcp_providers())
}

async fn script_next(State(c): Ctl, Json(s): Json<RunScript>) -> Json<RunScript> {
    c.script_next_run(s.clone());
    Json(s)
}

async fn script_run(
    State(c): Ctl,
    Path(id): Path<i64>,
    Json(s): Json<RunScript>,
) -> Json<RunScript> {
    c.script_run(id, s.clone());
    Json(s)
}

fn clock_json(c: &CodegenControl) -> Json<Value> {
    Json(json!({"now_ms": c.now().as_millis() as u64, "time_scale": c.shared.clock.scale()}))
}

async fn clock(State(c): Ctl) -> Json<Value> {
    clock_json(&c)
}

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    ms: u64,
}

async fn advance(State(c): Ctl, Json(a): Json<Advance>) -> Result<Json<Value>, ControlError> {
    if !a.seconds.is_finite() || a.seconds < 0.0 {
        return Err(ControlError::BadRequest(format!(
            "seconds must be >= 0, got {}",
            a.seconds
        )));
    }
    c.advance(Duration::from_secs_f64(a.seconds) + Duration::from_millis(a.ms));
    Ok(clock_json(&c))
}

#[derive(Deserialize)]
struct Scale {
    time_scale: f64,
}

async fn scale(State(c): Ctl, Json(s): Json<Scale>) -> Result<Json<Value>, ControlError> {
    c.set_time_scale(s.time_scale)?;
    Ok(clock_json(&c))
}

async fn runs(State(c): Ctl) -> Json<Value> {
    Json(json!(c.runs()))
}

async fn stats(State(c): Ctl) -> Json<Value> {
    Json(json!(c.stats()))
}
