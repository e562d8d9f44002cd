//! The Codegen REST API routes and the gate in front of them (faults, auth,
//! path validation, rate limits, org membership — in that order).

// Handlers reject with a ready `Response` (axum's idiom); it is built once per
// failed request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, RawPathParams, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::endpoint::Endpoint;
use super::errors::{self, Invalid, api_error, default_error};
use super::faults::AnswerLoss;
use super::listener::Conn;
use super::run::{NewRun, Run};
use super::script::RunScript;
use super::state::{Inner, Shared};
use super::validate::{BodyCheck, bool_param, object_body, page, paging};

/// The simulated user the token belongs to.
const USER_ID: i64 = 1;

type St = State<Arc<Shared>>;
type ApiResult = Result<Json<Value>, Response>;

pub fn router(shared: Arc<Shared>) -> Router {
    let org = "/v1/organizations/{org_id}";
    Router::new()
        .route(&format!("{org}/agent/run"), post(create_run))
        .route(&format!("{org}/agent/run/{{agent_run_id}}"), get(get_run))
        .route(&format!("{org}/agent/runs"), get(list_runs))
        .route(&format!("{org}/agent/run/resume"), post(resume_run))
        .route(
            "/v1/beta/organizations/{org_id}/agent/run/stop",
            post(stop_run),
        )
        .route(&format!("{org}/agent/run/ban"), post(ban_run))
        .route(&format!("{org}/agent/run/unban"), post(unban_run))
        .route(&format!("{org}/agent/run/remove-from-pr"), post(ban_run))
        .route(
            "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs",
            get(logs),
        )
        .route(&format!("{org}/agent/run/{{agent_run_id}}/logs"), get(logs))
        .route("/v1/users/me", get(users_me))
        .route(&format!("{org}/users"), get(org_users))
        .route(&format!("{org}/users/{{user_id}}"), get(org_user))
        .route("/v1/organizations", get(organizations))
        .route(&format!("{org}/repos"), get(repos))
        .route(&format!("{org}/integrations"), get(integrations))
        .route("/v1/mcp-providers", get(mcp_providers))
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn gate(
    State(shared): St,
    ConnectInfo(conn): ConnectInfo<Conn>,
    matched: MatchedPath,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let Some(endpoint) = Endpoint::from_route(req.method(), matched.as_str()) else {
        return next.run(req).await;
    };
    // Decide everything under the lock, then sleep/forward without it.
    enum Verdict {
        Drop,
        Fail(u16),
        Pass,
    }
    let (verdict, latency) = {
        let mut inner = shared.lock();
        *inner.requests.entry(endpoint).or_default() += 1;
        let latency = inner.faults.added_latency;
        let applies = |e: Option<Endpoint>| e.is_none_or(|e| e == endpoint);
        let verdict = if let Some(rule) = inner
            .faults
            .drop_next
            .iter_mut()
            .find(|r| r.count > 0 && applies(r.endpoint))
        {
            rule.count -= 1;
            Verdict::Drop
        } else if let Some(rule) = inner
            .faults
            .fail_next
            .iter_mut()
            .find(|r| r.count > 0 && applies(r.endpoint))
        {
            rule.count -= 1;
            Verdict::Fail(rule.status)
        } else if inner.faults.error_rate > 0.0
            && rand::random_bool(inner.faults.error_rate.min(1.0))
        {
            Verdict::Fail(500)
        } else {
            Verdict::Pass
        };
        inner.faults.drop_next.retain(|r| r.count > 0);
        inner.faults.fail_next.retain(|r| r.count > 0);
        if matches!(verdict, Verdict::Fail(429)) {
            inner.served_429 += 1;
        }
        (verdict, latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match verdict {
        Verdict::Drop => {
            conn.kill();
            return default_error(500);
        }
        Verdict::Fail(status) => return default_error(status),
        Verdict::Pass => {}
    }

    let Some(token) = bearer(req.headers()).filter(|t| *t == shared.token) else {
        return api_error(401, errors::MSG_401);
    };

    let mut invalid = Vec::new();
    let mut org_id = None;
    for (name, value) in params.iter() {
        match value.parse::<i64>() {
            Ok(v) if name == "org_id" => org_id = Some(v),
            Ok(_) => {}
            Err(_) => invalid.push(
                Invalid::new(
                    &["path", name],
                    "Input should be a valid integer, unable to parse string as an integer",
                    "int_parsing",
                )
                .with_input(json!(value)),
            ),
        }
    }
    if !invalid.is_empty() {
        return errors::validation(invalid);
    }

    if let Some(bucket) = endpoint.bucket() {
        let now = shared.clock.now();
        let mut inner = shared.lock();
        let Inner {
            limiter,
            rate_limits,
            served_429,
            ..
        } = &mut *inner;
        if !limiter.admit(rate_limits, token, bucket, now) {
            *served_429 += 1;
            return api_error(429, errors::MSG_429);
        }
    }

    if org_id.is_some_and(|id| id != shared.org_id) {
        return api_error(403, errors::MSG_403);
    }
    let response = next.run(req).await;
    lose_answer_if_armed(&shared, &conn, endpoint, response)
}

/// Applies `Faults::lose_answer_next` to a performed request: the work is
/// done (a create has made its run), and the client gets a 502 or a cut
/// connection instead of the answer.
fn lose_answer_if_armed(
    shared: &Shared,
    conn: &Conn,
    endpoint: Endpoint,
    response: Response,
) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let loss = {
        let mut inner = shared.lock();
        let Some(rule) = inner
            .faults
            .lose_answer_next
            .iter_mut()
            .find(|r| r.count > 0 && r.endpoint.is_none_or(|e| e == endpoint))
        else {
            return response;
        };
        rule.count -= 1;
        let loss = rule.loss;
        inner.faults.lose_answer_next.retain(|r| r.count > 0);
        inner.answers_lost += 1;
        loss
    };
    match loss {
        AnswerLoss::BadGateway => api_error(
            502,
            "Bad gateway: the request was performed, but its answer was lost",
        ),
        AnswerLoss::Cut => {
            conn.kill();
            default_error(500)
        }
    }
}

fn run_not_found() -> Response {
    api_error(404, errors::MSG_404_RUN)
}

/// Script precedence: registered for this id, then the next-run queue (new
/// runs only), then the prompt marker, then defaults.
fn pick_script(
    inner: &mut Inner,
    id: i64,
    prompt: &str,
    new_run: bool,
) -> Result<RunScript, Response> {
    if let Some(s) = inner.run_scripts.remove(&id) {
        return Ok(s);
    }
    if new_run && let Some(s) = inner.next_scripts.pop_front() {
        return Ok(s);
    }
    match RunScript::from_prompt(prompt) {
        Ok(s) => Ok(s.unwrap_or_default()),
        Err(e) => Err(errors::validation(vec![Invalid::new(
            &["body", "prompt"],
            e.to_string(),
            "value_error",
        )])),
    }
}

async fn create_run(State(shared): St, Path(_org): Path<i64>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let mut check = BodyCheck::default();
    let prompt = check.required_str(&body, "prompt");
    let repo_id = check.optional_int(&body, "repo_id");
    let model = check.optional_str(&body, "model");
    let agent_type = check.optional_enum(&body, "agent_type", &["codegen", "claude_code"]);
    let metadata = check.optional_object(&body, "metadata");
    check.optional_str_list(&body, "images");
    let images: Vec<String> = body
        .get("images")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = RunScript::from_prompt(&prompt) {
        check.push(Invalid::new(
            &["body", "prompt"],
            e.to_string(),
            "value_error",
        ));
    }
    check.finish()?;

    let now = shared.clock.now();
    let mut inner = shared.lock();
    if inner.allowance == Some(0) {
        return Err(api_error(402, errors::MSG_402));
    }
    let repo = match repo_id {
        _ if shared.repos.is_empty() => return Err(api_error(404, errors::MSG_404_NO_REPOS)),
        None => &shared.repos[0],
        Some(id) => match shared.repos.iter().find(|r| r.id == id) {
            Some(r) => r,
            None => return Err(api_error(404, "Repository not found.")),
        },
    };
    let id = inner.next_run_id;
    let script = pick_script(&mut inner, id, &prompt, true)?;
    inner.next_run_id += 1;
    if let Some(left) = inner.allowance.as_mut() {
        *left -= 1;
    }
    let run = Run::new(
        NewRun {
            id,
            org_id: shared.org_id,
            prompt,
            metadata,
            repo_id,
            repo_name: repo.full_name.clone(),
            model,
            agent_type,
            images,
        },
        &script,
        &shared.defaults,
        now,
    );
    let json = run.to_json(&shared.clock);
    inner.runs.insert(id, run);
    Ok(Json(json))
}

fn with_run<T>(
    shared: &Shared,
    id: i64,
    f: impl FnOnce(&mut Inner, u64) -> T,
) -> Result<T, Response> {
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let Inner { runs, prs, .. } = &mut *inner;
    let run = runs
        .get_mut(&id)
        .filter(|r| r.org_id == shared.org_id)
        .ok_or_else(run_not_found)?;
    run.settle(now, prs);
    Ok(f(&mut inner, now))
}

async fn get_run(State(shared): St, Path((_org, id)): Path<(i64, i64)>) -> ApiResult {
    with_run(&shared, id, |inner, _| {
        Json(inner.runs[&id].to_json(&shared.clock))
    })
}

const SOURCE_TYPES: &[&str] = &[
    "LOCAL",
    "SLACK",
    "GITHUB",
    "GITHUB_CHECK_SUITE",
    "GITHUB_PR_REVIEW",
    "LINEAR",
    "API",
    "CHAT",
    "JIRA",
    "CLICKUP",
    "MONDAY",
    "SETUP_COMMANDS",
];

async fn list_runs(
    State(shared): St,
    Path(_org): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (skip, limit) = paging(&q)?;
    if let Some(st) = q
        .get("source_type")
        .filter(|s| !SOURCE_TYPES.contains(&s.as_str()))
    {
        let expected = SOURCE_TYPES
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(errors::validation(vec![
            Invalid::new(
                &["query", "source_type"],
                format!("Input should be {expected}"),
                "enum",
            )
            .with_input(json!(st)),
        ]));
    }
    let user_ok = match q.get("user_id") {
        None => true,
        Some(u) => match u.parse::<i64>() {
            Ok(u) => u == USER_ID,
            Err(_) => {
                return Err(errors::validation(vec![
                    Invalid::new(
                        &["query", "user_id"],
                        "Input should be a valid integer, unable to parse string as an integer",
                        "int_parsing",
                    )
                    .with_input(json!(u)),
                ]));
            }
        },
    };
    let source_ok = q.get("source_type").is_none_or(|s| s == "API");
    let mut inner = shared.lock();
    shared.settle_all(&mut inner);
    let all: Vec<Value> = if user_ok && source_ok {
        inner
            .runs
            .values()
            .rev()
            .map(|r| r.to_json(&shared.clock))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(page(all, skip, limit)))
}

async fn resume_run(State(shared): St, Path(_org): Path<i64>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let mut check = BodyCheck::default();
    let id = check.required_int(&body, "agent_run_id");
    let prompt = check.required_str(&body, "prompt");
    check.optional_str_list(&body, "images");
    check.finish()?;
    with_run(&shared, id, |inner, now| {
        let script = pick_script(inner, id, &prompt, false)?;
        let run = inner.runs.get_mut(&id).expect("checked by with_run");
        run.resume(prompt, &script, &shared.defaults, now);
        Ok(Json(run.to_json(&shared.clock)))
    })?
}

fn run_id_body(body: &[u8]) -> Result<i64, Response> {
    let body = object_body(body)?;
    let mut check = BodyCheck::default();
    let id = check.required_int(&body, "agent_run_id");
    check.optional_str(&body, "before_card_order_id");
    check.optional_str(&body, "after_card_order_id");
    check.finish()?;
    Ok(id)
}

async fn stop_run(State(shared): St, Path(_org): Path<i64>, body: Bytes) -> ApiResult {
    let id = run_id_body(&body)?;
    with_run(&shared, id, |inner, now| {
        let run = inner.runs.get_mut(&id).expect("checked by with_run");
        run.cancel(now);
        Json(run.to_json(&shared.clock))
    })
}

/// Ban and remove-from-pr flag the run's PR and stop the agents on it.
async fn ban_run(State(shared): St, Path(_org): Path<i64>, body: Bytes) -> ApiResult {
    let id = run_id_body(&body)?;
    with_run(&shared, id, |inner, now| {
        let run = inner.runs.get_mut(&id).expect("checked by with_run");
        run.banned = true;
        run.cancel(now);
        Json(
            json!({"message": "Agent run removed from PR and agents stopped.", "agent_run_id": id, "status": run.status}),
        )
    })
}

async fn unban_run(State(shared): St, Path(_org): Path<i64>, body: Bytes) -> ApiResult {
    let id = run_id_body(&body)?;
    with_run(&shared, id, |inner, _| {
        let run = inner.runs.get_mut(&id).expect("checked by with_run");
        run.banned = false;
        Json(json!({"message": "Agent run unbanned.", "agent_run_id": id}))
    })
}

async fn logs(
    State(shared): St,
    Path((_org, id)): Path<(i64, i64)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (skip, limit) = paging(&q)?;
    let reverse = bool_param(&q, "reverse")?;
    with_run(&shared, id, |inner, now| {
        let run = &inner.runs[&id];
        let mut all: Vec<Value> = run
            .visible_logs(now)
            .map(|l| l.to_json(id, &shared.clock))
            .collect();
        if reverse {
            all.reverse();
        }
        let paged = page(all, skip, limit);
        Json(json!({
            "id": run.id,
            "organization_id": run.org_id,
            "status": run.status,
            "created_at": shared.clock.timestamp(run.created_ms),
            "web_url": super::run::web_url(run.id),
            "result": run.result,
            "metadata": run.metadata,
            "logs": paged["items"],
            "total_logs": paged["total"],
            "page": paged["page"],
            "size": paged["size"],
            "pages": paged["pages"],
        }))
    })
}

fn user_json() -> Value {
    json!({
        "id": USER_ID,
        "email": "sim@acme.test",
        "github_user_id": "1000001",
        "github_username": "acme-sim",
        "avatar_url": null,
        "full_name": "Sim User",
        "role": "ADMIN",
        "is_admin": true,
    })
}

async fn users_me() -> Json<Value> {
    Json(user_json())
}

async fn org_users(Path(_org): Path<i64>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let (skip, limit) = paging(&q)?;
    Ok(Json(page(vec![user_json()], skip, limit)))
}

async fn org_user(Path((_org, user)): Path<(i64, i64)>) -> ApiResult {
    if user == USER_ID {
        Ok(Json(user_json()))
    } else {
        Err(api_error(404, errors::MSG_404_USER))
    }
}

async fn organizations(State(shared): St, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let (skip, limit) = paging(&q)?;
    let org = json!({
        "id": shared.org_id,
        "name": shared.org_name,
        "settings": {"enable_pr_creation": true, "enable_rules_detection": true},
    });
    Ok(Json(page(vec![org], skip, limit)))
}

async fn repos(
    State(shared): St,
    Path(_org): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (skip, limit) = paging(&q)?;
    let all = shared
        .repos
        .iter()
        .map(|r| {
            let name = r.full_name.rsplit('/').next().unwrap_or(&r.full_name);
            json!({
                "id": r.id,
                "name": name,
                "full_name": r.full_name,
                "description": format!("Simulated repository {}", r.full_name),
                "github_id": (900_000 + r.id).to_string(),
                "organization_id": shared.org_id,
                "visibility": "private",
                "archived": false,
                "setup_status": "COMPLETED",
                "language": "Rust",
            })
        })
        .collect();
    Ok(Json(page(all, skip, limit)))
}

async fn integrations(State(shared): St, Path(_org): Path<i64>) -> Json<Value> {
    let inner = shared.lock();
    let list: Vec<Value> = inner
        .integrations
        .iter()
        .enumerate()
        .map(|(i, (kind, active))| {
            json!({"integration_type": kind, "active": active, "token_id": if *active { Some(100 + i as i64) } else { None }, "installation_id": null, "metadata": null})
        })
        .collect();
    let active = inner.integrations.iter().filter(|(_, a)| *a).count();
    Json(json!({
        "organization_id": shared.org_id,
        "organization_name": shared.org_name,
        "integrations": list,
        "total_active_integrations": active,
    }))
}

/// Only `is_mcp = true` providers are listed, so the flag is always true.
async fn mcp_providers(State(shared): St) -> Json<Value> {
    let inner = shared.lock();
    let list: Vec<Value> = inner
        .mcp_providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "id": i as i64 + 1,
                "name": p.name,
                "issuer": p.issuer,
                "authorization_endpoint": p.authorization_endpoint,
                "token_endpoint": p.token_endpoint,
                "default_scopes": p.default_scopes,
                "is_mcp": true,
                "meta": p.meta,
            })
        })
        .collect();
    Json(Value::Array(list))
}

impl IntoResponse for super::control::ControlError {
    fn into_response(self) -> Response {
        api_error(400, &self.to_string())
    }
}
