//! An experiment's report from the store: each task's outcome with the
//! completion window applied, then `cyrus_core::experiments::stats`. Shared
//! by `cyrus experiments report` and the dashboard.

use cyrus_core::config::{Config, Experiment};
use cyrus_core::experiments::stats::{self, ExperimentReport, TaskOutcome};
use cyrus_core::lifecycle::TaskState;
use cyrus_store::{ExperimentTaskRecord, Store, StoreError};

/// The report of `experiment` at `now_ms`.
pub async fn report(
    config: &Config,
    store: &Store,
    experiment: &Experiment,
    now_ms: i64,
) -> Result<ExperimentReport, StoreError> {
    let rows = store.experiment_tasks(&experiment.name).await?;
    let outcomes: Vec<TaskOutcome> = rows.iter().map(|r| outcome(config, r, now_ms)).collect();
    let arms: Vec<(String, String)> = experiment
        .arms
        .iter()
        .map(|a| (a.name.clone(), a.model.clone()))
        .collect();
    // A fixed seed per experiment, so a report can be reproduced.
    let seed = experiment
        .name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    Ok(stats::report(&arms, &outcomes, seed))
}

/// What a stored task says about its outcome, with `experimentOutcomeDays`
/// applied at `now`: a completion later than the window counts as not
/// completed; no completion yet inside the window is undecided.
fn outcome(config: &Config, r: &ExperimentTaskRecord, now: i64) -> TaskOutcome {
    let window = i64::from(config.experiment_outcome_days) * 86_400_000;
    let assigned = r.assignment.assigned_at;
    let completed = match r.completed_at {
        Some(at) => Some(at - assigned <= window),
        None if now - assigned > window => Some(false),
        None => None,
    };
    let mut out = TaskOutcome {
        arm: r.assignment.arm.clone(),
        completed,
        reopened: r.reopened_at.is_some(),
        follow_ups: r.follow_ups.max(0) as u32,
        ..TaskOutcome::default()
    };
    if let Some(task) = &r.task {
        let state = task.state;
        out.finished = matches!(
            state,
            TaskState::Completed | TaskState::Failed | TaskState::Stopped | TaskState::DeadLetter
        );
        out.succeeded = state == TaskState::Completed;
        out.stopped_by_person = state == TaskState::Stopped;
        out.pull_request = task.data["pr_urls"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        out.resumes = task.data["resumes"].as_u64().unwrap_or(0) as u32;
        out.cost_micros = task.estimated_cost.map(|c| c.0).unwrap_or(0);
        out.duration_ms = match (task.started_at, task.finished_at) {
            (Some(s), Some(f)) => Some(f - s),
            _ => None,
        };
    }
    out
}
