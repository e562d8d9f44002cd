//! A routed task's place in a model experiment: the arm (sticky per issue,
//! `cyrus_core::experiments`) replaces the routed model unless a person
//! chose the model explicitly, in which case the task is recorded as
//! outside the experiment. The assignment is stored before the run exists,
//! and the line for the routing thought is returned.

use super::{StepError, Work};
use crate::context::Ctx;
use cyrus_core::experiments::{ExperimentTask, assign};
use cyrus_core::routing::RoutingDecision;
use cyrus_linear::client::IssueDetails;
use cyrus_store::ExperimentAssignment;

/// Applies the experiment, if any; returns the model line for the routing
/// thought when an experiment is involved.
pub(super) async fn apply(
    ctx: &Ctx,
    work: &mut Work,
    issue: &IssueDetails,
    decision: &RoutingDecision,
) -> Result<Option<String>, StepError> {
    let labels: Vec<String> = issue
        .label_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let task = ExperimentTask {
        issue_id: &work.task.issue_id,
        task_type: Some(decision.task_type),
        repository_id: decision.repository.chosen_id(),
        labels: &labels,
        team_key: issue.team.as_ref().and_then(|t| t.key.as_deref()),
    };
    let Some(assignment) = assign(&ctx.config, &task, chrono::Utc::now()) else {
        return Ok(None);
    };
    if decision.model_source.is_explicit() {
        work.data.experiment = Some(assignment.experiment.clone());
        work.data.experiment_arm = None;
        let model = decision.model.clone().unwrap_or_default();
        return Ok(Some(format!(
            "Model: {model} ({}; outside experiment {} because the model was chosen explicitly).",
            decision.model_reason, assignment.experiment
        )));
    }
    ctx.store
        .record_experiment_assignment(&ExperimentAssignment {
            task_id: work.task.id.clone(),
            experiment: assignment.experiment.clone(),
            arm: assignment.arm.clone(),
            model: assignment.model.clone(),
            issue_id: work.task.issue_id.clone(),
            assigned_at: ctx.now_ms(),
        })
        .await?;
    work.task.model = Some(assignment.model.clone());
    work.data.experiment = Some(assignment.experiment.clone());
    work.data.experiment_arm = Some(assignment.arm.clone());
    Ok(Some(format!(
        "Model: {} (experiment {}, arm {}).",
        assignment.model, assignment.experiment, assignment.arm
    )))
}
