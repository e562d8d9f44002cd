//! Webhook intake: the durable write before answering HTTP 200, and leased
//! processing so a crashed worker's deliveries are picked up again.

use std::time::Duration;

use std::collections::HashMap;

use serde_json::Value;
use sqlx::types::Json;

use crate::connect::{Backend, on_pool, on_read_pool};
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

/// The first outcome stands; the lease is released.
const MARK_PROCESSED: &str = "UPDATE deliveries SET processed_at = COALESCE(processed_at, $2),
     outcome = COALESCE(outcome, $3), lease_owner = NULL, lease_expires_at = NULL
 WHERE delivery_id = $1";

impl Store {
    /// Stores a verified delivery. Unique on `delivery_id`: a redelivery of
    /// the same `Linear-Delivery` returns [`Insert::Duplicate`] and changes
    /// nothing. When this returns `Ok`, the delivery's transaction has
    /// committed: it survives a crash of the process, and on SQLite with
    /// [`crate::SqliteSync::Full`] (the default) a power cut as well.
    /// Concurrent calls share one transaction (group commit, see
    /// `group_commit.rs`); [`StoreError::Overloaded`] when too many are
    /// already waiting.
    pub async fn insert_delivery(&self, d: NewDelivery) -> Result<Insert> {
        let answers = self.group_commit.insert(&self.backend, vec![d]).await?;
        answers
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::BatchFailed("no answer for the delivery".into()))
    }

    /// Stores several deliveries in one transaction, answering each as
    /// [`Store::insert_delivery`] would (in order; a repeated id within
    /// `ds` is stored once, its later copies answer [`Insert::Duplicate`]).
    pub async fn insert_deliveries(&self, ds: Vec<NewDelivery>) -> Result<Vec<Insert>> {
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
        let mut out = self.with_payloads(rows).await?;
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
        let affected = on_pool!(self, p => sqlx::query(MARK_PROCESSED)
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

    /// Gives up `lease` on an unprocessed delivery, so the next claim takes
    /// it at once (a lease written with the delivery, see
    /// [`crate::Arrival::Leased`], whose holder could not process it).
    /// Only that very lease: one the same owner took later (a claim after
    /// it expired, or the lease of the original when this was a copy that
    /// failed to store) is left alone, so it is never processed twice.
    pub async fn release_delivery(
        &self,
        delivery_id: &str,
        lease: &crate::DeliveryLease,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL
             WHERE delivery_id = $1 AND lease_owner = $2 AND lease_expires_at = $3
               AND processed_at IS NULL",
        )
        .bind(delivery_id)
        .bind(&lease.owner)
        .bind(lease.expires_at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// [`Store::mark_delivery_processed`] for several deliveries (id,
    /// outcome) in one statement: the processor marks a claimed batch at
    /// once rather than spending a write per delivery. Unknown ids are
    /// skipped.
    pub async fn mark_deliveries_processed(
        &self,
        done: &[(String, String)],
        now: UnixMillis,
    ) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        // One statement for the batch (each statement is a round trip to
        // SQLite's connection thread, or to the server).
        match &self.backend {
            Backend::Sqlite(p) => {
                let batch: Vec<serde_json::Value> = done
                    .iter()
                    .map(|(id, outcome)| serde_json::json!({"d": id, "o": outcome}))
                    .collect();
                let batch = serde_json::to_string(&batch)
                    .map_err(|e| StoreError::Corrupt(format!("delivery outcomes: {e}")))?;
                sqlx::query(
                    "UPDATE deliveries SET processed_at = COALESCE(processed_at, $2),
                         outcome = COALESCE(outcome, json_extract(j.value, '$.o')),
                         lease_owner = NULL, lease_expires_at = NULL
                     FROM json_each($1) AS j
                     WHERE deliveries.delivery_id = json_extract(j.value, '$.d')",
                )
                .bind(batch)
                .bind(now)
                .execute(p)
                .await?;
            }
            Backend::Postgres(p) => {
                let (ids, outcomes): (Vec<&str>, Vec<&str>) =
                    done.iter().map(|(i, o)| (i.as_str(), o.as_str())).unzip();
                sqlx::query(
                    "UPDATE deliveries SET processed_at = COALESCE(processed_at, $3),
                         outcome = COALESCE(outcome, u.o), lease_owner = NULL, lease_expires_at = NULL
                     FROM UNNEST($1::text[], $2::text[]) AS u(d, o)
                     WHERE deliveries.delivery_id = u.d",
                )
                .bind(&ids)
                .bind(&outcomes)
                .bind(now)
                .execute(p)
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes up to `limit` processed deliveries received before
    /// `before`, their bodies with them; returns how many. A delivery not
    /// yet processed is kept whatever its age: the processor still owes it.
    /// Once a delivery is gone its id no longer deduplicates, so `before`
    /// must lie well behind the sender's last retry.
    pub async fn prune_deliveries(&self, before: UnixMillis, limit: i64) -> Result<u64> {
        let pruned = match &self.backend {
            Backend::Sqlite(p) => {
                // `seq` follows arrival: the candidates lie before the first
                // delivery received at or after `before`, so the scan stops
                // there instead of reading every row of a large table.
                macro_rules! doomed {
                    () => {
                        "SELECT seq FROM deliveries
                         WHERE processed_at IS NOT NULL AND received_at < $1
                           AND seq < COALESCE(
                               (SELECT seq FROM deliveries WHERE received_at >= $1 ORDER BY seq LIMIT 1),
                               (SELECT MAX(seq) + 1 FROM deliveries))
                         ORDER BY seq LIMIT $2"
                    };
                }
                // One transaction: the two statements see the same rows.
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(concat!(
                    "DELETE FROM delivery_bodies WHERE seq IN (",
                    doomed!(),
                    ")"
                ))
                .bind(before)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
                let n = sqlx::query(concat!(
                    "DELETE FROM deliveries WHERE seq IN (",
                    doomed!(),
                    ")"
                ))
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
            // Replicas pruning at once skip each other's rows.
            Backend::Postgres(p) => sqlx::query(
                "WITH doomed AS (
                     SELECT delivery_id FROM deliveries
                     WHERE processed_at IS NOT NULL AND received_at < $1
                     ORDER BY received_at LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), bodies AS (
                     DELETE FROM delivery_payloads WHERE delivery_id IN (SELECT delivery_id FROM doomed)
                 )
                 DELETE FROM deliveries WHERE delivery_id IN (SELECT delivery_id FROM doomed)",
            )
            .bind(before)
            .bind(limit)
            .execute(p)
            .await?
            .rows_affected(),
        };
        Ok(pruned)
    }

    /// How many deliveries are waiting to be processed (benchmarks).
    pub async fn unprocessed_delivery_count(&self) -> Result<i64> {
        let (n,): (i64,) = on_read_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries WHERE processed_at IS NULL",
        )
        .fetch_one(p)
        .await?);
        Ok(n)
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
        Ok(self.with_payloads(Vec::from_iter(row)).await?.pop())
    }

    /// The deliveries of `rows` with their bodies. A body is written in the
    /// transaction that writes its row and never changes, so it is read
    /// apart from the row (on SQLite from a reader connection, leaving the
    /// writer to the work). A missing body (never written so) reads as
    /// `null`, which the processor records as unparseable rather than
    /// retrying forever.
    async fn with_payloads(&self, rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
        let found: Vec<(String, Json<Value>)> = match (&self.backend, &self.sqlite_readers) {
            (Backend::Postgres(p), _) => sqlx::query_as(
                "SELECT delivery_id, payload FROM delivery_payloads WHERE delivery_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(p)
            .await?,
            (Backend::Sqlite(writer), readers) => {
                let ids = serde_json::to_string(&ids)
                    .map_err(|e| StoreError::Corrupt(format!("delivery ids: {e}")))?;
                sqlx::query_as(
                    "SELECT d.delivery_id, b.payload FROM deliveries d
                     JOIN delivery_bodies b ON b.seq = d.seq
                     WHERE d.delivery_id IN (SELECT value FROM json_each($1))",
                )
                .bind(ids)
                .fetch_all(readers.as_ref().unwrap_or(writer))
                .await?
            }
        };
        let mut bodies: HashMap<String, Value> =
            found.into_iter().map(|(id, Json(v))| (id, v)).collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let payload = bodies.remove(&r.delivery_id).unwrap_or_else(|| {
                    tracing::error!(delivery = %r.delivery_id, "store: a delivery has no body");
                    Value::Null
                });
                r.with_payload(payload)
            })
            .collect())
    }
}
