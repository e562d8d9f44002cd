//! Tasks: one per Linear agent session, scheduled by priority then FIFO,
//! worked on under a lease, written back fenced by lease owner and version.

use std::time::Duration;

use sqlx::types::Json;

use crate::connect::{on_pool, on_read_pool};
use crate::new_rows;
use crate::rows::{TaskRow, lease_ms, priority_rank, tasks};
use crate::{DEAD_LETTER_STATE, NewTask, Result, Store, StoreError, Task, TaskFilter, UnixMillis};

const CLAIM_SQLITE: &str = "UPDATE tasks SET lease_owner = $1, lease_expires_at = $2
    WHERE id IN (
        SELECT id FROM tasks
        WHERE finished_at IS NULL AND run_at <= $3
          AND (lease_owner IS NULL OR lease_expires_at <= $3)
        ORDER BY priority_rank, created_at, id LIMIT $4)
    RETURNING *";

const CLAIM_POSTGRES: &str = "UPDATE tasks SET lease_owner = $1, lease_expires_at = $2
    WHERE id IN (
        SELECT id FROM tasks
        WHERE finished_at IS NULL AND run_at <= $3
          AND (lease_owner IS NULL OR lease_expires_at <= $3)
        ORDER BY priority_rank, created_at, id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING *";

impl Store {
    /// Creates the task for `new.agent_session_id` unless one exists.
    /// Returns the stored task and whether this call created it; a webhook
    /// redelivered or raced by two replicas creates exactly one task.
    pub async fn create_task_if_absent(&self, new: &NewTask) -> Result<(Task, bool)> {
        let written = on_pool!(self, p => {
            let mut conn = p.acquire().await?;
            new_rows::insert(&mut *conn, &[], &[new]).await?
        });
        let created = !written.tasks.is_empty();
        let task = self
            .get_task_by_session(&new.agent_session_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("task for session {}", new.agent_session_id))
            })?;
        Ok((task, created))
    }

    /// Reads a task by id.
    pub async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        self.one_task("SELECT * FROM tasks WHERE id = $1", id).await
    }

    /// Reads the task of a Linear agent session.
    pub async fn get_task_by_session(&self, agent_session_id: &str) -> Result<Option<Task>> {
        self.one_task(
            "SELECT * FROM tasks WHERE agent_session_id = $1",
            agent_session_id,
        )
        .await
    }

    /// The newest active (non-terminal) task on an issue, if any — used to
    /// keep one active run per issue (a later trigger becomes a follow-up).
    pub async fn find_active_task_for_issue(&self, issue_id: &str) -> Result<Option<Task>> {
        self.one_task(
            "SELECT * FROM tasks WHERE issue_id = $1 AND finished_at IS NULL
             ORDER BY created_at DESC, id DESC LIMIT 1",
            issue_id,
        )
        .await
    }

    /// Atomically leases up to `limit` due tasks to `owner` until
    /// `now + lease`: active, `run_at <= now`, lease free or expired.
    /// Order: priority 1 (urgent) … 4 (low), then 0 (none); FIFO by
    /// `created_at` within a priority. Concurrent claimers (threads or
    /// replicas) never receive the same task while its lease is live.
    /// Claiming does not change `attempts` or `version`.
    pub async fn claim_due_tasks(
        &self,
        owner: &str,
        lease: Duration,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Task>> {
        let sql = self.pick(CLAIM_SQLITE, CLAIM_POSTGRES);
        let rows: Vec<TaskRow> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(owner)
            .bind(now.saturating_add(lease_ms(lease)))
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?);
        let mut out = tasks(rows)?;
        // RETURNING has no defined order; restore the claim order.
        out.sort_by_key(|t| (priority_rank(t.priority), t.created_at, t.id.clone()));
        Ok(out)
    }

    /// Extends `owner`'s lease on a task to `until`. `Conflict` when `owner`
    /// no longer holds it (expired and taken over, or released).
    pub async fn renew_lease(&self, task_id: &str, owner: &str, until: UnixMillis) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(task_id)
        .bind(owner)
        .bind(until)
        .execute(p)
        .await?
        .rows_affected());
        self.fenced(n, task_id, owner).await
    }

    /// Releases `owner`'s lease on one task (work for now is done; it is
    /// claimable again at its `run_at`). `Conflict` if `owner` lost it.
    pub async fn release_task(&self, task_id: &str, owner: &str) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(task_id)
        .bind(owner)
        .execute(p)
        .await?
        .rows_affected());
        self.fenced(n, task_id, owner).await
    }

    /// Releases every lease `owner` holds — on tasks, webhook deliveries and
    /// outbox items (graceful shutdown) — returning how many rows were
    /// released; other replicas can claim them at once instead of waiting
    /// for the leases to expire.
    pub async fn release_lease(&self, owner: &str) -> Result<u64> {
        let mut released = 0;
        for sql in [
            "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
            "UPDATE activities SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
        ] {
            released += on_pool!(self, p => sqlx::query(sql)
                .bind(owner)
                .execute(p)
                .await?
                .rows_affected());
        }
        Ok(released)
    }

    /// Writes back every mutable field of `task` (state, step, detail,
    /// priority, run_at, attempts, max_attempts, codegen_run_id,
    /// repository_id, task_type, model, estimated_cost, last_error,
    /// started_at, finished_at, outcome, data) — but only if `owner` still
    /// holds the lease and `task.version` is the stored version. Returns the
    /// task as stored (version bumped). `Conflict` otherwise: a replica that
    /// lost its lease can never overwrite the new owner's work. Lease fields,
    /// `api_calls` and `cancel_requested_at` are not written.
    pub async fn update_task(&self, task: &Task, owner: &str) -> Result<Task> {
        let row: Option<TaskRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE tasks SET state = $1, step = $2, detail = $3, priority = $4, priority_rank = $5,
                 run_at = $6, attempts = $7, max_attempts = $8, codegen_run_id = $9,
                 repository_id = $10, task_type = $11, model = $12, estimated_cost_micros = $13,
                 last_error = $14, started_at = $15, finished_at = $16, outcome = $17, data = $18,
                 version = version + 1
             WHERE id = $19 AND version = $20 AND lease_owner = $21
             RETURNING *",
        )
        .bind(task.state.as_str())
        .bind(task.step.map(|s| s.as_str()))
        .bind(&task.detail)
        .bind(task.priority)
        .bind(priority_rank(task.priority))
        .bind(task.run_at)
        .bind(task.attempts)
        .bind(task.max_attempts)
        .bind(task.codegen_run_id)
        .bind(task.repository_id)
        .bind(task.task_type.map(|t| t.as_str()))
        .bind(&task.model)
        .bind(task.estimated_cost.map(|c| c.0))
        .bind(&task.last_error)
        .bind(task.started_at)
        .bind(task.finished_at)
        .bind(&task.outcome)
        .bind(Json(&task.data))
        .bind(&task.id)
        .bind(task.version)
        .bind(owner)
        .fetch_optional(p)
        .await?);
        match row {
            Some(row) => Task::try_from(row),
            None => Err(self
                .explain_conflict(&task.id, owner, Some(task.version))
                .await),
        }
    }

    /// Makes a task terminal after unrecoverable failure: state
    /// [`crate::DEAD_LETTER_STATE`], outcome `dead_letter`, `last_error =
    /// reason`, `finished_at = now`, lease released. Fenced like
    /// `update_task` (by lease owner). Nothing is deleted.
    pub async fn dead_letter(
        &self,
        task_id: &str,
        owner: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET state = $3, outcome = 'dead_letter', last_error = $4,
                 finished_at = COALESCE(finished_at, $5), lease_owner = NULL, lease_expires_at = NULL,
                 version = version + 1
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(task_id)
        .bind(owner)
        .bind(DEAD_LETTER_STATE)
        .bind(reason)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        self.fenced(n, task_id, owner).await
    }

    /// Makes an active task due now (`run_at = min(run_at, now)`) without
    /// the lease — e.g. a follow-up arrived or a blocker resolved. Returns
    /// false if the task is unknown or terminal.
    pub async fn wake_task(&self, task_id: &str, now: UnixMillis) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET run_at = CASE WHEN run_at > $2 THEN $2 ELSE run_at END
             WHERE id = $1 AND finished_at IS NULL",
        )
        .bind(task_id)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Makes a settled task (`completed` or `failed`, `finished_at` set)
    /// active and due again, because a follow-up prompt arrived for it.
    /// Stopped and dead-lettered tasks stay final. Returns whether a task
    /// was reopened. Needs no lease (the task has none while settled).
    pub async fn reopen_task(&self, task_id: &str, now: UnixMillis) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET finished_at = NULL, run_at = $2, version = version + 1
             WHERE id = $1 AND finished_at IS NOT NULL AND state IN ('completed', 'failed')",
        )
        .bind(task_id)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Records a stop request from any replica without the lease, and makes
    /// the task due; the lease holder sees `cancel_requested_at` on its next
    /// read. Returns false if the task is unknown or terminal.
    pub async fn request_cancel(&self, task_id: &str, now: UnixMillis) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE tasks SET cancel_requested_at = COALESCE(cancel_requested_at, $2),
                 run_at = CASE WHEN run_at > $2 THEN $2 ELSE run_at END
             WHERE id = $1 AND finished_at IS NULL",
        )
        .bind(task_id)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Adds `n` to the task's API call counter (unfenced, commutative).
    pub async fn add_api_calls(&self, task_id: &str, n: i64) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query("UPDATE tasks SET api_calls = api_calls + $2 WHERE id = $1")
            .bind(task_id)
            .bind(n)
            .execute(p)
            .await?
            .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound(format!("task {task_id}")));
        }
        Ok(())
    }

    /// Of `issue_ids`, those with a live (unfinished) task: one indexed
    /// read for many issues, which the intake asks for a run of issue
    /// edits instead of listing each issue's tasks.
    pub async fn issues_with_live_tasks(
        &self,
        issue_ids: &[&str],
    ) -> Result<std::collections::HashSet<String>> {
        if issue_ids.is_empty() {
            return Ok(Default::default());
        }
        // One text parameter (a JSON array) on both backends, so the
        // statement is static whatever the number of issues.
        let ids = serde_json::to_string(issue_ids).expect("strings serialise");
        let sql = self.pick(
            "SELECT DISTINCT issue_id FROM tasks
             WHERE finished_at IS NULL AND issue_id IN (SELECT value FROM json_each($1))",
            "SELECT DISTINCT issue_id FROM tasks
             WHERE finished_at IS NULL AND issue_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
        );
        let rows: Vec<(String,)> = on_read_pool!(self, p => sqlx::query_as(sql)
            .bind(&ids)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Tasks matching `filter`, newest first.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        // A filter by issue has a statement of its own: neither SQLite nor
        // PostgreSQL's generic plan takes an index for `($2 IS NULL OR
        // issue_id = $2)`, and the intake lists an issue's live tasks for
        // every edit and stop of that issue — a scan of every task stored
        // in months of work each time.
        let sql = if filter.issue_id.is_some() {
            LIST_TASKS_OF_ISSUE
        } else {
            LIST_TASKS
        };
        let rows: Vec<TaskRow> = on_read_pool!(self, p => sqlx::query_as(sql)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(&filter.issue_id)
        .bind(&filter.outcome)
        .bind(i64::from(filter.active_only))
        .bind(filter.created_from)
        .bind(filter.created_to)
        .bind(filter.limit.unwrap_or(1000))
        .fetch_all(p)
        .await?);
        tasks(rows)
    }

    /// Number of tasks per state, sorted by state name.
    pub async fn count_tasks_by_state(&self) -> Result<Vec<(String, i64)>> {
        Ok(on_read_pool!(self, p => sqlx::query_as::<_, (String, i64)>(
            "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state",
        )
        .fetch_all(p)
        .await?))
    }

    async fn one_task(&self, sql: &'static str, key: &str) -> Result<Option<Task>> {
        let row: Option<TaskRow> =
            on_pool!(self, p => sqlx::query_as(sql).bind(key).fetch_optional(p).await?);
        row.map(Task::try_from).transpose()
    }

    /// Turns "0 rows affected" of a fenced write into the right error.
    async fn fenced(&self, affected: u64, task_id: &str, owner: &str) -> Result<()> {
        if affected == 1 {
            Ok(())
        } else {
            Err(self.explain_conflict(task_id, owner, None).await)
        }
    }

    async fn explain_conflict(
        &self,
        task_id: &str,
        owner: &str,
        version: Option<i64>,
    ) -> StoreError {
        match self.get_task(task_id).await {
            Err(e) => e,
            Ok(None) => StoreError::NotFound(format!("task {task_id}")),
            Ok(Some(t)) if t.lease_owner.as_deref() != Some(owner) => {
                StoreError::Conflict(format!(
                    "task {task_id}: lease is held by {:?}, not {owner}",
                    t.lease_owner
                ))
            }
            Ok(Some(t)) => StoreError::Conflict(format!(
                "task {task_id}: version is {}, write was based on {:?}",
                t.version, version
            )),
        }
    }
}

