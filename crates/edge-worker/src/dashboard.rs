//! The operator dashboard at `/` (server-rendered, no external assets).

use crate::http::HttpState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

pub fn routes() -> Router<HttpState> {
    Router::new().route("/", get(index))
}

async fn index(State(state): State<HttpState>) -> Markup {
    let ctx = &state.ctx;
    let tasks = ctx
        .store
        .list_tasks(&cyrus_store::TaskFilter {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let spent = ctx
        .store
        .spend_for_day(ctx.today())
        .await
        .unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Cyrus" }
            }
            body {
                h1 { "Cyrus" }
                p { "Estimated spend today: " (spent) " of " (ctx.config.codegen.max_cost_per_day) " (estimate)" }
                table {
                    thead { tr { th { "Issue" } th { "State" } th { "Type" } th { "Model" } th { "Est. cost" } } }
                    tbody {
                        @for t in &tasks {
                            tr {
                                td { (t.issue_identifier) }
                                td { (t.state) }
                                td { (t.task_type.map(|t| t.as_str()).unwrap_or("-")) }
                                td { (t.model.as_deref().unwrap_or("default")) }
                                td { (t.estimated_cost.unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}
