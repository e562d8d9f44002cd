//! Codegen's rate limits held for the whole fleet, not per process.
//!
//! Codegen counts calls per API token; every replica uses the same token, so
//! an in-process limiter per replica would let N replicas make N times the
//! allowed calls (and collect 429s). [`StorePermits`] keeps one token bucket
//! per endpoint class in the database (`Store::take_rate_token`, atomic on
//! SQLite and PostgreSQL), so the creation limit (10/min) and the read and
//! log budgets hold for all replicas combined.
//!
//! Bucket shape: `burst` tokens of capacity, refilled at
//! `(max - burst) / per`, so no window of `per` grants more than
//! `burst + (max - burst) = max` (the same argument as the in-process
//! GCRA quota in `cyrus_codegen_executor::rate`). The window is stretched by
//! [`WINDOW_MARGIN`] because a token is granted a few milliseconds before
//! the request reaches Codegen, whose sliding window starts at arrival: two
//! calls granted exactly one window apart can arrive a little less than one
//! window apart.

use cyrus_codegen_executor::rate::{EndpointClass, Headroom, RateLimit, RateLimits, RatePermit};
use cyrus_store::{RateDecision, Store};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Extra fraction of every window (2 %: 60 s becomes 61.2 s) that absorbs
/// the delay between taking a token and the request arriving upstream.
pub const WINDOW_MARGIN: f64 = 0.02;
/// Longest pause between attempts while the database does not answer.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// Longest single wait for a token; the bucket is asked again afterwards, so
/// a refill observed by another replica is never overslept.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// One bucket's settings and this replica's recent grants.
struct ClassBucket {
    name: String,
    limit: RateLimit,
    capacity: u32,
    refill_per_ms: f64,
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
            let max = limit.max.max(1);
            let capacity = limit.burst.clamp(1, max);
            let steady = f64::from((max - capacity).max(1));
            let window_ms = limit.per.as_secs_f64() * 1000.0 * (1.0 + WINDOW_MARGIN);
            ClassBucket {
                name: format!("codegen:{org_id}:{}", class.as_str()),
                limit,
                capacity,
                refill_per_ms: steady / window_ms.max(1.0),
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
                    .take_rate_token(&bucket.name, bucket.capacity, bucket.refill_per_ms, now_ms)
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

    /// This replica's calls in the window; when the shared bucket was found
    /// empty within the last refill interval, the whole budget counts as
    /// used, so the poller backs off even if other replicas spent it.
    fn headroom(&self) -> Vec<Headroom> {
        let now = Instant::now();
        EndpointClass::ALL
            .into_iter()
            .map(|class| {
                let bucket = self.bucket(class);
                let mut view = bucket.view();
                bucket.forget_old(&mut view, now);
                let refill = Duration::from_secs_f64(1.0 / bucket.refill_per_ms / 1000.0);
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

    /// Two permit sets on one store (two replicas) share one burst: the
    /// second replica's first create has to wait once the first replica
    /// spent the whole burst.
    #[tokio::test]
    async fn replicas_share_one_bucket() {
        let (_dir, store) = store().await;
        let limit = RateLimit {
            max: 10,
            per: Duration::from_secs(3600),
            burst: 3,
        };
        let a = StorePermits::new(store.clone(), 42, limits(limit));
        let b = StorePermits::new(store.clone(), 42, limits(limit));
        for _ in 0..3 {
            a.acquire(EndpointClass::Create).await;
        }
        // The bucket is empty; the refill takes ~ 3600 s / 7: b must not get
        // a token now. Ask the store directly with b's bucket settings.
        let bucket = b.bucket(EndpointClass::Create);
        let now = chrono::Utc::now().timestamp_millis();
        let decision = store
            .take_rate_token(&bucket.name, bucket.capacity, bucket.refill_per_ms, now)
            .await
            .expect("take");
        match decision {
            RateDecision::WaitMs(ms) => assert!(ms > 500_000, "waits {ms} ms"),
            RateDecision::Granted => panic!("a fourth create was granted within the burst of 3"),
        }
        // Another organization has its own budget.
        let other = StorePermits::new(store, 43, limits(limit));
        let waited = other.acquire(EndpointClass::Create).await;
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    }

    #[tokio::test]
    async fn headroom_reports_an_exhausted_shared_bucket_as_used_up() {
        let (_dir, store) = store().await;
        let limit = RateLimit {
            max: 4,
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
        // b finds the bucket empty (and would wait ~ 30 min): cancel the
        // wait after the first answer and look at b's headroom.
        let _ =
            tokio::time::timeout(Duration::from_secs(1), b.acquire(EndpointClass::Create)).await;
        assert_eq!(create(&b).remaining(), 0);
    }

    #[tokio::test]
    async fn refill_never_exceeds_the_limit_within_a_window() {
        // burst + refill × window ≤ max for Codegen's documented limits.
        let (_dir, store) = store().await;
        let permits = StorePermits::new(store, 42, RateLimits::default());
        for class in EndpointClass::ALL {
            let bucket = permits.bucket(class);
            let window_ms = bucket.limit.per.as_secs_f64() * 1000.0;
            let granted = f64::from(bucket.capacity) + bucket.refill_per_ms * window_ms;
            assert!(
                granted <= f64::from(bucket.limit.max),
                "{class:?}: {granted}"
            );
            assert!(
                granted > f64::from(bucket.limit.max) - 1.0,
                "{class:?}: {granted} wastes budget"
            );
        }
    }
}
