//! Errors by class, because the caller's reaction depends on the class:
//! credentials and plan limits need a human, 404 is a fact about the run,
//! 422 is a Cyrus bug, and 429/5xx/transport failures are retried here first.

use serde_json::Value;
use std::time::Duration;

/// The API call an error happened on (for logs and metrics labels).
pub type Endpoint = &'static str;

#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// 401: bad or missing token. Not retried.
    #[error(
        "Codegen rejected the API token on {endpoint} (HTTP 401): {message}. Fix `codegen.apiToken` (or CYRUS_CODEGEN_API_TOKEN)"
    )]
    Unauthorized { endpoint: Endpoint, message: String },

    /// 403: the token's user is not a member of the organization. Not retried.
    #[error(
        "Codegen denied access to organization {org_id} on {endpoint} (HTTP 403): {message}. Check `codegen.orgId` and that the token's user belongs to that organization"
    )]
    Forbidden {
        endpoint: Endpoint,
        org_id: i64,
        message: String,
    },

    /// 402: the plan's run allowance is used up. A human must change the plan.
    #[error("Codegen plan allowance used up on {endpoint} (HTTP 402): {message}")]
    PlanLimit { endpoint: Endpoint, message: String },

    /// 404: run / user unknown, or (on create) the organization has no repos.
    #[error("not found on {endpoint} (HTTP 404): {message}")]
    NotFound { endpoint: Endpoint, message: String },

    /// 422: Codegen says our request is malformed — a Cyrus bug. The body is
    /// kept whole so it can be logged.
    #[error(
        "Codegen rejected our request on {endpoint} as invalid (HTTP 422; a Cyrus bug): {message}"
    )]
    Validation {
        endpoint: Endpoint,
        message: String,
        body: String,
    },

    /// 429 that outlasted the retry budget.
    #[error("Codegen rate limit on {endpoint} (HTTP 429) after retrying: {message}")]
    RateLimited {
        endpoint: Endpoint,
        message: String,
        retry_after: Option<Duration>,
    },

    /// 5xx that outlasted the retry budget.
    #[error("Codegen server error on {endpoint} (HTTP {status}): {message}")]
    Server {
        endpoint: Endpoint,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },

    /// Timeout or connection failure that outlasted the retry budget.
    #[error("could not reach Codegen on {endpoint}: {source}")]
    Transport {
        endpoint: Endpoint,
        #[source]
        source: reqwest::Error,
    },

    /// The beta stop route answered 404/405: it is gone on this deployment.
    ///
    /// Fallback for the caller: stop following the run and mark it cancelled
    /// locally (drop its result, tell the user). Only when Codegen must also
    /// stop pushing to the run's PR, call `ban_run`/`remove_from_pr` — those act
    /// on the whole PR and stop every agent on it.
    #[error(
        "stopping runs is not supported by this Codegen deployment (HTTP {status}); cancel locally instead"
    )]
    StopUnsupported { status: u16 },

    /// Any other status code.
    #[error("unexpected HTTP {status} from Codegen on {endpoint}: {message}")]
    Unexpected {
        endpoint: Endpoint,
        status: u16,
        message: String,
    },

    /// 2xx whose body does not match the contract.
    #[error("could not decode Codegen's response on {endpoint}: {source}; body starts: {snippet}")]
    Decode {
        endpoint: Endpoint,
        #[source]
        source: serde_json::Error,
        snippet: String,
    },

    /// Client construction problems (bad base URL, TLS setup).
    #[error("invalid Codegen client configuration: {0}")]
    Config(String),
}

impl CodegenError {
    /// Retried inside the client (429, 5xx, timeouts, connection errors).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CodegenError::RateLimited { .. }
                | CodegenError::Server { .. }
                | CodegenError::Transport { .. }
        )
    }

    /// Needs a person to change configuration or the plan; retrying is useless.
    pub fn needs_human(&self) -> bool {
        matches!(
            self,
            CodegenError::Unauthorized { .. }
                | CodegenError::Forbidden { .. }
                | CodegenError::PlanLimit { .. }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CodegenError::NotFound { .. })
    }

    /// HTTP status when the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            CodegenError::Unauthorized { .. } => Some(401),
            CodegenError::Forbidden { .. } => Some(403),
            CodegenError::PlanLimit { .. } => Some(402),
            CodegenError::NotFound { .. } => Some(404),
            CodegenError::Validation { .. } => Some(422),
            CodegenError::RateLimited { .. } => Some(429),
            CodegenError::Server { status, .. }
            | CodegenError::Unexpected { status, .. }
            | CodegenError::StopUnsupported { status } => Some(*status),
            _ => None,
        }
    }
}

/// Human message from an error body: `message`, else `detail` (a string, or
/// FastAPI's list of `{loc, msg}`), else the raw body (truncated).
pub fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if let Some(obj) = parsed.as_ref().and_then(Value::as_object) {
        if let Some(Value::String(m)) = obj.get("message") {
            return m.clone();
        }
        match obj.get("detail") {
            Some(Value::String(d)) => return d.clone(),
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|item| {
                        let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                        let loc = item
                            .get("loc")
                            .and_then(Value::as_array)
                            .map(|loc| {
                                loc.iter()
                                    .map(|p| match p {
                                        Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(".")
                            })
                            .unwrap_or_default();
                        if loc.is_empty() {
                            msg.to_string()
                        } else {
                            format!("{loc}: {msg}")
                        }
                    })
                    .collect();
                if !parts.is_empty() {
                    return parts.join("; ");
                }
            }
            Some(other) if !other.is_null() => return other.to_string(),
            _ => {}
        }
    }
    snippet(body)
}

/// First 300 characters of a body, for messages.
pub(crate) fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "(empty body)".to_string();
    }
    let mut s: String = trimmed.chars().take(300).collect();
    if trimmed.chars().count() > 300 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_then_detail_string_then_detail_list() {
        assert_eq!(
            error_message(r#"{"message": "Agent run not found.", "status_code": 404}"#),
            "Agent run not found."
        );
        assert_eq!(
            error_message(r#"{"detail": "Rate limit exceeded", "status_code": 429}"#),
            "Rate limit exceeded"
        );
        assert_eq!(
            error_message(
                r#"{"detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}, {"loc": ["query", "limit", 0], "msg": "too big"}]}"#
            ),
            "body.prompt: Field required; query.limit.0: too big"
        );
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn credential_errors_name_the_setting() {
        let e = CodegenError::Unauthorized {
            endpoint: "get_run",
            message: "x".into(),
        };
        assert!(
            e.to_string().contains("codegen.apiToken")
                && e.to_string().contains("CYRUS_CODEGEN_API_TOKEN")
        );
        assert!(e.needs_human() && !e.is_retryable());
        let e = CodegenError::Forbidden {
            endpoint: "get_run",
            org_id: 9,
            message: "x".into(),
        };
        assert!(e.to_string().contains("codegen.orgId"));
    }
}
