//! Turns an HTTP answer from Linear's GraphQL endpoint into data or a
//! classified [`LinearError`]. Pure, so every documented error shape is
//! unit-tested.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::LinearError;

/// Classifies a response. `reset_hint` is the reset instant read from the
/// headers, used when the answer is a rate-limit error.
pub fn classify_response(
    status: u16,
    body: &[u8],
    reset_hint: Option<DateTime<Utc>>,
) -> Result<Value, LinearError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let first_error = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(|e| e.as_array())
        .and_then(|a| a.first());

    if let Some(error) = first_error {
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("unknown error")
            .to_owned();
        let ext = error.get("extensions");
        let field = |k: &str| ext.and_then(|e| e.get(k)).and_then(|v| v.as_str());
        let code = field("code").unwrap_or_default();
        let kind = field("type").unwrap_or_default();
        let user_error = ext
            .and_then(|e| e.get("userError"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);

        if code == "RATELIMITED" || kind == "ratelimited" {
            return Err(LinearError::RateLimited {
                reset_at: reset_hint,
                message,
            });
        }
        if code == "AUTHENTICATION_ERROR" || kind == "authentication error" || status == 401 {
            return Err(LinearError::Auth { message });
        }
        if user_error || code == "INPUT_ERROR" || code == "GRAPHQL_VALIDATION_FAILED" {
            return Err(LinearError::Permanent {
                code: if code.is_empty() {
                    "USER_ERROR".into()
                } else {
                    code.into()
                },
                message,
            });
        }
        // A server-side error Linear did not blame on us: worth a bounded retry.
        return Err(LinearError::Transient {
            message: format!("HTTP {status}: {message}"),
        });
    }

    match status {
        200..=299 => {}
        401 | 403 => {
            return Err(LinearError::Auth {
                message: format!("HTTP {status}"),
            });
        }
        429 => {
            return Err(LinearError::RateLimited {
                reset_at: reset_hint,
                message: "HTTP 429".into(),
            });
        }
        408 | 500..=599 => {
            return Err(LinearError::Transient {
                message: format!("HTTP {status}"),
            });
        }
        _ => {
            return Err(LinearError::Permanent {
                code: format!("HTTP_{status}"),
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
    }

    match parsed.and_then(|mut v| v.get_mut("data").map(Value::take)) {
        Some(data) if !data.is_null() => Ok(data),
        _ => Err(LinearError::Permanent {
            code: "NO_DATA".into(),
            message: "response has neither data nor errors".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use serde_json::json;

    fn class(status: u16, body: Value) -> ErrorClass {
        classify_response(status, body.to_string().as_bytes(), None)
            .unwrap_err()
            .class()
    }

    #[test]
    fn ratelimited_http_400_body_is_rate_limited_with_the_reset_hint() {
        let body = json!({"errors": [{"message": "Rate limit exceeded.",
            "extensions": {"type": "ratelimited", "code": "RATELIMITED", "statusCode": 429, "userError": true,
                           "meta": {"rateLimitResult": {"allowed": false, "remaining": 0}}}}]});
        let reset = DateTime::from_timestamp_millis(1_772_463_600_000);
        let err = classify_response(400, body.to_string().as_bytes(), reset).unwrap_err();
        assert_eq!(err.class(), ErrorClass::RateLimited { reset_at: reset });
    }

    #[test]
    fn authentication_error_is_auth() {
        let body = json!({"errors":[{"message":"Authentication required, not authenticated",
            "extensions":{"type":"authentication error","code":"AUTHENTICATION_ERROR","statusCode":401,"userError":true}}]});
        assert_eq!(class(401, body), ErrorClass::Auth);
        assert_eq!(class(401, json!({})), ErrorClass::Auth);
    }

    #[test]
    fn input_error_is_permanent_even_with_http_200() {
        let body = json!({"errors":[{"message":"Entity not found: AgentSession","path":["agentActivityCreate"],
            "extensions":{"type":"invalid input","code":"INPUT_ERROR","statusCode":400,"userError":true}}],"data":null});
        assert_eq!(class(200, body.clone()), ErrorClass::Permanent);
        assert_eq!(class(400, body), ErrorClass::Permanent);
        let other_user_error =
            json!({"errors":[{"message":"x","extensions":{"code":"SOMETHING","userError":true}}]});
        assert_eq!(class(200, other_user_error), ErrorClass::Permanent);
        let validation = json!({"errors":[{"message":"bad","extensions":{"type":"graphql error","code":"GRAPHQL_VALIDATION_FAILED","userError":true}}]});
        assert_eq!(class(400, validation), ErrorClass::Permanent);
    }

    #[test]
    fn server_failures_are_transient() {
        assert_eq!(class(502, json!("bad gateway")), ErrorClass::Transient);
        let internal = json!({"errors":[{"message":"internal","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]});
        assert_eq!(class(500, internal.clone()), ErrorClass::Transient);
        assert_eq!(class(200, internal), ErrorClass::Transient);
        assert_eq!(
            classify_response(503, b"<html>oops</html>", None)
                .unwrap_err()
                .class(),
            ErrorClass::Transient
        );
    }

    #[test]
    fn success_returns_data() {
        let data = classify_response(200, br#"{"data":{"viewer":{"id":"u"}}}"#, None).unwrap();
        assert_eq!(data, json!({"viewer": {"id": "u"}}));
        assert_eq!(
            classify_response(200, br#"{"data":null}"#, None)
                .unwrap_err()
                .class(),
            ErrorClass::Permanent
        );
    }
}
