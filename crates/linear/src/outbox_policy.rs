//! When to (re)deliver a queued Linear write. The durable outbox table lives
//! in the store crate and the worker drives it; this is the rule, as a pure
//! function.
//!
//! Expiry rule:
//! - permanent errors (`INPUT_ERROR`, any other `userError`) give up at once —
//!   retrying writes to a deleted session forever has taken hosts down;
//! - routine progress (thoughts, actions) expires after 1 hour: stale progress
//!   is worth nothing and would only burn budget;
//! - everything else, including the final `response`/`error` and
//!   elicitations, is retried for 24 hours (never less), through transient
//!   errors, rate-limit pauses and auth outages;
//! - rate limits never count as failures: the item waits for the reset.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::ErrorClass;

/// How long routine progress stays worth delivering.
pub const ROUTINE_EXPIRY: Duration = Duration::from_secs(60 * 60);
/// How long final answers, elicitations and other writes are retried.
pub const IMPORTANT_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);
/// First retry delay after a transient error; doubles per attempt.
pub const RETRY_BASE: Duration = Duration::from_secs(10);
/// Cap of the retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(10 * 60);
/// Re-check interval while the workspace's credentials are broken.
pub const AUTH_RECHECK: Duration = Duration::from_secs(15 * 60);
/// Re-check interval while the workspace's installation needs reconnecting:
/// the check is a store read (no call to Linear until it is active again),
/// and a reconnect should be felt within seconds, not a quarter of an hour.
pub const RECONNECT_RECHECK: Duration = Duration::from_secs(30);
/// Wait used when a rate limit gave no reset time.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What a queued write is, which decides how long it stays worth sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxItemKind {
    /// Thoughts, actions, keep-alives.
    Routine,
    /// Elicitations, session updates, issue updates, comments.
    Important,
    /// The final `response` or `error` of a session.
    Final,
}

/// The facts about an outbox item the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxItemView {
    pub kind: OutboxItemKind,
    /// Delivery attempts so far (0 = never tried).
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When the last attempt failed (`None` if never attempted).
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Class of the last failure (`None` if never attempted).
    pub last_error: Option<ErrorClass>,
}

/// Why an item was dropped; recorded and reported, never silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// Linear said the request itself is wrong.
    PermanentError,
    /// Older than its expiry.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxDecision {
    DeliverNow,
    /// Retry after a transient error (or an auth outage) at this time.
    RetryAt(DateTime<Utc>),
    /// The token is rate-limited until this time; not a failure.
    WaitUntil(DateTime<Utc>),
    GiveUp(GiveUpReason),
}

impl OutboxItemKind {
    pub fn expiry(self) -> Duration {
        match self {
            Self::Routine => ROUTINE_EXPIRY,
            Self::Important | Self::Final => IMPORTANT_EXPIRY,
        }
    }
}

/// Transient retry delay: `min(RETRY_BASE × 2^(attempts−1), RETRY_CAP)`.
/// Deterministic; the worker may add jitter when scheduling.
pub fn retry_delay(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    RETRY_BASE.saturating_mul(1 << exp).min(RETRY_CAP)
}

