//! A token bucket kept in the database, so several replicas share one API
//! budget (e.g. Codegen's per-organisation limits).

use crate::connect::in_write_tx;
use crate::{RateDecision, Result, Store, UnixMillis};

impl Store {
    /// Takes one token from `bucket` (created full on first use) holding at
    /// most `capacity` tokens refilled at `refill_per_ms` tokens per
    /// millisecond. Atomic across replicas: the tokens granted in any window
    /// never exceed `capacity + refill`. `WaitMs(n)` says when the next
    /// token will be there. `now` going backwards never adds tokens.
    pub async fn take_rate_token(
        &self,
        bucket: &str,
        capacity: u32,
        refill_per_ms: f64,
        now: UnixMillis,
    ) -> Result<RateDecision> {
        let capacity = f64::from(capacity);
        let lock_key = format!("cyrus:rate:{bucket}");
        let decision = in_write_tx!(self, &lock_key, tx => {
            let row: Option<(f64, i64)> =
                sqlx::query_as("SELECT tokens, updated_at FROM rate_buckets WHERE bucket = $1")
                    .bind(bucket)
                    .fetch_optional(&mut *tx)
                    .await?;
            let (stored, updated_at) = row.unwrap_or((capacity, now));
            let elapsed = now.saturating_sub(updated_at).max(0) as f64;
            let available = (stored + elapsed * refill_per_ms.max(0.0)).min(capacity);
            let (left, decision) = if available >= 1.0 {
                (available - 1.0, RateDecision::Granted)
            } else if refill_per_ms > 0.0 {
                let wait = ((1.0 - available) / refill_per_ms).ceil().max(1.0);
                (available, RateDecision::WaitMs(wait.min(u64::MAX as f64) as u64))
            } else {
                (available, RateDecision::WaitMs(u64::MAX))
            };
            sqlx::query(
                "INSERT INTO rate_buckets (bucket, tokens, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (bucket) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
            )
            .bind(bucket)
            .bind(left)
            .bind(now.max(updated_at))
            .execute(&mut *tx)
            .await?;
            decision
        });
        Ok(decision)
    }
}

impl Store {
    /// Takes a slot in `bucket`'s sliding window: granted when fewer than
    /// `max` slots were granted in the last `window_ms` (the window ends at
    /// `now`), else `WaitMs` until the oldest of them leaves the window.
    /// Unlike a token bucket this allows exactly `max` per window — never
    /// more, and in steady state no fewer — which is how Codegen counts.
    /// Atomic across replicas.
    pub async fn take_window_slot(
        &self,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now: UnixMillis,
    ) -> Result<RateDecision> {
        let lock_key = format!("cyrus:window:{bucket}");
        let decision = in_write_tx!(self, &lock_key, tx => {
            sqlx::query("DELETE FROM rate_grants WHERE bucket = $1 AND granted_at <= $2")
                .bind(bucket)
                .bind(now.saturating_sub(window_ms))
                .execute(&mut *tx)
                .await?;
            let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(granted_at) FROM rate_grants WHERE bucket = $1",
            )
            .bind(bucket)
            .fetch_one(&mut *tx)
            .await?;
            if count < i64::from(max.max(1)) {
                sqlx::query("INSERT INTO rate_grants (bucket, granted_at) VALUES ($1, $2)")
                    .bind(bucket)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                RateDecision::Granted
            } else {
                let free_at = oldest.unwrap_or(now).saturating_add(window_ms);
                RateDecision::WaitMs(free_at.saturating_sub(now).max(1) as u64)
            }
        });
        Ok(decision)
    }
}
