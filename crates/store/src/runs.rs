//! Codegen runs: the intent is written before the create call (so recovery
//! can find an orphaned run by its marker), and the concurrency cap is
//! enforced atomically across replicas.

use crate::{Result, RunIntent, RunSlot, Store, UnixMillis};

impl Store {
    /// Records the intent to create a Codegen run for `(task_id, attempt)`
    /// BEFORE calling Codegen. Idempotent: if an intent for this task and
    /// attempt exists it is returned unchanged (even at capacity). Otherwise,
    /// when `max_active` is `Some(n)` and `n` runs are already active
    /// (`finished_at IS NULL`) across all replicas, returns `AtCapacity`;
    /// the count and the insert are one atomic step. `marker` must be unique.
    pub async fn record_run_intent(
        &self,
        task_id: &str,
        attempt: i64,
        marker: &str,
        now: UnixMillis,
        max_active: Option<i64>,
    ) -> Result<RunSlot> {
        todo!("{task_id}{attempt}{marker}{now}{max_active:?}")
    }

    /// Links an intent to the Codegen run created for it (status becomes
    /// `ACTIVE` unless already set). Idempotent for the same run id;
    /// `Conflict` if a different run id is already attached.
    pub async fn attach_codegen_run(&self, intent_id: i64, codegen_run_id: i64) -> Result<()> {
        todo!("{intent_id}{codegen_run_id}")
    }

    /// The latest intent (highest attempt) of a task.
    pub async fn find_run_intent(&self, task_id: &str) -> Result<Option<RunIntent>> {
        todo!("{task_id}")
    }

    /// Finds an intent by its marker (recovery: a Codegen run carrying it in
    /// metadata).
    pub async fn find_run_by_marker(&self, marker: &str) -> Result<Option<RunIntent>> {
        todo!("{marker}")
    }

    /// Updates the Codegen status and PR urls of a run that is still active.
    pub async fn update_run_status(&self, intent_id: i64, status: &str, pr_urls: &[String]) -> Result<()> {
        todo!("{intent_id}{status}{pr_urls:?}")
    }

    /// Marks a run over (frees its concurrency slot). Idempotent: a second
    /// call keeps the first `finished_at`.
    pub async fn finish_run(&self, intent_id: i64, status: &str, pr_urls: &[String], now: UnixMillis) -> Result<()> {
        todo!("{intent_id}{status}{pr_urls:?}{now}")
    }

    /// Runs (and intents) not yet finished, across all replicas.
    pub async fn count_active_runs(&self) -> Result<i64> {
        todo!()
    }

    /// All runs of a task, oldest attempt first.
    pub async fn runs_for_task(&self, task_id: &str) -> Result<Vec<RunIntent>> {
        todo!("{task_id}")
    }
}
