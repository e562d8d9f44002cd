//! `POST /graphql`: authentication, rate limits, injected faults, request
//! counting, then execution under the workspace lock.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::clock::LinearClock;
use super::exec::{Request, complexity, operation_label};
use super::faults::{Fault, FaultKind, RequestStats, take_fault};
use super::oauth::OAuthServer;
use super::operations::{execute, unknown_root_fields};
use super::options::RateLimits;
use super::organizations::Org;
use super::status::SessionTiming;
use super::webhooks::WebhookSender;

/// Everything the endpoints share.
pub struct Inner {
    /// `http://127.0.0.1:PORT`: where upload URLs point.
    pub base_url: String,
    /// Never empty: the first is the default organization.
    pub orgs: RwLock<Vec<Arc<Org>>>,
    pub oauth: Mutex<OAuthServer>,
    /// Token and code lifetimes run on this clock.
    pub clock: LinearClock,
    /// Timing for organizations added later.
    pub timing: SessionTiming,
    pub webhooks: WebhookSender,
    pub faults: Mutex<Vec<Fault>>,
    pub stats: Mutex<RequestStats>,
    pub rate: Mutex<RateWindow>,
}

/// A fixed window of the request and complexity budget.
pub struct RateWindow {
    pub limits: RateLimits,
    started: Instant,
    requests: u32,
    complexity: u64,
}

impl RateWindow {
    pub fn new(limits: RateLimits) -> RateWindow {
        RateWindow {
            limits,
            started: Instant::now(),
            requests: 0,
            complexity: 0,
        }
    }

    fn roll(&mut self) {
        if self.started.elapsed() >= self.limits.window {
            self.started = Instant::now();
            self.requests = 0;
            self.complexity = 0;
        }
    }

    /// The window's end as a UTC epoch in ms (Linear's `…-Reset`).
    fn reset_ms(&self) -> i64 {
        let left = self.limits.window.saturating_sub(self.started.elapsed());
        chrono::Utc::now().timestamp_millis() + left.as_millis() as i64
    }

    fn headers(&self, cost: u64) -> Vec<(&'static str, String)> {
        let reset = self.reset_ms().to_string();
        vec![
            (
                "x-ratelimit-requests-limit",
                self.limits.requests_per_window.to_string(),
            ),
            (
                "x-ratelimit-requests-remaining",
                self.limits
                    .requests_per_window
                    .saturating_sub(self.requests)
                    .to_string(),
            ),
            ("x-ratelimit-requests-reset", reset.clone()),
            ("x-complexity", cost.to_string()),
            (
                "x-ratelimit-complexity-limit",
                self.limits.complexity_per_window.to_string(),
            ),
            (
                "x-ratelimit-complexity-remaining",
                self.limits
                    .complexity_per_window
                    .saturating_sub(self.complexity)
                    .to_string(),
            ),
            ("x-ratelimit-complexity-reset", reset),
        ]
    }
}

fn json_response(
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    resp
}

fn auth_error() -> Value {
    json!({"errors": [{
        "message": "Authentication required, not authenticated",
        "extensions": {
            "type": "authentication error", "code": "AUTHENTICATION_ERROR", "statusCode": 401,
            "userError": true,
            "userPresentableMessage": "You need to authenticate to access this operation.",
            "meta": {}, "http": {"status": 401}
        }
    }]})
}

fn rate_limited(limits: &RateLimits) -> Value {
    let hours = limits.window.as_secs_f64() / 3600.0;
    let per = if (hours - 1.0).abs() < f64::EPSILON {
        "1 hour".to_string()
    } else {
        format!("{} ms", limits.window.as_millis())
    };
    let msg = format!(
        "Rate limit exceeded. Only {} requests are allowed per {per}.",
        limits.requests_per_window
    );
    json!({"errors": [{
        "message": format!("{msg} For more information see our developer docs at: https://linear.app/developers/rate-limiting"),
        "extensions": {
            "type": "ratelimited", "code": "RATELIMITED", "statusCode": 429, "userError": true,
            "userPresentableMessage": msg,
            "meta": {"rateLimitResult": {
                "allowed": false, "requested": 1, "remaining": 0,
                "duration": limits.window.as_millis() as u64, "limit": limits.requests_per_window
            }},
            "http": {"headers": {}, "status": 400}
        }
    }]})
}

fn graphql_error(code: &str, message: &str) -> Value {
    json!({"errors": [{
        "message": message,
        "extensions": {"type": "graphql error", "code": code, "userError": true}
    }]})
}

fn server_error(status: u16) -> Value {
    json!({"errors": [{
        "message": "Internal server error",
        "extensions": {"type": "internal error", "code": "INTERNAL_SERVER_ERROR", "statusCode": status, "userError": false}
    }]})
}

impl Inner {
    pub fn org(&self, id: &str) -> Option<Arc<Org>> {
        self.orgs
            .read()
            .expect("orgs lock")
            .iter()
            .find(|o| o.id() == id)
            .cloned()
    }

    pub fn first_org(&self) -> Arc<Org> {
        self.orgs.read().expect("orgs lock")[0].clone()
    }

