//! Follow-up prompts a user sent into a busy session, deduped by Linear's
//! `agentActivity.id` and delivered to the run in order.

use crate::connect::on_pool;
use crate::rows::FollowUpRow;
use crate::{FollowUp, Insert, Result, Store, StoreError, UnixMillis};

impl Store {
    /// Stores a follow-up prompt unless `activity_id` was stored before.
    pub async fn add_followup(
        &self,
        task_id: &str,
        activity_id: &str,
        body: &str,
        now: UnixMillis,
    ) -> Result<Insert> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO followups (task_id, activity_id, body, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (activity_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(activity_id)
        .bind(body)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(if n == 1 {
            Insert::Inserted
        } else {
            Insert::Duplicate
        })
    }

    /// Undelivered follow-ups of a task, oldest first.
    pub async fn pending_followups(&self, task_id: &str) -> Result<Vec<FollowUp>> {
        let rows: Vec<FollowUpRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM followups WHERE task_id = $1 AND delivered_at IS NULL ORDER BY id",
        )
        .bind(task_id)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(FollowUp::from).collect())
    }

    /// Marks a follow-up delivered to the run. Idempotent; `NotFound` if
    /// unknown.
    pub async fn mark_followup_delivered(&self, id: i64, now: UnixMillis) -> Result<()> {
        let (n,): (i64,) = on_pool!(self, p => {
            sqlx::query("UPDATE followups SET delivered_at = COALESCE(delivered_at, $2) WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(p)
                .await?;
            sqlx::query_as("SELECT COUNT(*) FROM followups WHERE id = $1").bind(id).fetch_one(p).await?
        });
        if n == 0 {
            return Err(StoreError::NotFound(format!("follow-up {id}")));
        }
        Ok(())
    }
}
