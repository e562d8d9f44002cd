//! Codegen's rate limits held for the whole fleet, not per process.
//!
//! Codegen counts calls per API token; every replica uses the same token, so
//! an in-process limiter per replica would let N replicas make N times the
//! allowed calls (and collect 429s). [`StorePermits`] keeps one token bucket
//! per endpoint class in the database (`Store::take_rate_token`, atomic on
//! SQLite and PostgreSQL), so the creation limit (10/min) and the read and
//! log budgets hold for all replicas combined.
//!
//! The limit is a sliding window, as Codegen counts: at most `max` grants in
//! any `per` (`Store::take_window_slot`). A token bucket would have to trade
//! throughput for safety (`burst + refill × per ≤ max`, so steady throughput
//! falls short of `max` by the burst); the window gives exactly `max` per
//! window in steady state and never more. The window is stretched by
//! [`WINDOW_MARGIN`] plus [`WINDOW_SLACK_MS`] because a slot is granted a few
//! milliseconds (more on a loaded machine) before the
//! request reaches Codegen, whose window starts at arrival: two calls granted
//! exactly one window apart can arrive a little less than one window apart.

use cyrus_codegen_executor::rate::{EndpointClass, Headroom, RateLimit, RateLimits, RatePermit};
use cyrus_store::{RateDecision, Store};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Extra fraction of every window (2 %: 60 s becomes 61.2 s) that absorbs
/// the delay between taking a token and the request arriving upstream.
pub const WINDOW_MARGIN: f64 = 0.02;
/// A fixed stretch on top, for the same delay: on a busy host it is tens to
/// hundreds of milliseconds whatever the window's length, which the relative
/// margin does not cover for short windows (a simulator's compressed clock).
pub const WINDOW_SLACK_MS: f64 = 1_000.0;
/// Longest pause between attempts while the database does not answer.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// Longest single wait for a token; the bucket is asked again afterwards, so
/// a refill observed by another replica is never overslept.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// One bucket's settings and this replica's recent grants.
struct ClassBucket {
    name: String,
    limit: RateLimit,
    /// `limit.per` stretched by [`WINDOW_MARGIN`] and [`WINDOW_SLACK_MS`],
    /// in milliseconds.
    window_ms: i64,
    /// This replica's grants in the last window, and when the shared bucket
    /// was last found empty — for [`RatePermit::headroom`], which must not
    /// block on the database.
    local: Mutex<LocalView>,
}

#[derive(Default)]
struct LocalView {
    grants: VecDeque<Instant>,
    empty_at: Option<Instant>,
}

/// A [`RatePermit`] backed by the store's token buckets, shared by every
/// replica using the same database and Codegen organization.
pub struct StorePermits {
    store: Store,
    classes: [ClassBucket; 3],
}

impl StorePermits {
    /// Buckets named `codegen:<org_id>:<class>`: one budget per organization
    /// token, whichever replica spends it.
    pub fn new(store: Store, org_id: i64, limits: RateLimits) -> StorePermits {
        let bucket = |class: EndpointClass| {
            let limit = limits.get(class);
            let window_ms =
                limit.per.as_secs_f64() * 1000.0 * (1.0 + WINDOW_MARGIN) + WINDOW_SLACK_MS;
            ClassBucket {
                name: format!("codegen:{org_id}:{}", class.as_str()),
                limit,
                window_ms: window_ms.ceil().max(1.0) as i64,
                local: Mutex::new(LocalView::default()),
            }
        };
        StorePermits {
            store,
            classes: [
                bucket(EndpointClass::Create),
                bucket(EndpointClass::Read),
                bucket(EndpointClass::Logs),
            ],
        }
    }

    fn bucket(&self, class: EndpointClass) -> &ClassBucket {
        match class {
            EndpointClass::Create => &self.classes[0],
            EndpointClass::Read => &self.classes[1],
            EndpointClass::Logs => &self.classes[2],
        }
    }
}

impl ClassBucket {
    fn view(&self) -> std::sync::MutexGuard<'_, LocalView> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_old(&self, view: &mut LocalView, now: Instant) {
        while view
            .grants
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limit.per)
        {
            view.grants.pop_front();
        }
    }
}

