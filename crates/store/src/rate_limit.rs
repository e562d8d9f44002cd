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
