//! `awaiting_input`, `completed`, `failed` woken by a follow-up prompt: send
//! it to the run with Codegen's resume (Codegen has no mid-run input), or
//! queue a new run when there is nothing to resume.

use crate::context::Ctx;
use crate::outbox::OutboxOp;
use crate::scheduler::{STOP_PREFIX, StepError, StepResult, Work};
use cyrus_codegen_executor::{CodegenError, ResumeRun};
use cyrus_core::lifecycle::Event;
use cyrus_store::PARKED;

pub async fn settled(ctx: &Ctx, work: &mut Work) -> StepResult {
    let pending: Vec<_> = ctx
        .store
        .pending_followups(&work.task.id)
        .await?
        .into_iter()
        .filter(|f| !f.body.starts_with(STOP_PREFIX))
        .collect();
    if pending.is_empty() {
        work.task.run_at = PARKED;
        if work.state.is_settled() {
            work.task.finished_at.get_or_insert(ctx.now_ms());
        }
        return work.save(ctx).await;
    }
    if !crate::steps::start::hold_budget(ctx, work).await? {
        return Ok(());
    }
    let text = pending
        .iter()
        .map(|f| f.body.trim())
        .collect::<Vec<_>>()
        .join("\n\n");
    let prompt = format!("Follow-up from the user in Linear:\n\n{text}");
    let last = pending.last().map(|f| f.id).unwrap_or_default();

    if let Some(run_id) = work.task.codegen_run_id {
        let input = ResumeRun {
            agent_run_id: run_id,
            prompt: prompt.clone(),
            images: None,
        };
        match ctx.codegen.resume_run(&input).await {
            Ok(run) => {
                ctx.store.add_api_calls(&work.task.id, 1).await?;
                for f in &pending {
                    ctx.store
                        .mark_followup_delivered(f.id, ctx.now_ms())
                        .await?;
                }
                work.data.resumes += 1;
                let status = run.status();
                work.data.last_status = Some(status.as_str().to_string());
                ctx.runs_seen
                    .lock()
                    .expect("runs cache")
                    .insert(run_id, run);
                ctx.enqueue(
                    work.session(),
                    format!("resume:{}:{last}", work.session()),
                    OutboxOp::ephemeral_thought("Got it — continuing the run with your follow-up."),
                )
                .await?;
                let next = ctx.now_ms() + crate::steps::follow::progress_interval_ms(ctx).await;
                work.advance(ctx, Event::Resumed, next).await?;
                let _ = ctx.tracker.send(crate::tracker::Command::Track {
                    run_id,
                    task_id: work.task.id.clone(),
                    known: Some(status),
                });
                return Ok(());
            }
            // A run Codegen cannot resume (gone, or refused in its state)
            // gets a fresh run carrying the follow-up.
            Err(
                err @ (CodegenError::NotFound { .. }
                | CodegenError::Validation { .. }
                | CodegenError::Unexpected { .. }),
            ) => {
                tracing::info!(task = %work.task.id, error = %err, "resume refused; starting a new run");
            }
            Err(err) => return Err(StepError::from(err)),
        }
    }
    for f in &pending {
        ctx.store
            .mark_followup_delivered(f.id, ctx.now_ms())
            .await?;
    }
    let base = work.data.prompt.clone().unwrap_or_default();
    work.data.prompt = Some(format!("{base}\n\n{prompt}"));
    work.data.run_attempt += 1;
    work.data.log_cursor = 0;
    work.task.codegen_run_id = None;
    ctx.enqueue(
        work.session(),
        format!("requeue:{}:{last}", work.session()),
        OutboxOp::ephemeral_thought("Got it — starting a new run with your follow-up."),
    )
    .await?;
    work.advance(ctx, Event::Requeued, ctx.now_ms()).await
}
