//! Cost ledger, daily budget holds shared across replicas, and alerts that
//! are raised once per condition. Days are stored as `YYYY-MM-DD` text,
//! which sorts and compares correctly on both backends.

use chrono::NaiveDate;
use cyrus_core::MicroDollars;

use crate::connect::{in_write_tx, on_pool, on_read_pool};
use crate::{
    Alert, CostBucket, CostDimension, CostEntry, Insert, Reservation, Result, Store, UnixMillis,
};

fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

const BREAKDOWN_REPOSITORY: &str =
    "SELECT repository, CAST(SUM(micros) AS BIGINT), COUNT(*) FROM cost_entries
    WHERE day >= $1 AND day <= $2 GROUP BY repository";
const BREAKDOWN_MODEL: &str =
    "SELECT model, CAST(SUM(micros) AS BIGINT), COUNT(*) FROM cost_entries
    WHERE day >= $1 AND day <= $2 GROUP BY model";
const BREAKDOWN_TASK_TYPE: &str =
    "SELECT COALESCE(task_type, 'none'), CAST(SUM(micros) AS BIGINT), COUNT(*) FROM cost_entries
    WHERE day >= $1 AND day <= $2 GROUP BY COALESCE(task_type, 'none')";
const BREAKDOWN_DAY: &str = "SELECT day, CAST(SUM(micros) AS BIGINT), COUNT(*) FROM cost_entries
    WHERE day >= $1 AND day <= $2 GROUP BY day";

impl Store {
    /// Appends a cost entry; idempotent on `(task_id, seq)`.
    pub async fn add_cost(&self, e: &CostEntry) -> Result<Insert> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO cost_entries (task_id, seq, repository, model, task_type, day, micros, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (task_id, seq) DO NOTHING",
        )
        .bind(&e.task_id)
        .bind(e.seq)
        .bind(&e.repository)
        .bind(&e.model)
        .bind(e.task_type.map(|t| t.as_str()))
        .bind(day_key(e.day))
        .bind(e.amount.0)
        .bind(e.recorded_at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(if n == 1 {
            Insert::Inserted
        } else {
            Insert::Duplicate
        })
    }

