//! Webhooks first: work that may wait a moment yields the worker's core to
//! webhook intake while many deliveries are being answered.
//!
//! Linear waits for the answer to each webhook and sends again what it
//! does not get in time, while a new session's acknowledgement has 10 s.
//! On a busy core every task competes for the CPU on equal terms, so in a
//! burst of delegations the acceptance of earlier sessions (parsing, the
//! acknowledgement's round trip to Linear, the task's write) slowed the
//! answers to later webhooks to the pace of the whole pipeline. Now that
//! work — inline acceptance, and the delivery processor when all it holds
//! is new sessions and issue edits — waits while
//! webhooks arrive faster than about 800 a second ([`BUSY`]), for at most
//! [`DEFER_AT_MOST`] after its delivery arrived, and then goes ahead whatever the load: a
//! burst is answered first and acknowledged right after, a sustained
//! overload is acknowledged that much later, and under light load nothing
//! waits at all.

use std::time::Duration;
use tokio::time::Instant;

/// Webhooks arrived within the last one to two [`BUCKET`]s from which
/// intake counts as busy: from about 800 a second. A steady 500/s is not
/// busy; a burst from a sender's pool of connections is.
const BUSY: u32 = 16;
/// The arrival count's granularity; a waiting piece of work looks again
/// this often.
const BUCKET: Duration = Duration::from_millis(10);

/// The longest deferrable work waits after its delivery arrived: a small
/// part of the acknowledgement's 10 s, which the work itself then has.
const DEFER_AT_MOST: Duration = Duration::from_secs(2);

/// How many webhooks arrived lately, and the turn of the work waiting for
/// fewer.
pub(crate) struct IntakeLoad {
    start: Instant,
    arrivals: std::sync::Mutex<Arrivals>,
    /// Held by the one waiter that watches the count; the others queue
    /// behind it (in order, so older work goes first) instead of each
    /// waking every bucket.
    turn: tokio::sync::Mutex<()>,
}

/// Arrivals in the current bucket and in the one before it.
#[derive(Default)]
struct Arrivals {
    bucket: u64,
    now: u32,
    before: u32,
}

impl Default for IntakeLoad {
    fn default() -> Self {
        IntakeLoad {
            start: Instant::now(),
            arrivals: Default::default(),
            turn: Default::default(),
        }
    }
}

impl IntakeLoad {
    fn bucket(&self) -> u64 {
        (self.start.elapsed().as_nanos() / BUCKET.as_nanos()) as u64
    }

    /// Arrivals as of now: the counts moved on to the current bucket. The
    /// bucket is read under the lock: read before it, a thread that waited
    /// for the lock could move the counts back to a bucket another had
    /// already left, and wipe both.
    fn current(&self) -> std::sync::MutexGuard<'_, Arrivals> {
        let mut a = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = self.bucket();
        if a.bucket != bucket {
            a.before = if a.bucket + 1 == bucket { a.now } else { 0 };
            a.now = 0;
            a.bucket = bucket;
        }
        a
    }

    /// Counts a webhook that has arrived.
    pub(crate) fn arrived(&self) {
        self.current().now += 1;
    }

    fn busy(&self) -> bool {
        let a = self.current();
        a.now + a.before >= BUSY
    }

    /// Returns once intake is no longer busy, or at `deadline` (a
    /// delivery's arrival plus [`DEFER_AT_MOST`]) if that is sooner.
    pub(crate) async fn yield_until_quiet(&self, deadline: Instant) {
        if !self.busy() {
            return;
        }
        let Ok(_turn) = tokio::time::timeout_at(deadline, self.turn.lock()).await else {
            return;
        };
        while self.busy() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep((deadline - now).min(BUCKET)).await;
        }
    }
}

