//! A token bucket kept in the database, so several replicas share one API
//! budget (e.g. Codegen's per-organisation limits).

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
        todo!("{bucket}{capacity}{refill_per_ms}{now}")
    }
}
