//! Codegen's error bodies (codegen-api.md §7).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const MSG_402: &str = "Alloted agent runs for the current billing plan have been reached. Please upgrade your plan to continue.";
pub const MSG_403: &str = "You do not have access to this organization.";
pub const MSG_404_RUN: &str = "Agent run not found.";
pub const MSG_404_NO_REPOS: &str =
    "No repos found in the organization. Please add some repos and try again.";
pub const MSG_404_USER: &str = "User not found.";
pub const MSG_429: &str = "Rate limit exceeded. Please try again later.";
pub const MSG_401: &str = "Invalid or missing API token.";

/// `{message, status_code}` with the given status.
pub fn api_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({"message": message, "status_code": status})),
    )
        .into_response()
}

/// The documented body for a status, used by forced failures.
pub fn default_error(status: u16) -> Response {
    let message = match status {
        401 => MSG_401,
        402 => MSG_402,
        403 => MSG_403,
        404 => MSG_404_RUN,
        429 => MSG_429,
        _ => "Internal Server Error (simulated fault)",
    };
    api_error(status, message)
}

/// One FastAPI/pydantic validation problem.
pub struct Invalid {
    pub loc: Vec<Value>,
    pub msg: String,
    pub kind: &'static str,
    pub input: Option<Value>,
}

impl Invalid {
    pub fn new(loc: &[&str], msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.iter().map(|s| json!(s)).collect(),
            msg: msg.into(),
            kind,
            input: None,
        }
    }
    pub fn with_input(mut self, input: Value) -> Self {
        self.input = Some(input);
        self
    }
}

/// 422 `HTTPValidationError`.
pub fn validation(errors: Vec<Invalid>) -> Response {
    let detail: Vec<Value> = errors
        .into_iter()
        .map(|e| {
            let mut d = json!({"loc": e.loc, "msg": e.msg, "type": e.kind});
            if let Some(input) = e.input {
                d["input"] = input;
            }
            d
        })
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": detail})),
    )
        .into_response()
}
