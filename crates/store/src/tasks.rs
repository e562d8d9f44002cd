//! Tasks: one per Linear agent session, scheduled by priority then FIFO,
//! worked on under a lease, written back fenced by lease owner and version.

use std::time::Duration;

use crate::{NewTask, Result, Store, Task, TaskFilter, UnixMillis};

impl Store {
    /// Creates the task for `new.agent_session_id` unless one exists.
    /// Returns the stored task and whether this call created it; a webhook
    /// redelivered or raced by two replicas creates exactly one task.
    pub async fn create_task_if_absent(&self, new: &NewTask) -> Result<(Task, bool)> {
        todo!("{new:?}")
    }

    /// Reads a task by id.
    pub async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        todo!("{id}")
    }

    /// Reads the task of a Linear agent session.
    pub async fn get_task_by_session(&self, agent_session_id: &str) -> Result<Option<Task>> {
        todo!("{agent_session_id}")
    }

    /// The newest active (non-terminal) task on an issue, if any — used to
    /// keep one active run per issue (a later trigger becomes a follow-up).
    pub async fn find_active_task_for_issue(&self, issue_id: &str) -> Result<Option<Task>> {
        todo!("{issue_id}")
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
        todo!("{owner}{lease:?}{now}{limit}")
    }

    /// Extends `owner`'s lease on a task to `until`. `Conflict` when `owner`
    /// no longer holds it (expired and taken over, or released).
    pub async fn renew_lease(&self, task_id: &str, owner: &str, until: UnixMillis) -> Result<()> {
        todo!("{task_id}{owner}{until}")
    }

    /// Releases `owner`'s lease on one task (work for now is done; it is
    /// claimable again at its `run_at`). `Conflict` if `owner` lost it.
    pub async fn release_task(&self, task_id: &str, owner: &str) -> Result<()> {
        todo!("{task_id}{owner}")
    }

    /// Releases every lease `owner` holds (graceful shutdown), returning how
    /// many tasks were released; other replicas can claim them at once.
    pub async fn release_lease(&self, owner: &str) -> Result<u64> {
        todo!("{owner}")
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
        todo!("{task:?}{owner}")
    }

    /// Makes a task terminal after unrecoverable failure: state
    /// [`crate::DEAD_LETTER_STATE`], outcome `dead_letter`, `last_error =
    /// reason`, `finished_at = now`, lease released. Fenced like
    /// `update_task` (by lease owner). Nothing is deleted.
    pub async fn dead_letter(&self, task_id: &str, owner: &str, reason: &str, now: UnixMillis) -> Result<()> {
        todo!("{task_id}{owner}{reason}{now}")
    }

    /// Makes an active task due now (`run_at = min(run_at, now)`) without
    /// the lease — e.g. a follow-up arrived or a blocker resolved. Returns
    /// false if the task is unknown or terminal.
    pub async fn wake_task(&self, task_id: &str, now: UnixMillis) -> Result<bool> {
        todo!("{task_id}{now}")
    }

    /// Records a stop request from any replica without the lease, and makes
    /// the task due; the lease holder sees `cancel_requested_at` on its next
    /// read. Returns false if the task is unknown or terminal.
    pub async fn request_cancel(&self, task_id: &str, now: UnixMillis) -> Result<bool> {
        todo!("{task_id}{now}")
    }

    /// Adds `n` to the task's API call counter (unfenced, commutative).
    pub async fn add_api_calls(&self, task_id: &str, n: i64) -> Result<()> {
        todo!("{task_id}{n}")
    }

    /// Tasks matching `filter`, newest first.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        todo!("{filter:?}")
    }

    /// Number of tasks per state, sorted by state name.
    pub async fn count_tasks_by_state(&self) -> Result<Vec<(String, i64)>> {
        todo!()
    }
}
