//! Read-only queries for `cyrus stats`, the dashboard and metrics.

use crate::{Result, Store, TaskTiming, UnixMillis};

impl Store {
    /// Tasks created in `[from, to)` per outcome (`None` = still active),
    /// largest count first.
    pub async fn task_outcomes(&self, from: UnixMillis, to: UnixMillis) -> Result<Vec<(Option<String>, i64)>> {
        todo!("{from}{to}")
    }

    /// Timing of every task created in `[from, to)`, oldest first (start
    /// latency, run duration and API calls derive from it).
    pub async fn task_timings(&self, from: UnixMillis, to: UnixMillis) -> Result<Vec<TaskTiming>> {
        todo!("{from}{to}")
    }
}