/// When work about a delivery received at `received_at_ms` (wall clock)
/// stops waiting for intake, read at `now_ms`. Never more than
/// [`DEFER_AT_MOST`] from now: the arrival may have been stamped by another
/// replica's clock, or before this one stepped back.
pub(crate) fn deadline(received_at_ms: i64, now_ms: i64) -> Instant {
    let most = DEFER_AT_MOST.as_millis() as i64;
    let left = (received_at_ms + most - now_ms).clamp(0, most);
    Instant::now() + Duration::from_millis(left as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing waits under light load; work waits while webhooks keep
    /// arriving fast and goes on once they stop, or at its deadline if they
    /// do not.
    #[tokio::test(start_paused = true)]
    async fn work_waits_for_a_busy_intake_up_to_its_deadline() {
        let load = std::sync::Arc::new(IntakeLoad::default());
        let far = Instant::now() + Duration::from_secs(60);
        for _ in 0..BUSY - 1 {
            load.arrived();
        }
        tokio::time::timeout(Duration::from_millis(1), load.yield_until_quiet(far))
            .await
            .expect("fewer than BUSY arrivals: no wait");

        // A burst: BUSY arrivals every bucket for a second.
        let burst = {
            let load = load.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    for _ in 0..BUSY {
                        load.arrived();
                    }
                    tokio::time::sleep(BUCKET).await;
                }
            })
        };
        tokio::time::sleep(BUCKET).await;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let load = load.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    load.yield_until_quiet(far).await;
                    started.elapsed()
                })
            })
            .collect();
        burst.await.unwrap();
        for waiter in waiters {
            let waited = waiter.await.unwrap();
            assert!(
                waited >= Duration::from_millis(980) && waited <= Duration::from_millis(1_030),
                "waited {waited:?} for the rest of a burst of a second"
            );
        }

        // Busy to the end: the deadline ends the wait.
        for _ in 0..BUSY {
            load.arrived();
        }
        let started = Instant::now();
        let keep_busy = busy_for_ever(&load);
        load.yield_until_quiet(started + Duration::from_secs(2))
            .await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(2),
            "not past its deadline"
        );
        keep_busy.abort();
    }

    /// BUSY arrivals every bucket until aborted.
    fn busy_for_ever(load: &std::sync::Arc<IntakeLoad>) -> tokio::task::JoinHandle<()> {
        let load = load.clone();
        tokio::spawn(async move {
            loop {
                for _ in 0..BUSY {
                    load.arrived();
                }
                tokio::time::sleep(BUCKET).await;
            }
        })
    }

    /// Work queued behind a waiter with a later deadline still goes on at
    /// its own.
    #[tokio::test(start_paused = true)]
    async fn a_queued_waiter_keeps_its_own_deadline() {
        let load = std::sync::Arc::new(IntakeLoad::default());
        let keep_busy = busy_for_ever(&load);
        tokio::task::yield_now().await;
        let start = Instant::now();
        let holder = {
            let load = load.clone();
            tokio::spawn(async move {
                load.yield_until_quiet(start + Duration::from_secs(60))
                    .await;
                start.elapsed()
            })
        };
        tokio::task::yield_now().await;
        load.yield_until_quiet(start + Duration::from_millis(500))
            .await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        keep_busy.abort();
        let held = holder.await.unwrap();
        assert!(
            held < Duration::from_secs(60),
            "the holder went on once quiet: {held:?}"
        );
    }

    #[test]
    fn the_deadline_counts_from_the_deliverys_arrival() {
        let now = Instant::now();
        let d = deadline(10_000, 10_500);
        assert!(d >= now + Duration::from_millis(1_500) && d <= now + Duration::from_millis(1_600));
        // Long past: no wait at all.
        assert!(deadline(0, 60_000) <= Instant::now());
        // Stamped a minute ahead of this clock: still at most DEFER_AT_MOST.
        let ahead = deadline(70_000, 10_000);
        assert!(ahead <= Instant::now() + DEFER_AT_MOST, "{:?}", ahead - now);
    }
}
