//! `queued` and `starting`: budget, a run slot, the run intent, and Codegen's
//! create — with recovery that never creates a second run.

use super::runs::{self, MARKER_KEY};
use super::{StepError, StepResult, Work};
use crate::context::Ctx;
use crate::outbox::OutboxOp;
use cyrus_codegen_executor::{CodegenError, CreateRun};
use cyrus_core::lifecycle::{Event, WaitReason};
use cyrus_store::{RunIntent, RunSlot};
use serde_json::{Map, json};

/// Retry interval while every run slot is taken.
const SLOT_WAIT_MS: i64 = 2_000;

pub(super) async fn queued(ctx: &Ctx, work: &mut Work) -> StepResult {
    let now = ctx.now_ms();
    let codegen = &ctx.config.codegen;

    // 1. Budget: hold this task's worst case (maxCostPerTask) against the day.
    if !super::budget::hold(ctx, work).await? {
        return Ok(());
    }

    // 2. A run slot (maxConcurrentRuns, shared by every replica) and the
    // intent, recorded before Codegen is called.
    if work.data.run_attempt == 0 {
        work.data.run_attempt = 1;
    }
    let marker = format!("cyrus:{}:{}", work.task.id, work.data.run_attempt);
    let slot = ctx
        .store
        .record_run_intent(
            &work.task.id,
            work.data.run_attempt,
            &marker,
            now,
            Some(i64::from(codegen.max_concurrent_runs)),
        )
        .await?;
    let intent = match slot {
        RunSlot::Recorded(intent) => intent,
        RunSlot::AtCapacity { active } => {
            work.task.step = Some(WaitReason::WaitingForSlot);
            work.task.detail = Some(format!(
                "{active} runs active (maxConcurrentRuns {})",
                codegen.max_concurrent_runs
            ));
            work.task.run_at = now + SLOT_WAIT_MS;
            return work.save(ctx).await;
        }
    };
    work.task.step = None;
    work.task.detail = None;
    work.advance(ctx, Event::RunIntentRecorded, now).await?;
    create(ctx, work, intent, true).await
}

/// Recovery entry: an intent exists but the task never saw the run's id.
pub(super) async fn starting(ctx: &Ctx, work: &mut Work) -> StepResult {
    let intent = ctx
        .store
        .find_run_intent(&work.task.id)
        .await?
        .ok_or_else(|| StepError::Fatal("starting without a run intent".into()))?;
    create(ctx, work, intent, false).await
}

async fn create(ctx: &Ctx, work: &mut Work, intent: RunIntent, fresh: bool) -> StepResult {
    let run = if let Some(run_id) = intent.codegen_run_id {
        ctx.codegen.get_run(run_id).await?
    } else if let Some(found) = (!fresh)
        .then_some(())
        .map(|_| runs::find_by_marker(ctx, &intent.marker))
    {
        match found.await? {
            Some(run) => {
                tracing::info!(task = %work.task.id, run = run.id, "recovered a run created before a restart");
                run
            }
            None => create_run(ctx, work, &intent).await?,
        }
    } else {
        create_run(ctx, work, &intent).await?
    };
    ctx.store.add_api_calls(&work.task.id, 1).await?;
    ctx.store.attach_codegen_run(intent.id, run.id).await?;

    let now = ctx.now_ms();
    work.task.codegen_run_id = Some(run.id);
    work.task.started_at.get_or_insert(now);
    work.data.web_url = run.web_url.clone();
    work.data.last_status = Some(run.status().as_str().to_string());
    metrics::histogram!("cyrus_time_to_start_seconds")
        .record((now - work.task.created_at).max(0) as f64 / 1000.0);
    if let Some(url) = &run.web_url {
        ctx.enqueue(
            work.session(),
            format!("urls:{}:{}", work.session(), run.id),
            OutboxOp::SessionUrls {
                urls: vec![("Codegen run".into(), url.clone())],
            },
        )
        .await?;
    }
    let next = now + runs::progress_interval_ms(ctx).await;
    work.advance(ctx, Event::RunAttached, next).await?;
    runs::track(ctx, &work.task.id, run);
    Ok(())
}

async fn create_run(
    ctx: &Ctx,
    work: &mut Work,
    intent: &RunIntent,
) -> Result<cyrus_codegen_executor::AgentRun, StepError> {
    let prompt = work
        .data
        .prompt
        .clone()
        .ok_or_else(|| StepError::Fatal("no prompt was built for this task".into()))?;
    let mut metadata = Map::new();
    metadata.insert(MARKER_KEY.into(), json!(intent.marker));
    metadata.insert("linear_session".into(), json!(work.task.agent_session_id));
    metadata.insert("linear_issue".into(), json!(work.task.issue_identifier));
    let input = CreateRun {
        prompt,
        repo_id: work.task.repository_id,
        model: work.task.model.clone(),
        agent_type: None,
        metadata: Some(metadata),
        images: (!work.data.images.is_empty()).then(|| work.data.images.clone()),
    };
    // Runs start in claim order (priority, then FIFO): one create at a time
    // per replica, each waiting its turn at the creation rate limit.
    let _turn = ctx.start_lane.lock().await;
    match ctx.codegen.create_run(&input).await {
        Ok(run) => Ok(run),
        Err(err @ CodegenError::PlanLimit { .. }) => {
            let key = "codegen_402";
            let text = format!(
                "Codegen's plan allowance is used up; new runs fail until the plan is upgraded: {err}"
            );
            crate::alerts::raise(ctx, key, &text, ctx.now_ms()).await;
            Err(StepError::Fatal(
                "Codegen's plan allowance for agent runs is used up (HTTP 402). Ask an admin to upgrade the Codegen plan, then reply here to retry.".into(),
            ))
        }
        Err(err) => Err(err.into()),
    }
}
