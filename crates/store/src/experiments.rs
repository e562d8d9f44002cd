//! Model experiments: assignments and their late outcomes.

use crate::connect::{on_pool, on_read_pool};
use crate::{ExperimentAssignment, ExperimentTaskRecord, Insert, Result, Store};

impl Store {
    /// Records a task's assignment once (a retried step changes nothing).
    pub async fn record_experiment_assignment(&self, a: &ExperimentAssignment) -> Result<Insert> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO experiment_tasks (task_id, experiment, arm, model, issue_id, assigned_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(&a.task_id)
        .bind(&a.experiment)
        .bind(&a.arm)
        .bind(&a.model)
        .bind(&a.issue_id)
        .bind(a.assigned_at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(if n == 1 {
            Insert::Inserted
        } else {
            Insert::Duplicate
        })
    }

    /// The issue reached a completed state: the first time counts.
    pub async fn mark_experiment_issue_completed(&self, issue_id: &str, at: i64) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE experiment_tasks SET completed_at = $2 WHERE issue_id = $1 AND completed_at IS NULL",
        )
        .bind(issue_id)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// The issue left its completed state: reopened (the first time counts).
    pub async fn mark_experiment_issue_reopened(&self, issue_id: &str, at: i64) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE experiment_tasks SET reopened_at = $2
             WHERE issue_id = $1 AND completed_at IS NOT NULL AND reopened_at IS NULL",
        )
        .bind(issue_id)
        .bind(at)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// Names of the experiments that have tasks, with how many.
    pub async fn experiment_task_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT experiment, COUNT(*) FROM experiment_tasks GROUP BY experiment ORDER BY experiment",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Every task of `experiment`, oldest first, with its task row and
    /// follow-up count (one read each: reports are not a hot path).
    pub async fn experiment_tasks(&self, experiment: &str) -> Result<Vec<ExperimentTaskRecord>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT task_id, experiment, arm, model, issue_id, assigned_at, completed_at, reopened_at
             FROM experiment_tasks WHERE experiment = $1 ORDER BY assigned_at, task_id",
        )
        .bind(experiment)
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(rows.len());
        for (task_id, experiment, arm, model, issue_id, assigned_at, completed_at, reopened_at) in
            rows
        {
            let assignment = ExperimentAssignment {
                task_id,
                experiment,
                arm,
                model,
                issue_id,
                assigned_at,
            };
            let (follow_ups,): (i64,) = on_read_pool!(self, p => sqlx::query_as(
                "SELECT COUNT(*) FROM followups WHERE task_id = $1 AND kind = 'prompt'",
            )
            .bind(&assignment.task_id)
            .fetch_one(p)
            .await?);
            let task = self.get_task(&assignment.task_id).await?;
            out.push(ExperimentTaskRecord {
                completed_at,
                reopened_at,
                assignment,
                task,
                follow_ups,
            });
        }
        Ok(out)
    }
}
