//! `/audit`: the audit log as a page (newest first, filtered by issue or
//! kind through the query string), and `/api/audit` as JSON.

use super::page::{STYLE, when};
use crate::context::Ctx;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyrus_store::{AuditEntry, AuditFilter, AuditKind};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

/// Rows shown at most.
const LIMIT: i64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    issue: Option<String>,
    kind: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    at_ms: i64,
    kind: &'static str,
    issue: Option<String>,
    actor: Option<String>,
    reason: String,
    detail: Option<serde_json::Value>,
}

async fn rows(ctx: &Ctx, q: &AuditQuery) -> Result<Vec<AuditEntry>, Response> {
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(AuditKind::parse(k).ok_or_else(|| {
            (StatusCode::BAD_REQUEST, format!("unknown kind {k:?}")).into_response()
        })?),
    };
    let filter = AuditFilter {
        issue: q.issue.clone().filter(|i| !i.is_empty()),
        kind,
        limit: Some(LIMIT),
        ..AuditFilter::default()
    };
    let mut rows = ctx
        .store
        .list_audit(&filter)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response())?;
    rows.reverse();
    Ok(rows)
}

pub async fn page(State(ctx): State<Ctx>, Query(q): Query<AuditQuery>) -> Response {
    match rows(&ctx, &q).await {
        Ok(rows) => ([(header::CACHE_CONTROL, "no-store")], render(&rows, &q)).into_response(),
        Err(resp) => resp,
    }
}

pub async fn api(State(ctx): State<Ctx>, Query(q): Query<AuditQuery>) -> Response {
    match rows(&ctx, &q).await {
        Ok(rows) => {
            let rows: Vec<Row> = rows
                .into_iter()
                .map(|e| Row {
                    at_ms: e.at,
                    kind: e.kind.as_str(),
                    issue: e.issue_identifier.or(e.issue_id),
                    actor: e.actor,
                    reason: e.reason,
                    detail: e.detail,
                })
                .collect();
            ([(header::CACHE_CONTROL, "no-store")], Json(rows)).into_response()
        }
        Err(resp) => resp,
    }
}

fn render(rows: &[AuditEntry], q: &AuditQuery) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Cyrus — audit log" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Audit log" }
                    a href="/" { "← dashboard" }
                }
                main {
                    section class="wide" {
                        form method="get" {
                            "Issue " input name="issue" value=(q.issue.clone().unwrap_or_default());
                            " Kind "
                            select name="kind" {
                                option value="" { "any" }
                                @for k in AuditKind::ALL {
                                    option value=(k.as_str()) selected[q.kind.as_deref() == Some(k.as_str())] { (k.as_str()) }
                                }
                            }
                            " " button type="submit" { "Filter" }
                        }
                        @if rows.is_empty() {
                            p class="muted" { "No decisions recorded." }
                        } @else {
                            table {
                                thead { tr { th { "When" } th { "Decision" } th { "Issue" } th { "Who" } th { "Why" } } }
                                tbody {
                                    @for r in rows {
                                        tr {
                                            td class="muted" { (when(r.at)) }
                                            td { (r.kind.as_str()) }
                                            td { (r.issue_identifier.as_deref().or(r.issue_id.as_deref()).unwrap_or("—")) }
                                            td { (r.actor.as_deref().unwrap_or("—")) }
                                            td { (r.reason) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