/// Decides what to do with an outbox item at `now`.
pub fn decide(item: &OutboxItemView, now: DateTime<Utc>) -> OutboxDecision {
    if item.last_error == Some(ErrorClass::Permanent) {
        return OutboxDecision::GiveUp(GiveUpReason::PermanentError);
    }
    let expiry = chrono::Duration::from_std(item.kind.expiry()).expect("expiry fits");
    if now - item.created_at >= expiry {
        return OutboxDecision::GiveUp(GiveUpReason::Expired);
    }
    let after = |d: Duration| {
        let base = item.last_attempt_at.unwrap_or(now);
        base + chrono::Duration::from_std(d).expect("delay fits")
    };
    let at_or_now = |t: DateTime<Utc>| {
        if t <= now {
            OutboxDecision::DeliverNow
        } else {
            OutboxDecision::RetryAt(t)
        }
    };
    match item.last_error {
        None => OutboxDecision::DeliverNow,
        Some(ErrorClass::RateLimited { reset_at }) => {
            let until = reset_at.unwrap_or_else(|| after(DEFAULT_RATE_LIMIT_WAIT));
            if until <= now {
                OutboxDecision::DeliverNow
            } else {
                OutboxDecision::WaitUntil(until)
            }
        }
        Some(ErrorClass::Transient) => at_or_now(after(retry_delay(item.attempts))),
        // Both wait for a person (a fixed token, a reconnect); recheck now and
        // then rather than give up early.
        Some(ErrorClass::Auth) => at_or_now(after(AUTH_RECHECK)),
        Some(ErrorClass::NeedsReconnect) => at_or_now(after(RECONNECT_RECHECK)),
        Some(ErrorClass::Permanent) => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_460_000, 0).unwrap()
    }

    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    fn item(kind: OutboxItemKind, attempts: u32, err: Option<ErrorClass>) -> OutboxItemView {
        OutboxItemView {
            kind,
            attempts,
            created_at: t0(),
            last_attempt_at: err.map(|_| t0()),
            last_error: err,
        }
    }

    #[test]
    fn fresh_items_go_now() {
        let i = item(OutboxItemKind::Routine, 0, None);
        assert_eq!(decide(&i, t0()), OutboxDecision::DeliverNow);
    }

    #[test]
    fn permanent_errors_give_up_immediately_even_for_final() {
        let i = item(OutboxItemKind::Final, 1, Some(ErrorClass::Permanent));
        assert_eq!(
            decide(&i, t0()),
            OutboxDecision::GiveUp(GiveUpReason::PermanentError)
        );
    }

    #[test]
    fn transient_errors_back_off_exponentially_with_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(10));
        assert_eq!(retry_delay(2), Duration::from_secs(20));
        assert_eq!(retry_delay(4), Duration::from_secs(80));
        assert_eq!(retry_delay(30), RETRY_CAP);
        let i = item(OutboxItemKind::Important, 3, Some(ErrorClass::Transient));
        assert_eq!(decide(&i, t0()), OutboxDecision::RetryAt(t0() + secs(40)));
        assert_eq!(decide(&i, t0() + secs(40)), OutboxDecision::DeliverNow);
    }

    #[test]
    fn rate_limits_wait_for_the_reset_and_are_not_failures() {
        let reset = t0() + secs(900);
        let i = item(
            OutboxItemKind::Routine,
            7,
            Some(ErrorClass::RateLimited {
                reset_at: Some(reset),
            }),
        );
        assert_eq!(decide(&i, t0()), OutboxDecision::WaitUntil(reset));
        assert_eq!(decide(&i, reset), OutboxDecision::DeliverNow);
        let unknown = item(
            OutboxItemKind::Final,
            1,
            Some(ErrorClass::RateLimited { reset_at: None }),
        );
        assert_eq!(
            decide(&unknown, t0()),
            OutboxDecision::WaitUntil(t0() + secs(60))
        );
    }

    #[test]
    fn routine_expires_after_an_hour_final_only_after_a_day() {
        let routine = item(OutboxItemKind::Routine, 2, Some(ErrorClass::Transient));
        assert_eq!(
            decide(&routine, t0() + secs(3600)),
            OutboxDecision::GiveUp(GiveUpReason::Expired)
        );
        let fin = item(OutboxItemKind::Final, 40, Some(ErrorClass::Transient));
        assert_eq!(
            decide(&fin, t0() + secs(23 * 3600)),
            OutboxDecision::DeliverNow
        );
        assert_eq!(
            decide(&fin, t0() + secs(24 * 3600)),
            OutboxDecision::GiveUp(GiveUpReason::Expired)
        );
    }

    #[test]
    fn auth_outages_recheck_periodically() {
        let i = item(OutboxItemKind::Final, 1, Some(ErrorClass::Auth));
        assert_eq!(decide(&i, t0()), OutboxDecision::RetryAt(t0() + secs(900)));
    }

    #[test]
    fn a_workspace_needing_reconnect_waits_instead_of_giving_up() {
        let i = item(OutboxItemKind::Final, 1, Some(ErrorClass::NeedsReconnect));
        assert_eq!(decide(&i, t0()), OutboxDecision::RetryAt(t0() + secs(30)));
    }
}
