//! Webhook intake: the durable write before answering HTTP 200, and leased
//! processing so a crashed worker's deliveries are picked up again.

use std::time::Duration;

use crate::{Delivery, Insert, NewDelivery, Result, Store, UnixMillis};

impl Store {
    /// Stores a verified delivery. Unique on `delivery_id`: a redelivery of
    /// the same `Linear-Delivery` returns [`Insert::Duplicate`] and changes
    /// nothing. When this returns `Ok`, the delivery survives a crash.
    pub async fn insert_delivery(&self, d: &NewDelivery) -> Result<Insert> {
        todo!("{d:?}")
    }

    /// Atomically leases up to `limit` unprocessed deliveries whose lease is
    /// free or expired at `now`, oldest first, to `owner` until
    /// `now + lease`, incrementing their `attempts`. No two concurrent
    /// callers get the same delivery while its lease is live.
    pub async fn claim_unprocessed_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        todo!("{owner}{lease:?}{now}{limit}")
    }

    /// Marks a delivery processed with a free-text `outcome` and clears its
    /// lease. Idempotent. `NotFound` if the id is unknown.
    pub async fn mark_delivery_processed(&self, delivery_id: &str, outcome: &str, now: UnixMillis) -> Result<()> {
        todo!("{delivery_id}{outcome}{now}")
    }

    /// Reads one delivery.
    pub async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>> {
        todo!("{delivery_id}")
    }
}
