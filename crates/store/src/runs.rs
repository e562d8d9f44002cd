//! Codegen runs: the intent is written before the create call (so recovery
//! can find an orphaned run by its marker), and the concurrency cap is
//! enforced atomically across replicas.

use sqlx::types::Json;

use crate::connect::{in_write_tx, on_pool};
use crate::rows::RunRow;
use crate::{Result, RunIntent, RunSlot, Store, StoreError, UnixMillis};

/// Status of an intent whose Codegen run is not created yet.
pub const INTENT_STATUS: &str = "intent";

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
        let slot = in_write_tx!(self, "cyrus:run-slots", tx => {
            let existing: Option<RunRow> =
                sqlx::query_as("SELECT * FROM runs WHERE task_id = $1 AND attempt = $2")
                    .bind(task_id)
                    .bind(attempt)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(row) = existing {
                RunSlot::Recorded(row.into())
            } else {
                let (active,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL")
                        .fetch_one(&mut *tx)
                        .await?;
                if max_active.is_some_and(|max| active >= max) {
                    RunSlot::AtCapacity { active }
                } else {
                    let row: RunRow = sqlx::query_as(
                        "INSERT INTO runs (task_id, attempt, marker, status, created_at, pr_urls)
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                    )
                    .bind(task_id)
                    .bind(attempt)
                    .bind(marker)
                    .bind(INTENT_STATUS)
                    .bind(now)
                    .bind(Json(Vec::<String>::new()))
                    .fetch_one(&mut *tx)
                    .await?;
                    RunSlot::Recorded(row.into())
                }
            }
        });
        Ok(slot)
    }

    /// Links an intent to the Codegen run created for it (status becomes
    /// `ACTIVE` if it was still `intent`). Idempotent for the same run id;
    /// `Conflict` if a different run id is already attached.
    pub async fn attach_codegen_run(&self, intent_id: i64, codegen_run_id: i64) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE runs SET codegen_run_id = $2,
                 status = CASE WHEN status = 'intent' THEN 'ACTIVE' ELSE status END
             WHERE id = $1 AND (codegen_run_id IS NULL OR codegen_run_id = $2)",
        )
        .bind(intent_id)
        .bind(codegen_run_id)
        .execute(p)
        .await?
        .rows_affected());
        if n == 1 {
            return Ok(());
        }
        match self.get_run(intent_id).await? {
            None => Err(StoreError::NotFound(format!("run intent {intent_id}"))),
            Some(r) => Err(StoreError::Conflict(format!(
                "run intent {intent_id} is attached to Codegen run {:?}, not {codegen_run_id}",
                r.codegen_run_id
            ))),
        }
    }

    /// Reads one run by its intent id.
    pub async fn get_run(&self, intent_id: i64) -> Result<Option<RunIntent>> {
        let row: Option<RunRow> = on_pool!(self, p => sqlx::query_as("SELECT * FROM runs WHERE id = $1")
            .bind(intent_id)
            .fetch_optional(p)
            .await?);
        Ok(row.map(RunIntent::from))
    }

    /// The latest intent (highest attempt) of a task.
    pub async fn find_run_intent(&self, task_id: &str) -> Result<Option<RunIntent>> {
        let row: Option<RunRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM runs WHERE task_id = $1 ORDER BY attempt DESC LIMIT 1",
        )
        .bind(task_id)
        .fetch_optional(p)
        .await?);
        Ok(row.map(RunIntent::from))
    }

    /// Finds an intent by its marker (recovery: a Codegen run carrying it in
    /// metadata).
    pub async fn find_run_by_marker(&self, marker: &str) -> Result<Option<RunIntent>> {
        let row: Option<RunRow> = on_pool!(self, p => sqlx::query_as("SELECT * FROM runs WHERE marker = $1")
            .bind(marker)
            .fetch_optional(p)
            .await?);
        Ok(row.map(RunIntent::from))
    }

    /// Updates the Codegen status and PR urls of a run that is still active
    /// (a finished run is left as it is). `NotFound` if unknown.
    pub async fn update_run_status(
        &self,
        intent_id: i64,
        status: &str,
        pr_urls: &[String],
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE runs SET status = $2, pr_urls = $3 WHERE id = $1 AND finished_at IS NULL")
                .bind(intent_id)
                .bind(status)
                .bind(Json(pr_urls))
                .execute(p)
                .await?;
        });
        self.get_run(intent_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound(format!("run intent {intent_id}")))
    }

    /// Marks a run over (frees its concurrency slot). Idempotent: a second
    /// call changes nothing. `NotFound` if unknown.
    pub async fn finish_run(
        &self,
        intent_id: i64,
        status: &str,
        pr_urls: &[String],
        now: UnixMillis,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE runs SET status = $2, pr_urls = $3, finished_at = $4
                 WHERE id = $1 AND finished_at IS NULL",
            )
            .bind(intent_id)
            .bind(status)
            .bind(Json(pr_urls))
            .bind(now)
            .execute(p)
            .await?;
        });
        self.get_run(intent_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound(format!("run intent {intent_id}")))
    }

    /// Runs (and intents) not yet finished, across all replicas.
    pub async fn count_active_runs(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL")
            .fetch_one(p)
            .await?);
        Ok(n)
    }

    /// All runs of a task, oldest attempt first.
    pub async fn runs_for_task(&self, task_id: &str) -> Result<Vec<RunIntent>> {
        let rows: Vec<RunRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM runs WHERE task_id = $1 ORDER BY attempt",
        )
        .bind(task_id)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(RunIntent::from).collect())
    }
}
