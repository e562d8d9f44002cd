//! Webhook intake: the durable write before answering HTTP 200, and leased
//! processing so a crashed worker's deliveries are picked up again.

use std::time::Duration;

use crate::connect::{on_pool, on_read_pool};
use crate::rows::{DeliveryRow, lease_ms};
use crate::{Delivery, Insert, NewDelivery, Result, Store, StoreError, UnixMillis};

const CLAIM_SQLITE: &str = "UPDATE deliveries
    SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1
    WHERE delivery_id IN (
        SELECT delivery_id FROM deliveries
        WHERE processed_at IS NULL AND (lease_owner IS NULL OR lease_expires_at <= $3)
        ORDER BY received_at, delivery_id LIMIT $4)
    RETURNING *";

const CLAIM_POSTGRES: &str = "UPDATE deliveries
    SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1
    WHERE delivery_id IN (
        SELECT delivery_id FROM deliveries
        WHERE processed_at IS NULL AND (lease_owner IS NULL OR lease_expires_at <= $3)
        ORDER BY received_at, delivery_id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING *";

impl Store {
    /// Stores a verified delivery. Unique on `delivery_id`: a redelivery of
    /// the same `Linear-Delivery` returns [`Insert::Duplicate`] and changes
    /// nothing. When this returns `Ok`, the delivery's transaction has
    /// committed: it survives a crash of the process, and on SQLite with
    /// [`crate::SqliteSync::Full`] (the default) a power cut as well.
    /// Concurrent calls share one transaction (group commit, see
    /// `group_commit.rs`); [`StoreError::Overloaded`] when too many are
    /// already waiting.
    pub async fn insert_delivery(&self, d: &NewDelivery) -> Result<Insert> {
        let answers = self
            .group_commit
            .insert(&self.backend, std::slice::from_ref(d))
            .await?;
        answers
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::BatchFailed("no answer for the delivery".into()))
    }

    /// Stores several deliveries in one transaction, answering each as
    /// [`Store::insert_delivery`] would (in order; a repeated id within
    /// `ds` is stored once, its later copies answer [`Insert::Duplicate`]).
    pub async fn insert_deliveries(&self, ds: &[NewDelivery]) -> Result<Vec<Insert>> {
        self.group_commit.insert(&self.backend, ds).await
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
        let sql = self.pick(CLAIM_SQLITE, CLAIM_POSTGRES);
        let rows: Vec<DeliveryRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(owner)
            .bind(now.saturating_add(lease_ms(lease)))
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?);
        let mut out: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
        // RETURNING has no defined order.
        out.sort_by(|a, b| (a.received_at, &a.delivery_id).cmp(&(b.received_at, &b.delivery_id)));
        Ok(out)
    }

    /// Marks a delivery processed with a free-text `outcome` and clears its
    /// lease. Idempotent (a second call keeps the first outcome).
    /// `NotFound` if the id is unknown.
    pub async fn mark_delivery_processed(
        &self,
        delivery_id: &str,
        outcome: &str,
        now: UnixMillis,
    ) -> Result<()> {
        let affected = on_pool!(self, p => sqlx::query(
            "UPDATE deliveries SET processed_at = COALESCE(processed_at, $2),
                 outcome = COALESCE(outcome, $3), lease_owner = NULL, lease_expires_at = NULL
             WHERE delivery_id = $1",
        )
        .bind(delivery_id)
        .bind(now)
        .bind(outcome)
        .execute(p)
        .await?
        .rows_affected());
        if affected == 0 {
            return Err(StoreError::NotFound(format!("delivery {delivery_id}")));
        }
        Ok(())
    }

    /// How many deliveries are stored (benchmarks and status output).
    pub async fn delivery_count(&self) -> Result<i64> {
        let (n,): (i64,) = on_read_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries",
        )
        .fetch_one(p)
        .await?);
        Ok(n)
    }

    /// Reads one delivery.
    pub async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>> {
        let row: Option<DeliveryRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM deliveries WHERE delivery_id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(p)
        .await?);
        Ok(row.map(Delivery::from))
    }
}
