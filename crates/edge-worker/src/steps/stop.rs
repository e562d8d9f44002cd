//! A stop request (the user's stop signal or "stop" message, un-delegation,
//! the issue closing or being deleted): stop the run, say so once, end.

use super::runs;
use super::{StepResult, Work};
use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use cyrus_core::lifecycle::{Event, TaskState};
use cyrus_store::{FollowUpKind, PARKED};

pub(super) async fn stop(ctx: &Ctx, work: &mut Work) -> StepResult {
    let pending = ctx.store.pending_followups(&work.task.id).await?;
    let reason = pending
        .iter()
        .rev()
        .find(|f| f.kind == FollowUpKind::Stop)
        .map_or("A stop was requested.", |f| f.body.as_str())
        .to_string();
    for f in &pending {
        ctx.store
            .mark_followup_delivered(f.id, ctx.now_ms())
            .await?;
    }
    let intent = ctx.store.find_run_intent(&work.task.id).await?;
    let attached = work
        .task
        .codegen_run_id
        .filter(|_| work.state().has_live_run() || work.state() == TaskState::AwaitingInput);
    let run_to_stop = match (attached, &intent) {
        (Some(run_id), _) => Some(run_id),
        // Stopped while `starting`: the create may have reached Codegen
        // without its answer reaching us (a lost response, a crash), so the
        // run is found the way recovery finds it, by the intent's marker.
        (None, Some(intent)) if work.state() == TaskState::Starting => {
            match intent.codegen_run_id {
                Some(run_id) => Some(run_id),
                None => runs::find_by_marker(ctx, &intent.marker)
                    .await?
                    .map(|run| run.id),
            }
        }
        _ => None,
    };
    if let Some(run_id) = run_to_stop {
        runs::stop(ctx, run_id).await;
        ctx.store.add_api_calls(&work.task.id, 1).await?;
        runs::forget(ctx, run_id);
    }
    if let Some(intent) = intent {
        ctx.store
            .finish_run(intent.id, "CANCELLED", &intent.pr_urls, ctx.now_ms())
            .await?;
    }
    super::budget::release(ctx, work).await;
    stop_children(ctx, work).await?;
    ctx.cache
        .policies
        .lock()
        .expect("policies")
        .remove(&work.task.id);
    let mut body = format!("I've stopped working on this. {reason}");
    if !work.data.pr_urls.is_empty() {
        body.push_str(&format!(
            "\n\nPull requests opened so far: {}",
            work.data.pr_urls.join(", ")
        ));
    }
    ctx.enqueue(
        work.session(),
        format!("final:stop:{}", work.session()),
        OutboxOp::activity(ActivityKind::Response, body),
    )
    .await?;
    work.advance(ctx, Event::StopRequested, PARKED).await
}

/// A stopped orchestration stops every child it handed over that still
/// runs (each child's own stop step says so in its session), and starts
/// no more: its hand-overs are only accepted while it orchestrates.
async fn stop_children(ctx: &Ctx, work: &Work) -> StepResult {
    let Some(orch) = &work.data.orchestration else {
        return Ok(());
    };
    for task_id in orch.runs.values().filter_map(|r| r.task_id.as_deref()) {
        crate::orchestration::stop_child(ctx, &work.task, task_id).await?;
    }
    Ok(())
}
