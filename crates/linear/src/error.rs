//! Errors from Linear's API, classified by what the caller must do next.

use chrono::{DateTime, Utc};

/// What kind of failure happened; drives retries and the outbox policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The token's budget is spent: wait until `reset_at`, never fail the task.
    RateLimited { reset_at: Option<DateTime<Utc>> },
    /// Credentials rejected even after a refresh: the workspace needs an admin.
    Auth,
    /// The installation's refresh token is dead (`invalid_grant`) or the app
    /// was revoked: nothing is retried until someone reconnects the
    /// workspace; its work waits, it does not fail.
    NeedsReconnect,
    /// `INPUT_ERROR` or any other `userError: true`: retrying cannot help.
    Permanent,
    /// 5xx, timeouts, connection failures: retry with backoff.
    Transient,
}

/// An error from a Linear API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinearError {
    #[error("Linear rate limit reached; resets at {reset_at:?}: {message}")]
    RateLimited {
        reset_at: Option<DateTime<Utc>>,
        message: String,
    },
    #[error("Linear rejected our credentials: {message}")]
    Auth { message: String },
    #[error("Linear rejected the request ({code}): {message}")]
    Permanent { code: String, message: String },
    #[error("Linear call failed transiently: {message}")]
    Transient { message: String },
    #[error("OAuth token refresh failed: {0}")]
    Refresh(String),
    #[error("could not save refreshed OAuth tokens: {0}")]
    Persist(String),
    /// See [`ErrorClass::NeedsReconnect`].
    #[error("this Linear workspace must be reconnected: {message}")]
    NeedsReconnect { message: String },
}

impl LinearError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimited { reset_at, .. } => ErrorClass::RateLimited {
                reset_at: *reset_at,
            },
            Self::Auth { .. } | Self::Refresh(_) => ErrorClass::Auth,
            Self::Permanent { .. } => ErrorClass::Permanent,
            Self::NeedsReconnect { .. } => ErrorClass::NeedsReconnect,
            // A failed save is retryable: the refreshed token is still held
            // in memory and the next refresh attempt saves again.
            Self::Transient { .. } | Self::Persist(_) => ErrorClass::Transient,
        }
    }

    /// Stable label for metrics (`outcome`).
    pub fn outcome_label(&self) -> &'static str {
        match self.class() {
            ErrorClass::RateLimited { .. } => "rate_limited",
            ErrorClass::Auth => "auth_error",
            ErrorClass::NeedsReconnect => "needs_reconnect",
            ErrorClass::Permanent => "permanent_error",
            ErrorClass::Transient => "transient_error",
        }
    }
}
