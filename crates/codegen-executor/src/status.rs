//! Run status as Codegen reports it, and what each value means for us.
//!
//! The spec types `status` as a free string; Codegen's own clients use an
//! UPPERCASE set while its README shows lowercase words. We parse
//! case-insensitively, map the lowercase aliases, and keep anything else as
//! [`RunStatus::Unknown`] so a new value never breaks parsing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Pending,
    Active,
    Running,
    Evaluation,
    Paused,
    Complete,
    Error,
    Failed,
    Timeout,
    MaxIterationsReached,
    OutOfTokens,
    Cancelled,
    Stopped,
    /// Anything else, as received (original spelling kept for logs).
    Unknown(String),
}

/// Coarse class of a status: what the poller and the Linear side do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusClass {
    NotStarted,
    Running,
    NeedsInput,
    Succeeded,
    Failed,
    LimitHit,
    Stopped,
    Unknown,
}

impl RunStatus {
    /// Parses any spelling Codegen has been seen to use.
    pub fn parse(raw: &str) -> RunStatus {
        let upper = raw.trim().to_ascii_uppercase();
        match upper.as_str() {
            "PENDING" | "QUEUED" => RunStatus::Pending,
            "ACTIVE" | "IN_PROGRESS" => RunStatus::Active,
            "RUNNING" => RunStatus::Running,
            "EVALUATION" => RunStatus::Evaluation,
            "PAUSED" => RunStatus::Paused,
            "COMPLETE" | "COMPLETED" => RunStatus::Complete,
            "ERROR" => RunStatus::Error,
            "FAILED" => RunStatus::Failed,
            "TIMEOUT" => RunStatus::Timeout,
            "MAX_ITERATIONS_REACHED" => RunStatus::MaxIterationsReached,
            "OUT_OF_TOKENS" => RunStatus::OutOfTokens,
            "CANCELLED" | "CANCELED" => RunStatus::Cancelled,
            "STOPPED" => RunStatus::Stopped,
            _ => RunStatus::Unknown(raw.to_string()),
        }
    }

    /// Canonical UPPERCASE spelling (unknown values as received).
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Active => "ACTIVE",
            RunStatus::Running => "RUNNING",
            RunStatus::Evaluation => "EVALUATION",
            RunStatus::Paused => "PAUSED",
            RunStatus::Complete => "COMPLETE",
            RunStatus::Error => "ERROR",
            RunStatus::Failed => "FAILED",
            RunStatus::Timeout => "TIMEOUT",
            RunStatus::MaxIterationsReached => "MAX_ITERATIONS_REACHED",
            RunStatus::OutOfTokens => "OUT_OF_TOKENS",
            RunStatus::Cancelled => "CANCELLED",
            RunStatus::Stopped => "STOPPED",
            RunStatus::Unknown(s) => s,
        }
    }

    pub fn class(&self) -> StatusClass {
        match self {
            RunStatus::Pending => StatusClass::NotStarted,
            RunStatus::Active | RunStatus::Running | RunStatus::Evaluation => StatusClass::Running,
            RunStatus::Paused => StatusClass::NeedsInput,
            RunStatus::Complete => StatusClass::Succeeded,
            RunStatus::Error | RunStatus::Failed => StatusClass::Failed,
            RunStatus::Timeout | RunStatus::MaxIterationsReached | RunStatus::OutOfTokens => {
                StatusClass::LimitHit
            }
            RunStatus::Cancelled | RunStatus::Stopped => StatusClass::Stopped,
            RunStatus::Unknown(_) => StatusClass::Unknown,
        }
    }

    /// The run will not change again on its own.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.class(),
            StatusClass::Succeeded
                | StatusClass::Failed
                | StatusClass::LimitHit
                | StatusClass::Stopped
        )
    }

    pub fn is_success(&self) -> bool {
        self.class() == StatusClass::Succeeded
    }

    /// Ended badly: an error or a limit (not a stop we asked for).
    pub fn is_failure(&self) -> bool {
        matches!(self.class(), StatusClass::Failed | StatusClass::LimitHit)
    }

    /// Waiting for a human: stop polling, resume is allowed.
    pub fn needs_input(&self) -> bool {
        self.class() == StatusClass::NeedsInput
    }

    /// Started or queued and still going: keep polling; stop is allowed.
    pub fn is_in_progress(&self) -> bool {
        matches!(self.class(), StatusClass::NotStarted | StatusClass::Running)
    }

    /// Whether the poller should keep following the run. Unknown values are
    /// followed (until the caller's run deadline) because they may be new
    /// in-progress states.
    pub fn should_poll(&self) -> bool {
        !self.is_terminal() && !self.needs_input()
    }

    /// For `LimitHit` statuses: which limit, in words for the user.
    pub fn limit_description(&self) -> Option<&'static str> {
        match self {
            RunStatus::Timeout => Some("the run timed out"),
            RunStatus::MaxIterationsReached => {
                Some("the run reached its maximum number of iterations")
            }
            RunStatus::OutOfTokens => Some("the run ran out of tokens"),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(RunStatus::parse(s))
    }
}

impl Serialize for RunStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(RunStatus::parse(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_value_round_trips() {
        for s in [
            "PENDING",
            "ACTIVE",
            "RUNNING",
            "EVALUATION",
            "PAUSED",
            "COMPLETE",
            "ERROR",
            "FAILED",
            "TIMEOUT",
            "MAX_ITERATIONS_REACHED",
            "OUT_OF_TOKENS",
            "CANCELLED",
            "STOPPED",
        ] {
            let parsed = RunStatus::parse(s);
            assert!(
                !matches!(parsed, RunStatus::Unknown(_)),
                "{s} parsed as unknown"
            );
            assert_eq!(parsed.as_str(), s);
            assert_eq!(RunStatus::parse(&s.to_lowercase()), parsed, "lowercase {s}");
        }
    }

    #[test]
    fn lowercase_aliases_map_to_canonical() {
        assert_eq!(RunStatus::parse("completed"), RunStatus::Complete);
        assert_eq!(RunStatus::parse("failed"), RunStatus::Failed);
        assert_eq!(RunStatus::parse("queued"), RunStatus::Pending);
        assert_eq!(RunStatus::parse(" In_Progress "), RunStatus::Active);
    }

    #[test]
    fn unknown_values_are_kept_and_still_polled() {
        let s = RunStatus::parse("Thinking_Hard");
        assert_eq!(s, RunStatus::Unknown("Thinking_Hard".into()));
        assert_eq!(s.to_string(), "Thinking_Hard");
        assert!(s.should_poll());
        assert!(!s.is_terminal());
    }

    #[test]
    fn classification() {
        assert!(RunStatus::Complete.is_terminal() && RunStatus::Complete.is_success());
        assert!(RunStatus::Error.is_failure() && RunStatus::Timeout.is_failure());
        assert!(RunStatus::OutOfTokens.limit_description().is_some());
        assert!(RunStatus::Cancelled.is_terminal() && !RunStatus::Cancelled.is_failure());
        assert!(RunStatus::Paused.needs_input() && !RunStatus::Paused.should_poll());
        assert!(RunStatus::Pending.should_poll() && RunStatus::Evaluation.is_in_progress());
    }

    #[test]
    fn deserializes_from_json_string() {
        let s: RunStatus = serde_json::from_str("\"complete\"").unwrap();
        assert_eq!(s, RunStatus::Complete);
    }
}