/// The statement of [`Store::list_tasks`], with `$2`, the issue, as its
/// first condition. Every other condition is always present and disabled
/// by a NULL flag, so the statement text is static (no string building, no
/// injection).
macro_rules! list_tasks_where {
    ($issue:literal) => {
        concat!(
            "SELECT * FROM tasks WHERE ",
            $issue,
            " AND ($1 IS NULL OR state = $1)
               AND ($3 IS NULL OR outcome = $3)
               AND ($4 = 0 OR finished_at IS NULL)
               AND ($5 IS NULL OR created_at >= $5)
               AND ($6 IS NULL OR created_at < $6)
             ORDER BY created_at DESC, id DESC LIMIT $7"
        )
    };
}
const LIST_TASKS: &str = list_tasks_where!("($2 IS NULL OR issue_id = $2)");
const LIST_TASKS_OF_ISSUE: &str = list_tasks_where!("issue_id = $2");

#[cfg(test)]
mod tests {
    use super::*;

    /// Listing an issue's tasks searches the issue index instead of reading
    /// every task (the plan is SQLite's; PostgreSQL's planner gets the same
    /// plain equality).
    #[tokio::test]
    async fn listing_an_issues_tasks_uses_the_issue_index() {
        let (_dir, _store, writer) = crate::test_support::sqlite_store().await;
        let plan = |sql: &'static str| {
            let writer = writer.clone();
            async move {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                        .bind(None::<String>)
                        .bind("issue-1")
                        .bind(None::<String>)
                        .bind(1_i64)
                        .bind(None::<i64>)
                        .bind(None::<i64>)
                        .bind(1000_i64)
                        .fetch_all(&writer)
                        .await
                        .unwrap();
                rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
            }
        };
        let of_issue = plan(LIST_TASKS_OF_ISSUE).await;
        assert!(
            of_issue.contains("USING INDEX tasks_issue (issue_id=?)"),
            "plan: {of_issue}"
        );
        // What the plain statement does, which is why the issue has its own.
        let any = plan(LIST_TASKS).await;
        assert!(!any.contains("tasks_issue (issue_id=?)"), "plan: {any}");
    }
}
