//! Follow-ups: prompts a user sent into a session and stop requests, deduped
//! by Linear's `agentActivity.id` (or the caller's key) and acted on in order.

use crate::connect::on_pool;
use crate::rows::FollowUpRow;
use crate::{FollowUp, FollowUpKind, Insert, Result, Store, StoreError, UnixMillis};

impl Store {
    /// Stores a follow-up prompt unless `activity_id` was stored before.
    pub async fn add_followup(
        &self,
        task_id: &str,
        activity_id: &str,
        body: &str,
        now: UnixMillis,
    ) -> Result<Insert> {
        self.add(task_id, activity_id, FollowUpKind::Prompt, body, now)
            .await
    }

    /// Stores a stop request with the reason to tell the user, unless `key`
    /// was stored before. Any replica may call this without the task's lease.
    pub async fn add_stop_request(
        &self,
        task_id: &str,
        key: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<Insert> {
        self.add(task_id, key, FollowUpKind::Stop, reason, now)
            .await
    }

    async fn add(
        &self,
        task_id: &str,
        activity_id: &str,
        kind: FollowUpKind,
        body: &str,
        now: UnixMillis,
    ) -> Result<Insert> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO followups (task_id, activity_id, kind, body, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (activity_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(activity_id)
        .bind(kind.as_str())
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