    /// The organization the next install goes to.
    pub fn install_target(&self) -> Arc<Org> {
        let target = self
            .oauth
            .lock()
            .expect("oauth lock")
            .install_target
            .clone();
        target
            .and_then(|id| self.org(&id))
            .unwrap_or_else(|| self.first_org())
    }

    /// The organization the request's credential reaches: a static API key
    /// (`Authorization: <key>` or `Bearer <key>`), or a live OAuth access
    /// token (`Bearer <token>` only, as Linear documents).
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Arc<Org>> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())?
            .trim();
        let bearer = value.strip_prefix("Bearer ").map(str::trim);
        let key = bearer.unwrap_or(value);
        let by_key = self
            .orgs
            .read()
            .expect("orgs lock")
            .iter()
            .find(|o| o.api_key.as_deref() == Some(key))
            .cloned();
        if by_key.is_some() {
            return by_key;
        }
        let token = bearer?;
        let now = self.clock.now();
        let org = self
            .oauth
            .lock()
            .expect("oauth lock")
            .authenticate(token, now)?;
        self.org(&org)
    }
}

pub async fn graphql(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Option<(String, Map<String, Value>, Option<String>)> =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            let query = v.get("query")?.as_str()?.to_string();
            let vars = v
                .get("variables")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let name = v
                .get("operationName")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((query, vars, name))
        });
    let request = parsed
        .as_ref()
        .map(|(q, vars, name)| (Request::parse(q, vars.clone()), name.clone()));
    let label = match &request {
        Some((Ok(req), name)) => req
            .operation(name.as_deref())
            .map(operation_label)
            .unwrap_or_else(|_| "invalid".into()),
        _ => "invalid".into(),
    };
    {
        let mut stats = inner.stats.lock().expect("stats lock");
        stats.total += 1;
        *stats.by_operation.entry(label.clone()).or_default() += 1;
    }

    let fault = take_fault(&mut inner.faults.lock().expect("faults lock"), &label);
    let rate_headers = |cost: u64| inner.rate.lock().expect("rate lock").headers(cost);
    match fault {
        Some(FaultKind::Latency { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await
        }
        Some(FaultKind::ServerError { status }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(code, server_error(status), rate_headers(0));
        }
        Some(FaultKind::AuthError) => {
            return json_response(StatusCode::UNAUTHORIZED, auth_error(), rate_headers(0));
        }
        Some(FaultKind::RateLimited) => {
            let (body, h) = {
                let rate = inner.rate.lock().expect("rate lock");
                (rate_limited(&rate.limits), rate.headers(0))
            };
            return json_response(StatusCode::BAD_REQUEST, body, h);
        }
        None => {}
    }

    let Some(org) = inner.authenticate(&headers) else {
        return json_response(StatusCode::UNAUTHORIZED, auth_error(), vec![]);
    };

    let (req, op_name) = match request {
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                graphql_error("BAD_REQUEST", "Body must be JSON with a \"query\" string"),
                rate_headers(0),
            );
        }
        Some((Err(e), _)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                graphql_error("GRAPHQL_PARSE_FAILED", &e.to_string()),
                rate_headers(0),
            );
        }
        Some((Ok(req), name)) => (req, name),
    };
    let op = match req.operation(op_name.as_deref()) {
        Ok(op) => op,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                graphql_error("GRAPHQL_VALIDATION_FAILED", &e.to_string()),
                rate_headers(0),
            );
        }
    };
    let unknown = unknown_root_fields(op);
    if let Some(field) = unknown.first() {
        let root = if op.operation_type == apollo_compiler::ast::OperationType::Mutation {
            "Mutation"
        } else {
            "Query"
        };
        let msg = format!("Cannot query field \"{field}\" on type \"{root}\".");
        return json_response(
            StatusCode::BAD_REQUEST,
            graphql_error("GRAPHQL_VALIDATION_FAILED", &msg),
            rate_headers(0),
        );
    }
    let cost = complexity(&op.selection_set, &req.fragments(), &req.variables, op);
    if cost > 10_000 {
        let msg = format!("Query too complex: {cost} points, the limit is 10000.");
        return json_response(
            StatusCode::BAD_REQUEST,
            graphql_error("GRAPHQL_VALIDATION_FAILED", &msg),
            rate_headers(cost),
        );
    }
    {
        let mut rate = inner.rate.lock().expect("rate lock");
        rate.roll();
        if rate.requests >= rate.limits.requests_per_window
            || rate.complexity + cost > rate.limits.complexity_per_window
        {
            let body = rate_limited(&rate.limits);
            return json_response(StatusCode::BAD_REQUEST, body, rate.headers(cost));
        }
        rate.requests += 1;
        rate.complexity += cost;
    }

    let (executed, outbox) = {
        let mut world = org.world.lock().expect("world lock");
        let executed = execute(&mut world, &req, op);
        (executed, world.take_outbox())
    };
    inner.webhooks.send_all(outbox);
    {
        let mut stats = inner.stats.lock().expect("stats lock");
        for s in &executed.sessions {
            *stats.by_session.entry(s.clone()).or_default() += 1;
        }
    }
    json_response(StatusCode::OK, executed.body, rate_headers(cost))
}
