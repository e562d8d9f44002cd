//! Read-only queries for `cyrus stats`, the dashboard and metrics.

use crate::connect::on_read_pool;
use crate::rows::parse_task_type;
use crate::{Result, Store, TaskTiming, UnixMillis};

type TimingRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

impl Store {
    /// Tasks created in `[from, to)` per outcome (`None` = still active),
    /// largest count first.
    pub async fn task_outcomes(
        &self,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<(Option<String>, i64)>> {
        Ok(on_read_pool!(self, p => sqlx::query_as(
            "SELECT outcome, COUNT(*) AS n FROM tasks WHERE created_at >= $1 AND created_at < $2
             GROUP BY outcome ORDER BY n DESC, outcome",
        )
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await?))
    }

    /// Timing of every task created in `[from, to)`, oldest first (start
    /// latency, run duration and API calls derive from it).
    pub async fn task_timings(&self, from: UnixMillis, to: UnixMillis) -> Result<Vec<TaskTiming>> {
        let rows: Vec<TimingRow> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT id, issue_identifier, outcome, task_type, created_at, started_at, finished_at, api_calls
             FROM tasks WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(
                |(
                    task_id,
                    issue_identifier,
                    outcome,
                    task_type,
                    created_at,
                    started_at,
                    finished_at,
                    api_calls,
                )| {
                    Ok(TaskTiming {
                        task_id,
                        issue_identifier,
                        outcome,
                        task_type: parse_task_type(task_type)?,
                        created_at,
                        started_at,
                        finished_at,
                        api_calls,
                    })
                },
            )
            .collect()
    }
}
