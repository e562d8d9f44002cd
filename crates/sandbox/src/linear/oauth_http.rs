//! Linear's OAuth endpoints over HTTP: `GET /oauth/authorize`,
//! `POST /oauth/token` and `POST /oauth/revoke` (`linear-agent-api.md` §1).
//! On Linear the first lives on `linear.app` and the others on
//! `api.linear.app`; the simulator serves all three from its one address.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::oauth::{AuthorizeOutcome, AuthorizeRequest, OAuthError, Redirect, TokenRequest};
use super::server::Inner;

pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .with_state(inner)
}

fn redirect(inner: &Inner, r: Redirect) -> Response {
    inner.mark_installed(&r);
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&r.location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(req): Query<AuthorizeRequest>,
) -> Response {
    let org = inner.install_target().id();
    let now = inner.clock.now();
    let outcome = inner
        .oauth
        .lock()
        .expect("oauth lock")
        .authorize(req, &org, now);
    match outcome {
        AuthorizeOutcome::Refused(why) => (StatusCode::BAD_REQUEST, why).into_response(),
        AuthorizeOutcome::Redirect(r) => redirect(&inner, r),
        // The consent screen: the answer waits for the control API. The
        // simulator drops the waiter on shutdown so this cannot hang it.
        AuthorizeOutcome::Held(rx) => match rx.await {
            Ok(r) => {
                // The control API already marked the install.
                let mut resp = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(&r.location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp
            }
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The simulator stopped before the consent was decided.",
            )
                .into_response(),
        },
    }
}

fn oauth_error(e: OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (
        status,
        Json(serde_json::json!({"error": e.error, "error_description": e.description})),
    )
        .into_response();
    no_store(&mut resp);
    resp
}

/// RFC 6749 §5.1: token answers must not be cached.
fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The form body as a map; a repeated field is an error (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError {
            status: 400,
            error: "invalid_request",
            description: format!(
                "The OAuth endpoints take a form-encoded body (Content-Type: application/x-www-form-urlencoded), not {content_type:?}."
            ),
        });
    }
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError {
                status: 400,
                error: "invalid_request",
                description: format!("The parameter {k} was sent more than once."),
            });
        }
    }
    Ok(fields)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`
/// (RFC 6749 §2.3.1).
fn basic_client(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some(encoded) = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Ok(None);
    };
    let bad = || OAuthError {
        status: 401,
        error: "invalid_client",
        description: "The Basic Authorization header is not base64(client_id:client_secret)."
            .into(),
    };
    let decoded = STANDARD.decode(encoded).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The client's credentials from Basic or the form, never both.
fn client_auth(
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> Result<Option<(String, String)>, OAuthError> {
    let basic = basic_client(headers)?;
    let in_form = match (fields.get("client_id"), fields.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    match (basic, in_form) {
        (Some(_), Some(_)) => Err(OAuthError {
            status: 400,
            error: "invalid_request",
            description:
                "Send the client credentials either by HTTP Basic or in the form, not both.".into(),
        }),
        (b, f) => Ok(b.or(f)),
    }
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = form(&headers, &body).and_then(|fields| {
        let client = client_auth(&headers, &fields)?;
        let get = |k: &str| fields.get(k).cloned();
        Ok(TokenRequest {
            grant_type: get("grant_type"),
            code: get("code"),
            redirect_uri: get("redirect_uri"),
            code_verifier: get("code_verifier"),
            refresh_token: get("refresh_token"),
            scope: get("scope"),
            client,
        })
    });
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            // Counted like any other call, so tests see malformed requests.
            let mut oauth = inner.oauth.lock().expect("oauth lock");
            oauth.stats.other.calls += 1;
            oauth.stats.other.failed += 1;
            return oauth_error(e);
        }
    };
    let org = inner.install_target().id();
    let now = inner.clock.now();
    let result = inner
        .oauth
        .lock()
        .expect("oauth lock")
        .token(req, &org, now);
    match result {
        Ok(issued) => {
            inner.mark_installed_in(&issued.organization_id, &issued.client_id);
            let mut resp = Json(issued.response).into_response();
            no_store(&mut resp);
            resp
        }
        Err(e) => oauth_error(e),
    }
}

/// Revokes the form's `token`, else the `Authorization: Bearer` token.
async fn revoke(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = if body.is_empty() {
        HashMap::new()
    } else {
        match form(&headers, &body) {
            Ok(f) => f,
            Err(e) => return oauth_error(e),
        }
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = fields.get("token").cloned().or(bearer) else {
        return oauth_error(OAuthError {
            status: 400,
            error: "invalid_request",
            description:
                "Send the token to revoke as the form field token or as Authorization: Bearer."
                    .into(),
        });
    };
    let client = match client_auth(&headers, &fields) {
        Ok(c) => c,
        Err(e) => return oauth_error(e),
    };
    let result = inner
        .oauth
        .lock()
        .expect("oauth lock")
        .revoke(&token, client);
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(e),
    }
}