    /// Recorded spend on `day` (sum of cost entries).
    pub async fn spend_for_day(&self, day: NaiveDate) -> Result<MicroDollars> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) FROM cost_entries WHERE day = $1",
        )
        .bind(day_key(day))
        .fetch_one(p)
        .await?);
        Ok(MicroDollars(n))
    }

    /// Recorded spend of one task.
    pub async fn spend_for_task(&self, task_id: &str) -> Result<MicroDollars> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) FROM cost_entries WHERE task_id = $1",
        )
        .bind(task_id)
        .fetch_one(p)
        .await?);
        Ok(MicroDollars(n))
    }

    /// Spend grouped by `by` over `from..=to`, largest first.
    pub async fn cost_breakdown(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        by: CostDimension,
    ) -> Result<Vec<CostBucket>> {
        let sql = match by {
            CostDimension::Repository => BREAKDOWN_REPOSITORY,
            CostDimension::Model => BREAKDOWN_MODEL,
            CostDimension::TaskType => BREAKDOWN_TASK_TYPE,
            CostDimension::Day => BREAKDOWN_DAY,
        };
        // SUM over BIGINT is NUMERIC on PostgreSQL, hence the casts in SQL.
        let rows: Vec<(String, i64, i64)> = on_read_pool!(self, p => sqlx::query_as(sql)
            .bind(day_key(from))
            .bind(day_key(to))
            .fetch_all(p)
            .await?);
        let mut out: Vec<CostBucket> = rows
            .into_iter()
            .map(|(key, total, entries)| CostBucket {
                key,
                total: MicroDollars(total),
                entries,
            })
            .collect();
        out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Atomically holds `amount` of `day`'s budget for `task_id` if recorded
    /// spend + other open holds + `amount` stays within `limit`; else
    /// `WouldExceed` with the current figures. Idempotent per task: a task
    /// with an open hold gets `Reserved` again without a second hold. Spend
    /// recorded for a task while its hold is open counts twice until the
    /// hold is settled — deliberately conservative.
    pub async fn try_reserve(
        &self,
        day: NaiveDate,
        task_id: &str,
        amount: MicroDollars,
        limit: MicroDollars,
        now: UnixMillis,
    ) -> Result<Reservation> {
        let day = day_key(day);
        let lock_key = format!("cyrus:budget:{day}");
        let outcome = in_write_tx!(self, &lock_key, tx => {
            let (open,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM budget_reservations WHERE task_id = $1 AND status = 'open'",
            )
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
            if open > 0 {
                Reservation::Reserved
            } else {
                let (spent,): (i64,) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) FROM cost_entries WHERE day = $1",
                )
                .bind(&day)
                .fetch_one(&mut *tx)
                .await?;
                let (reserved,): (i64,) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) FROM budget_reservations
                     WHERE day = $1 AND status = 'open'",
                )
                .bind(&day)
                .fetch_one(&mut *tx)
                .await?;
                if spent.saturating_add(reserved).saturating_add(amount.0) > limit.0 {
                    Reservation::WouldExceed { spent: MicroDollars(spent), reserved: MicroDollars(reserved) }
                } else {
                    sqlx::query(
                        "INSERT INTO budget_reservations (task_id, day, micros, status, created_at)
                         VALUES ($1, $2, $3, 'open', $4)",
                    )
                    .bind(task_id)
                    .bind(&day)
                    .bind(amount.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Reservation::Reserved
                }
            }
        });
        Ok(outcome)
    }

    /// Closes a task's open hold, noting the `actual` cost (record the spend
    /// itself with [`Store::add_cost`]). Returns false if none was open.
    pub async fn settle_reservation(&self, task_id: &str, actual: MicroDollars) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE budget_reservations SET status = 'settled', actual_micros = $2
             WHERE task_id = $1 AND status = 'open'",
        )
        .bind(task_id)
        .bind(actual.0)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Drops a task's open hold without cost (the run never started).
    /// Returns false if none was open.
    pub async fn release_reservation(&self, task_id: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE budget_reservations SET status = 'released' WHERE task_id = $1 AND status = 'open'",
        )
        .bind(task_id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Total of open holds on `day`.
    pub async fn reserved_for_day(&self, day: NaiveDate) -> Result<MicroDollars> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(micros), 0) AS BIGINT) FROM budget_reservations
             WHERE day = $1 AND status = 'open'",
        )
        .bind(day_key(day))
        .fetch_one(p)
        .await?);
        Ok(MicroDollars(n))
    }

    /// Raises alert `key`. Returns true only when it was not already active
    /// (so a notification goes out once per condition, across replicas).
    pub async fn raise_alert(&self, key: &str, message: &str, now: UnixMillis) -> Result<bool> {
        let row: Option<(String,)> = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO alerts (key, message, raised_at, cleared_at) VALUES ($1, $2, $3, NULL)
             ON CONFLICT (key) DO UPDATE
                 SET message = excluded.message, raised_at = excluded.raised_at, cleared_at = NULL
                 WHERE alerts.cleared_at IS NOT NULL
             RETURNING key",
        )
        .bind(key)
        .bind(message)
        .bind(now)
        .fetch_optional(p)
        .await?);
        Ok(row.is_some())
    }

    /// Clears alert `key` (it may be raised again later). Returns true if it
    /// was active.
    pub async fn clear_alert(&self, key: &str, now: UnixMillis) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE alerts SET cleared_at = $2 WHERE key = $1 AND cleared_at IS NULL",
        )
        .bind(key)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Active alerts, oldest first.
    pub async fn active_alerts(&self) -> Result<Vec<Alert>> {
        let rows: Vec<(String, String, i64)> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT key, message, raised_at FROM alerts WHERE cleared_at IS NULL ORDER BY raised_at, key",
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(key, message, raised_at)| Alert {
                key,
                message,
                raised_at,
            })
            .collect())
    }
}
