//! A task's Codegen run, as the steps share it: finding a run by its
//! intent's marker, following and forgetting it, stopping it, and how often
//! its progress is read.

use super::StepError;
use crate::context::Ctx;
use cyrus_codegen_executor::{AgentRun, ListRuns, PageRequest};
use serde_json::Value;

/// The metadata key carrying the run intent's marker to Codegen.
pub const MARKER_KEY: &str = "cyrus_marker";
/// How far back a marker lookup reads (list pages of 100).
const RECOVERY_PAGES: u64 = 3;
/// Least time between two progress reads of one run.
const MIN_PROGRESS_INTERVAL_MS: i64 = 5_000;

/// Follows a run whose answer we just received (a create or resume): the
/// answer seeds the run cache, so the first progress step needs no `get
/// run` of its own, and the tracker is told the status it already knows.
pub(crate) fn track(ctx: &Ctx, task_id: &str, run: AgentRun) {
    let (run_id, status) = (run.id, run.status());
    ctx.cache
        .runs_seen
        .lock()
        .expect("runs cache")
        .insert(run_id, run);
    follow(ctx, task_id, run_id, status);
}

/// Asks the tracker to follow a run (again after a restart, when it starts
/// empty); `known` is the status as last read.
pub(crate) fn follow(
    ctx: &Ctx,
    task_id: &str,
    run_id: i64,
    known: cyrus_codegen_executor::RunStatus,
) {
    ctx.tracker.track(run_id, task_id, known);
}

/// Stops following a run and drops its cached view.
pub(crate) fn forget(ctx: &Ctx, run_id: i64) {
    ctx.tracker.untrack(run_id);
    ctx.cache
        .runs_seen
        .lock()
        .expect("runs cache")
        .remove(&run_id);
}

/// Stops a run; when the deployment has no stop endpoint, the run is only
/// forgotten here (Codegen lets it finish on its own).
pub(crate) async fn stop(ctx: &Ctx, run_id: i64) {
    if let Err(err) = ctx.codegen.stop_run(run_id).await {
        tracing::warn!(run = run_id, error = %err, "stopping the Codegen run failed; it is no longer followed");
    }
}

/// Looks for a run carrying `marker` in its metadata among the newest runs:
/// how a create whose answer never arrived (a crash, a lost response) is
/// found instead of creating a second run.
pub(crate) async fn find_by_marker(ctx: &Ctx, marker: &str) -> Result<Option<AgentRun>, StepError> {
    for page in 0..RECOVERY_PAGES {
        let req = ListRuns {
            page: PageRequest {
                skip: page * 100,
                limit: 100,
            },
            source_type: Some("API".into()),
            ..Default::default()
        };
        let runs = ctx.codegen.list_runs(&req).await?;
        let done = runs.items.len() < 100;
        if let Some(run) = runs.items.into_iter().find(|r| {
            r.metadata
                .as_ref()
                .and_then(|m| m.get(MARKER_KEY))
                .and_then(Value::as_str)
                == Some(marker)
        }) {
            return Ok(Some(run));
        }
        if done {
            break;
        }
    }
    Ok(None)
}

/// How long a running task sleeps between progress reads: often enough to
/// feel live, rarely enough that all active runs together stay within half
/// of the logs rate limit. Status changes wake it earlier.
pub(crate) async fn progress_interval_ms(ctx: &Ctx) -> i64 {
    let active = ctx.store.count_active_runs().await.unwrap_or(1).max(1);
    let per_minute = i64::from(ctx.config.codegen.rate_limits.logs_per_minute.max(2)) / 2;
    let budget_ms = active * 60_000 / per_minute.max(1);
    let base = (ctx.config.codegen.poll_interval_secs as i64 * 3_000).max(MIN_PROGRESS_INTERVAL_MS);
    budget_ms.max(base)
}
