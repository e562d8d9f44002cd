//! `/experiments`: each configured experiment with the figures of `cyrus
//! experiments report`, and per arm a small chart — the completion rate
//! with its 95 % interval, and the cost per completed issue. `/api/experiments`
//! is the same as JSON.

use super::page::STYLE;
use crate::context::Ctx;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyrus_core::MicroDollars;
use cyrus_core::experiments::stats::{ArmReport, ExperimentReport, Rate};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    name: String,
    running: bool,
    #[serde(flatten)]
    report: ExperimentReport,
}

async fn gather(ctx: &Ctx) -> Result<Vec<Shown>, Response> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for e in &ctx.config.experiments {
        let report = crate::experiment_report::report(&ctx.config, &ctx.store, e, ctx.now_ms())
            .await
            .map_err(|err| (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response())?;
        out.push(Shown {
            name: e.name.clone(),
            running: e.is_running(now),
            report,
        });
    }
    Ok(out)
}

pub async fn page(State(ctx): State<Ctx>) -> Response {
    match gather(&ctx).await {
        Ok(shown) => ([(header::CACHE_CONTROL, "no-store")], render(&shown)).into_response(),
        Err(resp) => resp,
    }
}

pub async fn api(State(ctx): State<Ctx>) -> Response {
    match gather(&ctx).await {
        Ok(shown) => ([(header::CACHE_CONTROL, "no-store")], Json(shown)).into_response(),
        Err(resp) => resp,
    }
}

fn render(shown: &[Shown]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Cyrus — experiments" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Model experiments" }
                    a href="/" { "← dashboard" }
                    span class="muted" { "all costs are estimates" }
                }
                main {
                    @if shown.is_empty() {
                        section class="wide" { p class="muted" { "No experiments configured." } }
                    }
                    @for e in shown {
                        section class="wide" {
                            h2 { (e.name) " " span class="muted" { @if e.running { "running" } @else { "not running" } } }
                            table {
                                thead { tr {
                                    th { "Arm" } th { "Model" } th { "Tasks" } th { "Success" } th { "PR" }
                                    th { "Completion" } th { "Follow-ups / task" } th { "Mean cost" }
                                    th { "Median cost" } th { "Cost / completed" } th { "Median duration" }
                                } }
                                tbody {
                                    @for a in &e.report.arms {
                                        tr {
                                            td { (a.arm) } td { (a.model) } td { (a.tasks) }
                                            td { (rate(&a.success)) } td { (rate(&a.pull_request)) }
                                            td { (rate(&a.completion)) }
                                            td { (a.follow_ups_per_task.map(|f| format!("{f:.2}")).unwrap_or_else(|| "—".into())) }
                                            td { (money(a.mean_cost_micros)) } td { (money(a.median_cost_micros)) }
                                            td { (money(a.cost_per_completed_micros)) }
                                            td { (a.median_duration_ms.map(|d| format!("{:.0} min", d as f64 / 60_000.0)).unwrap_or_else(|| "—".into())) }
                                        }
                                    }
                                }
                            }
                            (chart(&e.report.arms))
                            @for c in &e.report.comparisons {
                                p { strong { (c.arm) " vs " (c.against) ": " } (c.verdict) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn rate(r: &Rate) -> String {
    match (r.value, r.low, r.high) {
        (Some(v), Some(l), Some(h)) => format!(
            "{:.0} % [{:.0}–{:.0}] ({}/{})",
            v * 100.0,
            l * 100.0,
            h * 100.0,
            r.successes,
            r.trials
        ),
        _ => "—".into(),
    }
}

fn money(m: Option<i64>) -> String {
    m.map(|m| MicroDollars(m).to_string())
        .unwrap_or_else(|| "—".into())
}

const ROW: f64 = 28.0;
const LABEL: f64 = 60.0;
const HALF: f64 = 250.0;

/// Per arm: completion rate (bar, with the interval as a whisker) on the
/// left half, cost per completed issue on the right, scaled to the most
/// expensive arm.
fn chart(arms: &[ArmReport]) -> Markup {
    let height = ROW * arms.len().max(1) as f64 + 20.0;
    let width = LABEL + 2.0 * HALF + 20.0;
    let top_cost = arms
        .iter()
        .filter_map(|a| a.cost_per_completed_micros)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    html! {
        svg class="chart" viewBox=(format!("0 0 {width} {height}")) role="img"
            aria-label="Completion rate with 95 % interval, and cost per completed issue, per arm" {
            text x=(LABEL) y="12" class="muted" { "completion rate (95 % interval)" }
            text x=(LABEL + HALF + 20.0) y="12" class="muted" { "cost per completed issue" }
            @for (i, a) in arms.iter().enumerate() {
                @let y = 20.0 + i as f64 * ROW;
                text x="0" y=(fmt(y + 14.0)) { (a.arm) }
                @if let Some(v) = a.completion.value {
                    rect class="bar" x=(LABEL) y=(fmt(y + 4.0)) width=(fmt(v * (HALF - 10.0))) height="14" {
                        title { (rate(&a.completion)) }
                    }
                    @if let (Some(l), Some(h)) = (a.completion.low, a.completion.high) {
                        line class="whisker" x1=(fmt(LABEL + l * (HALF - 10.0))) x2=(fmt(LABEL + h * (HALF - 10.0)))
                            y1=(fmt(y + 11.0)) y2=(fmt(y + 11.0)) stroke="currentColor" stroke-width="2" {}
                    }
                }
                @if let Some(c) = a.cost_per_completed_micros {
                    rect class="bar" x=(fmt(LABEL + HALF + 20.0)) y=(fmt(y + 4.0))
                        width=(fmt(c as f64 / top_cost * (HALF - 60.0))) height="14" {
                        title { (MicroDollars(c)) " per completed issue (estimate)" }
                    }
                    text x=(fmt(LABEL + HALF + 26.0 + c as f64 / top_cost * (HALF - 60.0))) y=(fmt(y + 16.0)) { (MicroDollars(c)) }
                }
            }
        }
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}
