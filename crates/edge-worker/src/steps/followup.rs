//! `awaiting_input`, `completed`, `failed`: parked until a follow-up prompt
//! arrives, then deliver it — with Codegen's resume to the same run (Codegen
//! has no mid-run input), or as a new run when there is nothing to resume.
//! The prompt goes through `core::prompt` (its `previous_run` and
//! `follow_up` sections, within the token budget).

use super::runs;
use super::{StepError, StepResult, Work};
use crate::context::Ctx;
use crate::outbox::OutboxOp;
use cyrus_codegen_executor::{CodegenError, ResumeRun};
use cyrus_core::lifecycle::Event;
use cyrus_core::prompt::{PreviousRun, follow_up_prompt};
use cyrus_store::PARKED;

pub(super) async fn followup(ctx: &Ctx, work: &mut Work) -> StepResult {
    let pending = work.pending_prompts(ctx).await?;
    if pending.is_empty() {
        work.task.run_at = PARKED;
        if work.state().is_settled() {
            work.task.finished_at.get_or_insert(ctx.now_ms());
        }
        work.save(ctx).await?;
        // A prompt stored after the read above was woken (or reopened)
        // before this write parked the task again: look once more.
        if work.has_pending_prompt(ctx).await? {
            ctx.store.reopen_task(&work.task.id, ctx.now_ms()).await?;
            ctx.store.wake_task(&work.task.id, ctx.now_ms()).await?;
            ctx.wake.scheduler.notify_one();
        }
        return Ok(());
    }
    // A settled orchestration has no run to resume: a reply makes it look
    // at the sub-issues again (a cycle removed, sub-issues added).
    // A plan waiting for approval: "yes" (or the option) creates the
    // sub-issues and orchestrates them; anything else goes to the planning
    // run below, which answers with a revised plan.
    let approves = pending
        .last()
        .is_some_and(|f| cyrus_core::orchestration::plan::is_approval(&f.body));
    if let Some(plan) = work.data.plan.as_mut()
        && !plan.approved
        && work.data.orchestration.is_none()
        && approves
    {
        plan.approved = true;
        work.data.orchestration = Some(Default::default());
        work.data.delivered_followups = pending.iter().map(|f| f.id).collect();
        work.advance(ctx, Event::Orchestrate, ctx.now_ms()).await?;
        mark_delivered(ctx, &pending).await?;
        return Ok(());
    }
    if work.data.plan.as_ref().is_some_and(|p| !p.approved) {
        // Feedback on the plan: the revised one may go back once if invalid.
        work.data.plan_attempts = 0;
    }
    if let Some(orch) = work.data.orchestration.as_mut() {
        orch.refresh = true;
        orch.round += 1;
        work.data.delivered_followups = pending.iter().map(|f| f.id).collect();
        work.advance(ctx, Event::Orchestrate, ctx.now_ms()).await?;
        mark_delivered(ctx, &pending).await?;
        return Ok(());
    }
    if !super::budget::hold(ctx, work).await? {
        return Ok(());
    }
    let message = pending
        .iter()
        .map(|f| f.body.trim())
        .collect::<Vec<_>>()
        .join("\n\n");
    let previous = PreviousRun {
        status: work.data.last_status.clone(),
        summary: None,
        pr_url: work.data.pr_urls.last().cloned(),
    };
    let budget = ctx.config.prompt.token_budget;
    let last = pending.last().map(|f| f.id).unwrap_or_default();

    if let Some(run_id) = work.task.codegen_run_id {
        if !work.data.resume_sent.is_empty() {
            // A resume went out before and its answer was never recorded
            // (lost on the way, or this worker died): if Codegen took it,
            // the run is going again, and sending it twice would make the
            // agent do the work twice.
            let run = ctx.codegen.get_run(run_id).await?;
            ctx.store.add_api_calls(&work.task.id, 1).await?;
            let status = run.status();
            if status.should_poll() && !status.needs_input() {
                let sent: Vec<_> = pending
                    .iter()
                    .filter(|f| work.data.resume_sent.contains(&f.id))
                    .cloned()
                    .collect();
                tracing::info!(task = %work.task.id, run = run_id, "a resume sent before took effect; not sending it again");
                return resumed(ctx, work, run, &sent).await;
            }
        }
        work.data.resume_sent = pending.iter().map(|f| f.id).collect();
        work.save(ctx).await?;
        let input = ResumeRun {
            agent_run_id: run_id,
            prompt: follow_up_prompt(&message, Some(&previous), None, budget).text,
            images: None,
        };
        match ctx.codegen.resume_run(&input).await {
            Ok(run) => {
                ctx.store.add_api_calls(&work.task.id, 1).await?;
                return resumed(ctx, work, run, &pending).await;
            }
            // A run Codegen cannot resume (gone, or refused in its state)
            // gets a fresh run carrying the follow-up.
            Err(
                err @ (CodegenError::NotFound { .. }
                | CodegenError::Validation { .. }
                | CodegenError::Unexpected { .. }),
            ) => {
                tracing::info!(task = %work.task.id, error = %err, "resume refused; starting a new run");
                work.data.resume_sent.clear();
            }
            Err(err) => return Err(StepError::from(err)),
        }
    }
    let base = work.data.prompt.clone().unwrap_or_default();
    let prompt = follow_up_prompt(&message, Some(&previous), Some(&base), budget);
    work.data.prompt_tokens = Some(prompt.approx_tokens);
    work.data.prompt = Some(prompt.text);
    work.data.run_attempt += 1;
    work.data.log_cursor = 0;
    work.data.delivered_followups = pending.iter().map(|f| f.id).collect();
    work.task.codegen_run_id = None;
    work.advance(ctx, Event::Requeued, ctx.now_ms()).await?;
    mark_delivered(ctx, &pending).await?;
    ctx.enqueue(
        work.session(),
        format!("requeue:{}:{last}", work.session()),
        OutboxOp::ephemeral_thought("Got it — starting a new run with your follow-up."),
    )
    .await?;
    Ok(())
}

/// Codegen took the follow-ups `handed` (a resume's answer, or a run found
/// going again after one): store the hand-over with the state change,
/// before anything else, so a crash after it neither loses the resumed run
/// nor delivers the follow-ups a second time; then mark them delivered.
async fn resumed(
    ctx: &Ctx,
    work: &mut Work,
    run: cyrus_codegen_executor::AgentRun,
    handed: &[cyrus_store::FollowUp],
) -> StepResult {
    let last = handed.last().map(|f| f.id).unwrap_or_default();
    work.data.resumes += 1;
    work.data.last_status = Some(run.status().as_str().to_string());
    work.data.delivered_followups = handed.iter().map(|f| f.id).collect();
    work.data.resume_sent.clear();
    let next = ctx.now_ms() + runs::progress_interval_ms(ctx).await;
    work.advance(ctx, Event::Resumed, next).await?;
    runs::track(ctx, &work.task.id, run);
    mark_delivered(ctx, handed).await?;
    ctx.enqueue(
        work.session(),
        format!("resume:{}:{last}", work.session()),
        OutboxOp::ephemeral_thought("Got it — continuing the run with your follow-up."),
    )
    .await?;
    Ok(())
}

async fn mark_delivered(ctx: &Ctx, followups: &[cyrus_store::FollowUp]) -> StepResult {
    for f in followups {
        ctx.store
            .mark_followup_delivered(f.id, ctx.now_ms())
            .await?;
    }
    Ok(())
}
