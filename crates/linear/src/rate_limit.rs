//! The per-token request budget, driven by Linear's `X-RateLimit-*` headers.
//!
//! Linear's limits change over time (1,500–5,000 requests/h have been seen), so
//! nothing is hard-coded: every response updates the budget, and calls are
//! spread out before the budget runs dry instead of hitting `RATELIMITED`.
//! All methods take `now`, so the policy is testable without a clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Below this share of the limit remaining, calls are spread until reset.
const SLOWDOWN_FRACTION: f64 = 0.10;

/// Upper bound on a single slow-down delay, so one call never parks for the
/// whole window (the caller's deadline matters more than perfect pacing).
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(30);

/// One dimension of the budget (requests or complexity points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowance {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<DateTime<Utc>>,
}

impl Allowance {
    /// Fraction of the limit still available (1.0 when unknown).
    pub fn headroom(&self) -> f64 {
        match (self.limit, self.remaining) {
            (Some(limit), Some(remaining)) if limit > 0 => remaining as f64 / limit as f64,
            _ => 1.0,
        }
    }
}

/// What the budget looks like now, for status pages and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimitSnapshot {
    pub requests: Allowance,
    pub complexity: Allowance,
    /// Cost of the last request (`X-Complexity`).
    pub last_complexity: Option<u64>,
    /// Set after a `RATELIMITED` answer: no call before this instant.
    pub paused_until: Option<DateTime<Utc>>,
}

impl RateLimitSnapshot {
    /// The smaller of the two headrooms (0.0 while paused).
    pub fn headroom(&self, now: DateTime<Utc>) -> f64 {
        if self.paused_until.is_some_and(|until| until > now) {
            return 0.0;
        }
        self.requests.headroom().min(self.complexity.headroom())
    }
}

/// What to do before the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Proceed,
    /// Go ahead after this delay (budget is low; spread the rest).
    Delay(Duration),
    /// The budget is exhausted until this instant; don't call.
    PausedUntil(DateTime<Utc>),
}

/// The budget of one token (all of a user's keys share Linear's bucket).
#[derive(Debug, Clone, Default)]
pub struct RateBudget {
    state: RateLimitSnapshot,
}

