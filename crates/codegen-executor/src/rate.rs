//! Our side of Codegen's rate limits, so we (almost) never see a 429.
//!
//! Codegen limits per token: create 10/min, reads 60/30 s, logs 60/60 s
//! (resume/stop/ban are unstated; we count them as reads, which is the
//! conservative reading). One [`RatePermit`] is shared by every task that
//! talks to one organization — cloning a [`crate::CodegenClient`] shares it.
//!
//! The default, [`GovernorPermits`], is in-process. Several replicas sharing
//! a token need a shared budget: implement [`RatePermit`] on top of the
//! database (the store crate) and pass it to
//! [`crate::CodegenClient::with_rate_permit`].

use futures::future::BoxFuture;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// Which of Codegen's budgets a call spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointClass {
    Create,
    /// get/list runs, users, organizations, repos, integrations, MCP
    /// providers, and resume/stop/ban (limits unstated: counted here).
    Read,
    Logs,
}

impl EndpointClass {
    pub const ALL: [EndpointClass; 3] = [
        EndpointClass::Create,
        EndpointClass::Read,
        EndpointClass::Logs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointClass::Create => "create",
            EndpointClass::Read => "read",
            EndpointClass::Logs => "logs",
        }
    }
}

/// At most `max` calls in any window of `per`, with up to `burst` of them
/// back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub per: Duration,
    pub burst: u32,
}

impl RateLimit {
    /// GCRA quota that never exceeds `max` in *any* window of `per` (Codegen
    /// counts in sliding windows): after a burst of `b`, cells refill at
    /// `per / (max - b)`, so a window holds at most `b + (max - b) = max`.
    fn quota(self) -> Quota {
        let max = self.max.max(1);
        let burst = self.burst.clamp(1, max);
        let steady = (max - burst).max(1);
        let period = (self.per / steady).max(Duration::from_millis(1));
        Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst ≥ 1"))
    }
}

/// Per-class limits; defaults are Codegen's documented numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub create: RateLimit,
    pub read: RateLimit,
    pub logs: RateLimit,
}

/// Codegen's documented limits, as the configuration's defaults state them.
impl Default for RateLimits {
    fn default() -> Self {
        use cyrus_core::config::defaults;
        RateLimits {
            create: RateLimit {
                max: defaults::CREATE_PER_MINUTE,
                per: Duration::from_secs(60),
                burst: 5,
            },
            read: RateLimit {
                max: defaults::READS_PER_30S,
                per: Duration::from_secs(30),
                burst: 10,
            },
            logs: RateLimit {
                max: defaults::LOGS_PER_MINUTE,
                per: Duration::from_secs(60),
                burst: 10,
            },
        }
    }
}

impl RateLimits {
    pub fn get(&self, class: EndpointClass) -> RateLimit {
        match class {
            EndpointClass::Create => self.create,
            EndpointClass::Read => self.read,
            EndpointClass::Logs => self.logs,
        }
    }
}

/// How much of one budget is left, for status pages and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    pub class: EndpointClass,
    pub limit: RateLimit,
    /// Calls made in the last `limit.per`.
    pub used_in_window: u32,
}

impl Headroom {
    pub fn remaining(&self) -> u32 {
        self.limit.max.saturating_sub(self.used_in_window)
    }
}

/// Grants permission to make one call of a class, waiting as needed.
/// Implementations must be shared by every caller using the same token.
pub trait RatePermit: Send + Sync + 'static {
    /// Waits until a call of `class` may be made and counts it. Returns how
    /// long it waited.
    fn acquire(&self, class: EndpointClass) -> BoxFuture<'_, Duration>;

    /// Current headroom per class.
    fn headroom(&self) -> Vec<Headroom>;
}

/// governor clock on tokio's clock, so paused-time tests and the benchmark's
/// compressed time drive the limiter too.
#[derive(Clone, Copy, Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

struct ClassState {
    limit: RateLimit,
    limiter: Limiter,
    /// Times of calls in the last window, for headroom reporting only.
    recent: Mutex<VecDeque<tokio::time::Instant>>,
}

/// In-process limiter set (one per organization/token).
pub struct GovernorPermits {
    clock: TokioClock,
    classes: [ClassState; 3],
}

impl GovernorPermits {
    pub fn new(limits: RateLimits) -> GovernorPermits {
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        let state = |class| {
            let limit = limits.get(class);
            ClassState {
                limit,
                limiter: RateLimiter::direct_with_clock(limit.quota(), clock),
                recent: Mutex::new(VecDeque::new()),
            }
        };
        GovernorPermits {
            clock,
            classes: [
                state(EndpointClass::Create),
                state(EndpointClass::Read),
                state(EndpointClass::Logs),
            ],
        }
    }

    fn state(&self, class: EndpointClass) -> &ClassState {
        &self.classes[class as usize]
    }
}

impl ClassState {
    fn used_in_window(&self, now: tokio::time::Instant) -> u32 {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limit.per)
        {
            recent.pop_front();
        }
        recent.len() as u32
    }
}

impl RatePermit for GovernorPermits {
    fn acquire(&self, class: EndpointClass) -> BoxFuture<'_, Duration> {
        Box::pin(async move {
            let state = self.state(class);
            let started = tokio::time::Instant::now();
            loop {
                match state.limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.clock.now());
                        // Never spin: wait at least a millisecond.
                        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                    }
                }
            }
            let now = tokio::time::Instant::now();
            state.used_in_window(now);
            state
                .recent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(now);
            let waited = now.duration_since(started);
            if !waited.is_zero() {
                metrics::histogram!("codegen_rate_limit_wait_seconds", "class" => class.as_str())
                    .record(waited.as_secs_f64());
            }
            waited
        })
    }

    fn headroom(&self) -> Vec<Headroom> {
        let now = tokio::time::Instant::now();
        EndpointClass::ALL
            .into_iter()
            .map(|class| {
                let state = self.state(class);
                Headroom {
                    class,
                    limit: state.limit,
                    used_in_window: state.used_in_window(now),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls made by a greedy caller in each sliding window never exceed the
    /// limit (paused tokio time: no wall-clock sleeping).
    #[tokio::test(start_paused = true)]
    async fn never_exceeds_max_in_any_window() {
        let limit = RateLimit {
            max: 6,
            per: Duration::from_secs(30),
            burst: 3,
        };
        let permits = GovernorPermits::new(RateLimits {
            read: limit,
            ..RateLimits::default()
        });
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..20 {
            permits.acquire(EndpointClass::Read).await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u - *t < limit.per).count();
            assert!(
                in_window <= 6,
                "window from {t:?} holds {in_window}: {times:?}"
            );
        }
        // And it is not needlessly slow: 20 calls within ~ (20-3)/3 windows.
        assert!(
            times[19] <= Duration::from_secs(30 * 17 / 3 + 1),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn headroom_counts_the_window() {
        let permits = GovernorPermits::new(RateLimits::default());
        for _ in 0..4 {
            permits.acquire(EndpointClass::Logs).await;
        }
        let logs = permits
            .headroom()
            .into_iter()
            .find(|h| h.class == EndpointClass::Logs)
            .unwrap();
        assert_eq!(logs.used_in_window, 4);
        assert_eq!(logs.remaining(), 56);
        tokio::time::advance(Duration::from_secs(61)).await;
        let logs = permits
            .headroom()
            .into_iter()
            .find(|h| h.class == EndpointClass::Logs)
            .unwrap();
        assert_eq!(logs.used_in_window, 0);
    }
}
