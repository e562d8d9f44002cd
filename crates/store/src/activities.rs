//! The outbox of Linear agent activities: enqueued idempotently in the same
//! step that decides to post, delivered by a leased worker.

use std::time::Duration;

use crate::connect::on_pool;
use crate::new_rows;
use crate::rows::{ActivityRow, lease_ms};
use crate::{Activity, ActivityCounts, Insert, NewActivity, Result, Store, StoreError, UnixMillis};

// `INDEXED BY`: the scan follows the index of pending ids whatever the
// planner's statistics say; the table itself, in id order, holds every
// activity ever delivered before the pending ones (migration 0010).
const CLAIM_SQLITE: &str = "UPDATE activities
    SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM activities a INDEXED BY activities_pending
        WHERE status = 'pending' AND not_before <= $3
          AND (lease_owner IS NULL OR lease_expires_at <= $3)
          AND NOT EXISTS (SELECT 1 FROM activities e
                          WHERE e.session_id = a.session_id AND e.status = 'pending' AND e.id < a.id)
        ORDER BY id LIMIT $4)
    RETURNING *";

const CLAIM_POSTGRES: &str = "UPDATE activities
    SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM activities a
        WHERE status = 'pending' AND not_before <= $3
          AND (lease_owner IS NULL OR lease_expires_at <= $3)
          AND NOT EXISTS (SELECT 1 FROM activities e
                          WHERE e.session_id = a.session_id AND e.status = 'pending' AND e.id < a.id)
        ORDER BY id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING *";

impl Store {
    /// Enqueues an activity unless one with the same `dedupe_key` exists
    /// (in any status), so a retried step never posts twice. With
    /// `delivered_at` set it is recorded as already delivered.
    pub async fn enqueue_activity(&self, a: &NewActivity, now: UnixMillis) -> Result<Insert> {
        let written = on_pool!(self, p => {
            let mut conn = p.acquire().await?;
            new_rows::insert(&mut *conn, &[(a, now)], &[]).await?
        });
        Ok(if written.activities.is_empty() {
            Insert::Duplicate
        } else {
            Insert::Inserted
        })
    }

    /// Atomically leases up to `limit` pending activities with
    /// `not_before <= now` and a free or expired lease to `owner` until
    /// `now + lease`, in enqueue order, incrementing `attempts`. Within a
    /// session, only the oldest pending activity is claimable: a later one
    /// never overtakes an earlier one waiting for a retry (a final response
    /// must not land before the acknowledgement).
    pub async fn claim_due_activities(
        &self,
        owner: &str,
        lease: Duration,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Activity>> {
        let sql = self.pick(CLAIM_SQLITE, CLAIM_POSTGRES);
        let rows: Vec<ActivityRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(owner)
            .bind(now.saturating_add(lease_ms(lease)))
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?);
        let mut out: Vec<Activity> = rows.into_iter().map(Activity::from).collect();
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    /// Marks an activity delivered (terminal). Idempotent; `NotFound` if
    /// unknown, `Conflict` if it was given up.
    pub async fn mark_activity_delivered(&self, id: i64, now: UnixMillis) -> Result<()> {
        let changed: Option<(i64,)> = on_pool!(self, p =>
            sqlx::query_as(
                "UPDATE activities SET status = 'delivered', delivered_at = $2,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(p)
            .await?);
        self.settled(changed, id, "delivered").await
    }

    /// Puts a pending activity back for a retry at `at`, recording `error`
    /// and clearing the lease. `Conflict` if it is no longer pending.
    pub async fn reschedule_activity(&self, id: i64, at: UnixMillis, error: &str) -> Result<()> {
        let changed: Option<(i64,)> = on_pool!(self, p =>
            sqlx::query_as(
                "UPDATE activities SET not_before = $2, last_error = $3,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(id)
            .bind(at)
            .bind(error)
            .fetch_optional(p)
            .await?);
        self.settled(changed, id, "pending").await
    }

    /// Gives up on an activity (permanent error): terminal, kept for audit.
    /// Idempotent; `Conflict` if it was already delivered.
    pub async fn give_up_activity(&self, id: i64, reason: &str) -> Result<()> {
        let changed: Option<(i64,)> = on_pool!(self, p =>
            sqlx::query_as(
                "UPDATE activities SET status = 'gave_up', last_error = $2,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(id)
            .bind(reason)
            .fetch_optional(p)
            .await?);
        self.settled(changed, id, "gave_up").await
    }

    /// Reads one activity.
    pub async fn get_activity(&self, id: i64) -> Result<Option<Activity>> {
        let row: Option<ActivityRow> = on_pool!(self, p => sqlx::query_as("SELECT * FROM activities WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(row.map(Activity::from))
    }

    /// Outbox counts for one session.
    pub async fn activity_counts(&self, session_id: &str) -> Result<ActivityCounts> {
        let rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM activities WHERE session_id = $1 GROUP BY status",
        )
        .bind(session_id)
        .fetch_all(p)
        .await?);
        let mut c = ActivityCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                "gave_up" => c.gave_up = n,
                other => return Err(StoreError::Corrupt(format!("activity status `{other}`"))),
            }
        }
        Ok(c)
    }

    /// `Ok` when an update of a pending activity `changed` it; otherwise
    /// why not, read from the row (one read only off the common path).
    async fn settled(&self, changed: Option<(i64,)>, id: i64, wanted: &str) -> Result<()> {
        if changed.is_some() {
            return Ok(());
        }
        self.expect_activity_status(id, wanted).await
    }

    async fn expect_activity_status(&self, id: i64, wanted: &str) -> Result<()> {
        match self.get_activity(id).await? {
            None => Err(StoreError::NotFound(format!("activity {id}"))),
            Some(a) if a.status == wanted => Ok(()),
            Some(a) => Err(StoreError::Conflict(format!(
                "activity {id} is {}, not {wanted}",
                a.status
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CLAIM_SQLITE;

    /// The claim reads pending activities through their index, never the
    /// table: the table holds every activity ever delivered, so a scan of
    /// it made each claim slower as the outbox's history grew.
    #[tokio::test]
    async fn the_sqlite_claim_never_scans_delivered_activities() {
        let (_dir, _store, writer) = crate::test_support::sqlite_store().await;
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {CLAIM_SQLITE}"
        )))
        .bind("owner")
        .bind(1_i64)
        .bind(1_i64)
        .bind(10_i64)
        .fetch_all(&writer)
        .await
        .unwrap();
        let steps: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            steps.contains(&"SCAN a USING INDEX activities_pending"),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| *s == "SCAN a" || s.starts_with("SCAN activities")),
            "{steps:?}"
        );
    }
}