impl RatePermit for StorePermits {
    fn acquire(&self, class: EndpointClass) -> BoxFuture<'_, Duration> {
        Box::pin(async move {
            let bucket = self.bucket(class);
            let started = tokio::time::Instant::now();
            let mut error_backoff = Duration::from_millis(100);
            loop {
                let now_ms = chrono::Utc::now().timestamp_millis();
                match self
                    .store
                    .take_window_slot(&bucket.name, bucket.limit.max, bucket.window_ms, now_ms)
                    .await
                {
                    Ok(RateDecision::Granted) => break,
                    Ok(RateDecision::WaitMs(ms)) => {
                        bucket.view().empty_at = Some(Instant::now());
                        let wait =
                            Duration::from_millis(ms).clamp(Duration::from_millis(1), MAX_WAIT);
                        tokio::time::sleep(wait).await;
                    }
                    Err(err) => {
                        // Without the database no replica can prove the
                        // fleet is under the limit: wait rather than guess.
                        tracing::warn!(
                            bucket = %bucket.name,
                            error = %err,
                            "shared rate limit: the store did not answer; retrying"
                        );
                        metrics::counter!("codegen_rate_limit_store_errors_total", "class" => class.as_str())
                            .increment(1);
                        tokio::time::sleep(error_backoff).await;
                        error_backoff = (error_backoff * 2).min(MAX_ERROR_BACKOFF);
                    }
                }
            }
            let now = Instant::now();
            {
                let mut view = bucket.view();
                bucket.forget_old(&mut view, now);
                view.grants.push_back(now);
            }
            let waited = started.elapsed();
            if !waited.is_zero() {
                metrics::histogram!("codegen_rate_limit_wait_seconds", "class" => class.as_str())
                    .record(waited.as_secs_f64());
            }
            waited
        })
    }

    /// This replica's calls in the window; when the shared window was found
    /// full within the last slot interval (`per / max`), the whole budget
    /// counts as used, so the poller backs off even if other replicas spent
    /// it.
    fn headroom(&self) -> Vec<Headroom> {
        let now = Instant::now();
        EndpointClass::ALL
            .into_iter()
            .map(|class| {
                let bucket = self.bucket(class);
                let mut view = bucket.view();
                bucket.forget_old(&mut view, now);
                let refill = Duration::from_millis(
                    (bucket.window_ms / i64::from(bucket.limit.max.max(1))) as u64,
                );
                let exhausted = view
                    .empty_at
                    .is_some_and(|t| now.duration_since(t) < refill);
                let used = if exhausted {
                    bucket.limit.max
                } else {
                    view.grants.len() as u32
                };
                Headroom {
                    class,
                    limit: bucket.limit,
                    used_in_window: used,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("rate.db").display());
        (dir, Store::connect(&url).await.expect("store"))
    }

    fn limits(create: RateLimit) -> RateLimits {
        RateLimits {
            create,
            ..RateLimits::default()
        }
    }

    /// Two permit sets on one store (two replicas) share one window: once
    /// the first replica has spent it, the second must wait.
    #[tokio::test]
    async fn replicas_share_one_window() {
        let (_dir, store) = store().await;
        let limit = RateLimit {
            max: 3,
            per: Duration::from_secs(3600),
            burst: 3,
        };
        let a = StorePermits::new(store.clone(), 42, limits(limit));
        let b = StorePermits::new(store.clone(), 42, limits(limit));
        for _ in 0..3 {
            a.acquire(EndpointClass::Create).await;
        }
        // The window is full for an hour: b must not get a slot now. Ask the
        // store directly with b's window settings.
        let bucket = b.bucket(EndpointClass::Create);
        let now = chrono::Utc::now().timestamp_millis();
        let decision = store
            .take_window_slot(&bucket.name, bucket.limit.max, bucket.window_ms, now)
            .await
            .expect("take");
        match decision {
            RateDecision::WaitMs(ms) => assert!(ms > 3_000_000, "waits {ms} ms"),
            RateDecision::Granted => panic!("a fourth create was granted within a window of 3"),
        }
        // Another organization has its own budget.
        let other = StorePermits::new(store, 43, limits(limit));
        let waited = other.acquire(EndpointClass::Create).await;
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    }

    #[tokio::test]
    async fn headroom_reports_a_full_shared_window_as_used_up() {
        let (_dir, store) = store().await;
        let limit = RateLimit {
            max: 2,
            per: Duration::from_secs(3600),
            burst: 2,
        };
        let a = StorePermits::new(store.clone(), 42, limits(limit));
        let b = StorePermits::new(store, 42, limits(limit));
        a.acquire(EndpointClass::Create).await;
        a.acquire(EndpointClass::Create).await;
        let create = |p: &StorePermits| {
            p.headroom()
                .into_iter()
                .find(|h| h.class == EndpointClass::Create)
                .expect("create headroom")
        };
        assert_eq!(create(&a).used_in_window, 2);
        assert_eq!(create(&b).used_in_window, 0);
        // b finds the window full (and would wait ~ 1 h): cancel the wait
        // after the first answer and look at b's headroom.
        let _ =
            tokio::time::timeout(Duration::from_secs(1), b.acquire(EndpointClass::Create)).await;
        assert_eq!(create(&b).remaining(), 0);
    }

    #[tokio::test]
    async fn windows_are_stretched_by_the_margin_and_keep_the_limits() {
        let (_dir, store) = store().await;
        let limits = RateLimits::default();
        let permits = StorePermits::new(store, 42, limits);
        for class in EndpointClass::ALL {
            let bucket = permits.bucket(class);
            let per_ms = limits.get(class).per.as_millis() as i64;
            assert_eq!(bucket.limit.max, limits.get(class).max, "{class:?}");
            assert!(
                bucket.window_ms > per_ms,
                "{class:?}: {} ms",
                bucket.window_ms
            );
            assert!(
                bucket.window_ms <= per_ms + per_ms / 20 + WINDOW_SLACK_MS as i64,
                "{class:?}: margin over 5 % plus the slack"
            );
        }
    }
}
