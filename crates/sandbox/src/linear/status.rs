//! How Linear derives an agent session's status from its activities.
//!
//! Linear only says "based on the last emitted activity"; this is the table of
//! `linear-agent-api.md` §5, kept pure (explicit `now`) so it is tested
//! without clocks.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Activity, Session};

/// `AgentSessionStatus` from the SDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Pending,
    Active,
    AwaitingInput,
    Complete,
    Error,
    Stale,
}

impl SessionStatus {
    /// The enum value as GraphQL and webhooks spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Active => "active",
            SessionStatus::AwaitingInput => "awaitingInput",
            SessionStatus::Complete => "complete",
            SessionStatus::Error => "error",
            SessionStatus::Stale => "stale",
        }
    }
}

/// The thresholds the derivation depends on (time-scaled in tests).
#[derive(Debug, Clone, Copy)]
pub struct SessionTiming {
    /// No activity or URL update this long after `created`: "did not respond".
    pub unresponsive_after: Duration,
    /// An `active` session with no agent activity this long turns `stale`.
    pub stale_after: Duration,
}

impl Default for SessionTiming {
    fn default() -> Self {
        SessionTiming {
            unresponsive_after: Duration::seconds(10),
            stale_after: Duration::minutes(30),
        }
    }
}

/// The status after `activities` (oldest first, this session's only), at
/// `now`. User prompts leave the status unchanged.
pub fn derive_status(
    activities: &[&Activity],
    now: DateTime<Utc>,
    timing: SessionTiming,
) -> SessionStatus {
    let last_agent = activities.iter().rev().find(|a| a.kind() != "prompt");
    let Some(last) = last_agent else {
        return SessionStatus::Pending;
    };
    match last.kind() {
        "elicitation" => SessionStatus::AwaitingInput,
        "response" => SessionStatus::Complete,
        "error" => SessionStatus::Error,
        // thought / action
        _ if now - last.created_at > timing.stale_after => SessionStatus::Stale,
        _ => SessionStatus::Active,
    }
}

/// True when the agent did not answer (activity or external URL) within
/// `unresponsive_after` of the session's creation — Linear's "Did not
/// respond".
pub fn is_unresponsive(session: &Session, now: DateTime<Utc>, timing: SessionTiming) -> bool {
    let answered_at = session.first_agent_signal_at.unwrap_or(now);
    answered_at - session.created_at > timing.unresponsive_after
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_460_000 + secs, 0).unwrap()
    }

    fn activity(kind: &str, secs: i64) -> Activity {
        Activity {
            id: format!("{kind}-{secs}"),
            session_id: "s".into(),
            content: json!({"type": kind, "body": "x"}),
            ephemeral: false,
            signal: None,
            signal_metadata: None,
            user_id: "u".into(),
            source_comment_id: None,
            superseded: false,
            created_at: at(secs),
        }
    }

    fn status(kinds: &[(&str, i64)], now: i64) -> SessionStatus {
        let acts: Vec<Activity> = kinds.iter().map(|(k, s)| activity(k, *s)).collect();
        let refs: Vec<&Activity> = acts.iter().collect();
        derive_status(&refs, at(now), SessionTiming::default())
    }

    #[test]
    fn follows_the_last_agent_activity() {
        assert_eq!(status(&[], 0), SessionStatus::Pending);
        assert_eq!(status(&[("thought", 0)], 1), SessionStatus::Active);
        assert_eq!(status(&[("action", 0)], 1), SessionStatus::Active);
        assert_eq!(
            status(&[("thought", 0), ("elicitation", 1)], 2),
            SessionStatus::AwaitingInput
        );
        assert_eq!(
            status(&[("thought", 0), ("response", 1)], 2),
            SessionStatus::Complete
        );
        assert_eq!(status(&[("error", 0)], 2), SessionStatus::Error);
    }

    #[test]
    fn user_prompts_leave_status_unchanged() {
        assert_eq!(status(&[("prompt", 0)], 1), SessionStatus::Pending);
        assert_eq!(
            status(&[("elicitation", 0), ("prompt", 5)], 6),
            SessionStatus::AwaitingInput
        );
        assert_eq!(
            status(&[("response", 0), ("prompt", 5)], 6),
            SessionStatus::Complete
        );
    }

    #[test]
    fn active_turns_stale_after_thirty_minutes_and_recovers() {
        assert_eq!(status(&[("thought", 0)], 30 * 60), SessionStatus::Active);
        assert_eq!(status(&[("thought", 0)], 30 * 60 + 1), SessionStatus::Stale);
        assert_eq!(
            status(&[("thought", 0), ("thought", 4000)], 4001),
            SessionStatus::Active
        );
        // Only `active` goes stale.
        assert_eq!(
            status(&[("elicitation", 0)], 10_000),
            SessionStatus::AwaitingInput
        );
    }

    #[test]
    fn unresponsive_after_ten_seconds_without_an_answer() {
        let mut session = Session {
            id: "s".into(),
            issue_id: None,
            comment_id: None,
            creator_id: None,
            external_urls: vec![],
            plan: None,
            created_at: at(0),
            updated_at: at(0),
            started_at: None,
            ended_at: None,
            first_agent_signal_at: None,
        };
        let t = SessionTiming::default();
        assert!(!is_unresponsive(&session, at(10), t));
        assert!(is_unresponsive(&session, at(11), t));
        session.first_agent_signal_at = Some(at(9));
        assert!(!is_unresponsive(&session, at(1000), t));
        session.first_agent_signal_at = Some(at(12));
        assert!(is_unresponsive(&session, at(1000), t));
    }
}
