//! `GET /oauth/callback`: where Linear sends the admin's browser after the
//! install consent, when the app's redirect URL points at this worker
//! (`server.publicUrl`). It finishes the install (`crate::install`), starts
//! serving the workspace at once, and shows a page saying what happened.

use super::HttpState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) async fn callback(
    State(state): State<HttpState>,
    Query(q): Query<Callback>,
) -> Response {
    let ctx = &state.ctx;
    let result = match (&q.error, &q.code, &q.state) {
        (Some(error), _, _) => Err(crate::install::callback_error(
            error,
            q.error_description.as_deref(),
        )),
        (None, Some(code), Some(st)) => match crate::install::OAuthApp::from_config(&ctx.config) {
            Ok(app) => match url::Url::parse(&ctx.config.linear.api_url) {
                Ok(api) => {
                    crate::install::complete(&ctx.store, &app, &api, code, st, ctx.now_ms()).await
                }
                Err(err) => Err(crate::install::InstallError::BadEndpoint {
                    url: ctx.config.linear.api_url.clone(),
                    problem: err.to_string(),
                }),
            },
            Err(err) => Err(err),
        },
        _ => Err(crate::install::callback_error(
            "invalid_request",
            Some("the callback carries neither a code and state nor an error"),
        )),
    };
    match &result {
        Ok(connected) => {
            tracing::info!(workspace = %connected.workspace_name, agent = %connected.app_user_name, "Linear workspace connected");
            if let Err(err) = ctx.linear.sync(&ctx.store).await {
                tracing::warn!(error = %err, "loading the new installation failed; the next sync retries");
            }
            // Tasks waiting for this workspace may go on now.
            if let Err(err) = crate::requests::wake_workspace(ctx, &connected.workspace_id).await {
                tracing::warn!(error = %err, "waking the workspace's tasks failed; they look again within 30 s");
            }
        }
        Err(err) => tracing::warn!("Linear install callback failed: {err}"),
    }
    let status = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Html(crate::install::page(&result))).into_response()
}
