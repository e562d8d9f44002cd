//! Failures of OAuth calls, parsed from RFC 6749's error body
//! (`{"error", "error_description"}`, §5.2) or the callback's `error`
//! parameter (§4.1.2.1), and classified by what the caller must do.

use crate::error::LinearError;

/// An OAuth failure. Each message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is invalid, expired or already spent. For a
    /// refresh this means the installation is dead: mark it
    /// `needs_reconnect`; nothing automatic can bring it back.
    #[error(
        "Linear refused the grant ({description}): the authorization code or refresh token is invalid, expired or already used. Reconnect the workspace with `cyrus linear connect`"
    )]
    InvalidGrant { description: String },
    /// Wrong client id or secret: a configuration problem, not the workspace's.
    #[error(
        "Linear rejected the OAuth app's credentials ({description}). Check linear.oauth.clientId and clientSecret (or CYRUS_LINEAR_CLIENT_ID / CYRUS_LINEAR_CLIENT_SECRET) against the app's page in Linear's settings"
    )]
    InvalidClient { description: String },
    /// The admin declined the consent screen (`access_denied`).
    #[error(
        "the Linear admin did not approve the installation ({description}). Run `cyrus linear connect` again and choose Approve"
    )]
    Denied { description: String },
    /// Any other OAuth error code (`invalid_request`, `invalid_scope`,
    /// `unauthorized_client`, `unsupported_grant_type`, …).
    #[error("Linear's OAuth server answered `{code}`: {description}. {hint}", hint = hint(code))]
    Other { code: String, description: String },
    /// Network failure, 5xx, 429, `server_error` or `temporarily_unavailable`:
    /// safe to try again later.
    #[error(
        "Linear's OAuth server could not be reached or is overloaded ({message}); this is usually temporary, try again in a minute"
    )]
    Transient { message: String },
    /// A success answer we could not read.
    #[error(
        "Linear's OAuth server answered something unexpected ({message}); check that the OAuth endpoints point at Linear (or the simulator)"
    )]
    Protocol { message: String },
}

fn hint(code: &str) -> &'static str {
    match code {
        "invalid_scope" => {
            "Use scopes Linear knows (read, write, issues:create, comments:create, app:assignable, app:mentionable); admin is refused with actor=app"
        }
        "unauthorized_client" => {
            "The app may not use this grant: enable it (e.g. client credentials) in the app's settings in Linear"
        }
        "invalid_request" => {
            "Check that the redirect URL matches one registered on the app in Linear exactly"
        }
        "unsupported_grant_type" => "This Linear server does not support this grant type",
        _ => "Start the connection again with `cyrus linear connect`",
    }
}

impl OAuthError {
    /// The error named by an OAuth error code.
    pub fn from_code(code: &str, description: Option<&str>) -> Self {
        let description = description
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(code)
            .to_owned();
        match code {
            "invalid_grant" => Self::InvalidGrant { description },
            "invalid_client" => Self::InvalidClient { description },
            "access_denied" => Self::Denied { description },
            "server_error" | "temporarily_unavailable" => Self::Transient {
                message: description,
            },
            _ => Self::Other {
                code: code.to_owned(),
                description,
            },
        }
    }

    /// The error of a callback redirect (`?error=…&error_description=…`).
    pub fn from_callback(error: &str, description: Option<&str>) -> Self {
        Self::from_code(error, description)
    }

    /// The error of a non-success token or revoke answer.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        let transient_status = status == 408 || status == 429 || status >= 500;
        match serde_json::from_slice::<Body>(body) {
            // A gateway's 5xx or 429 is worth a retry whatever its body says;
            // `invalid_grant` and friends are never sent with those statuses.
            Ok(b) if !transient_status => Self::from_code(&b.error, b.error_description.as_deref()),
            _ if transient_status => Self::Transient {
                message: format!("HTTP {status}"),
            },
            _ if status == 401 => Self::InvalidClient {
                description: "HTTP 401".into(),
            },
            _ => Self::Other {
                code: format!("http_{status}"),
                description: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            },
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

impl From<OAuthError> for LinearError {
    /// A dead refresh token becomes [`LinearError::NeedsReconnect`], so the
    /// worker parks that workspace's tasks instead of failing them.
    fn from(e: OAuthError) -> Self {
        match e {
            OAuthError::InvalidGrant { .. } => LinearError::NeedsReconnect {
                message: e.to_string(),
            },
            OAuthError::Transient { .. } => LinearError::Transient {
                message: e.to_string(),
            },
            _ => LinearError::Refresh(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn rfc_6749_bodies_are_classified() {
        let e = OAuthError::from_response(
            400,
            br#"{"error":"invalid_grant","error_description":"refresh token already used"}"#,
        );
        assert_eq!(
            e,
            OAuthError::InvalidGrant {
                description: "refresh token already used".into()
            }
        );
        assert!(e.to_string().contains("cyrus linear connect"), "{e}");

        let e = OAuthError::from_response(401, br#"{"error":"invalid_client"}"#);
        assert!(matches!(e, OAuthError::InvalidClient { .. }), "{e:?}");
        assert!(e.to_string().contains("clientSecret"), "{e}");

        let e = OAuthError::from_response(
            400,
            br#"{"error":"invalid_scope","error_description":"admin not allowed"}"#,
        );
        assert_eq!(
            e,
            OAuthError::Other {
                code: "invalid_scope".into(),
                description: "admin not allowed".into()
            }
        );
        assert!(e.to_string().contains("app:assignable"), "{e}");

        let e = OAuthError::from_response(400, br#"{"error":"temporarily_unavailable"}"#);
        assert!(e.is_transient());
    }

    #[test]
    fn statuses_without_a_body_are_classified() {
        assert!(OAuthError::from_response(502, b"<html>bad gateway</html>").is_transient());
        assert!(OAuthError::from_response(429, br#"{"error":"invalid_grant"}"#).is_transient());
        assert!(matches!(
            OAuthError::from_response(401, b""),
            OAuthError::InvalidClient { .. }
        ));
        assert_eq!(
            OAuthError::from_response(404, b"not here"),
            OAuthError::Other {
                code: "http_404".into(),
                description: "not here".into()
            }
        );
    }

    #[test]
    fn callback_errors_and_linear_error_classes() {
        let denied = OAuthError::from_callback("access_denied", None);
        assert_eq!(
            denied,
            OAuthError::Denied {
                description: "access_denied".into()
            }
        );
        let dead: LinearError = OAuthError::from_code("invalid_grant", None).into();
        assert_eq!(dead.class(), ErrorClass::NeedsReconnect);
        let flaky: LinearError = OAuthError::from_code("server_error", None).into();
        assert_eq!(flaky.class(), ErrorClass::Transient);
        let config: LinearError = OAuthError::from_code("invalid_client", None).into();
        assert_eq!(config.class(), ErrorClass::Auth);
    }
}