fn header_u64(headers: &http::HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

fn header_reset(headers: &http::HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    // Linear documents the reset as a UTC epoch in milliseconds.
    DateTime::from_timestamp_millis(header_u64(headers, name)? as i64)
}

impl RateBudget {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> RateLimitSnapshot {
        self.state
    }

    /// Records the rate-limit headers of any response (missing headers keep
    /// the previous values).
    pub fn observe_headers(&mut self, headers: &http::HeaderMap) {
        let s = &mut self.state;
        let merge = |a: &mut Allowance, prefix: &str| {
            if let Some(v) = header_u64(headers, &format!("{prefix}-limit")) {
                a.limit = Some(v);
            }
            if let Some(v) = header_u64(headers, &format!("{prefix}-remaining")) {
                a.remaining = Some(v);
            }
            if let Some(v) = header_reset(headers, &format!("{prefix}-reset")) {
                a.reset_at = Some(v);
            }
        };
        merge(&mut s.requests, "x-ratelimit-requests");
        merge(&mut s.complexity, "x-ratelimit-complexity");
        if let Some(v) = header_u64(headers, "x-complexity") {
            s.last_complexity = Some(v);
        }
    }

    /// Records a `RATELIMITED` answer: pause until `reset_at` (or the known
    /// request reset, or one minute when Linear tells us nothing).
    pub fn observe_rate_limited(
        &mut self,
        reset_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let until = reset_at
            .or(self.state.requests.reset_at.filter(|r| *r > now))
            .unwrap_or(now + chrono::Duration::seconds(60));
        self.state.paused_until = Some(until);
        self.state.requests.remaining = Some(0);
        until
    }

    /// Decides whether a call may go now.
    pub fn admit(&mut self, now: DateTime<Utc>) -> Admission {
        if let Some(until) = self.state.paused_until {
            if until > now {
                return Admission::PausedUntil(until);
            }
            self.state.paused_until = None;
        }
        let delays = [self.state.requests, self.state.complexity]
            .into_iter()
            .filter_map(|a| spread_delay(a, now));
        match delays.max() {
            Some(d) if !d.is_zero() => Admission::Delay(d.min(MAX_SLOWDOWN)),
            _ => Admission::Proceed,
        }
    }
}

/// When under the slow-down threshold, the time to reset divided over the
/// remaining allowance; `None` when there is enough headroom or no data.
fn spread_delay(a: Allowance, now: DateTime<Utc>) -> Option<Duration> {
    let (limit, remaining, reset_at) = (a.limit?, a.remaining?, a.reset_at?);
    if limit == 0 || remaining as f64 >= limit as f64 * SLOWDOWN_FRACTION {
        return None;
    }
    let until_reset = (reset_at - now).to_std().ok()?;
    Some(until_reset / (remaining.max(1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_772_460_000_000).unwrap()
    }

    fn headers(pairs: &[(&str, String)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn with_requests(limit: u64, remaining: u64, reset_in_secs: i64) -> RateBudget {
        let reset = (now() + chrono::Duration::seconds(reset_in_secs)).timestamp_millis();
        let mut b = RateBudget::new();
        b.observe_headers(&headers(&[
            ("X-RateLimit-Requests-Limit", limit.to_string()),
            ("X-RateLimit-Requests-Remaining", remaining.to_string()),
            ("X-RateLimit-Requests-Reset", reset.to_string()),
            ("X-Complexity", "12".into()),
            ("X-RateLimit-Complexity-Limit", "3000000".into()),
            ("X-RateLimit-Complexity-Remaining", "2999000".into()),
        ]));
        b
    }

    #[test]
    fn reads_headers_and_reports_headroom() {
        let b = with_requests(2500, 2000, 600);
        let s = b.snapshot();
        assert_eq!(s.requests.limit, Some(2500));
        assert_eq!(s.requests.remaining, Some(2000));
        assert_eq!(
            s.requests.reset_at,
            Some(now() + chrono::Duration::seconds(600))
        );
        assert_eq!(s.last_complexity, Some(12));
        assert!((s.headroom(now()) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn plenty_of_budget_proceeds_immediately() {
        assert_eq!(
            with_requests(2500, 2000, 600).admit(now()),
            Admission::Proceed
        );
        assert_eq!(RateBudget::new().admit(now()), Admission::Proceed);
    }

    #[test]
    fn low_budget_spreads_the_rest_until_reset() {
        // 100 of 2500 left (4 %), 200 s to reset: one call every 2 s.
        let mut b = with_requests(2500, 100, 200);
        assert_eq!(b.admit(now()), Admission::Delay(Duration::from_secs(2)));
        // Very low budget: the delay is capped.
        let mut b = with_requests(2500, 1, 3000);
        assert_eq!(b.admit(now()), Admission::Delay(MAX_SLOWDOWN));
    }

    #[test]
    fn rate_limited_pauses_until_reset_then_resumes() {
        let mut b = with_requests(2500, 5, 600);
        let reset = now() + chrono::Duration::seconds(90);
        assert_eq!(b.observe_rate_limited(Some(reset), now()), reset);
        assert_eq!(b.admit(now()), Admission::PausedUntil(reset));
        assert_eq!(b.snapshot().headroom(now()), 0.0);
        // After the reset a fresh response restores the budget.
        let later = reset + chrono::Duration::seconds(1);
        b.observe_headers(&headers(&[(
            "X-RateLimit-Requests-Remaining",
            "2500".into(),
        )]));
        assert_eq!(b.admit(later), Admission::Proceed);
        assert_eq!(b.snapshot().paused_until, None);
    }

    #[test]
    fn rate_limited_without_reset_uses_header_reset_or_a_minute() {
        let mut b = with_requests(2500, 0, 300);
        assert_eq!(
            b.observe_rate_limited(None, now()),
            now() + chrono::Duration::seconds(300)
        );
        let mut empty = RateBudget::new();
        assert_eq!(
            empty.observe_rate_limited(None, now()),
            now() + chrono::Duration::seconds(60)
        );
    }
}
