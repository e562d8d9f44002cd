//! `queued` and `starting`: budget, a run slot, the run intent, and Codegen's
//! create — with recovery that never creates a second run.

use crate::context::Ctx;
use crate::outbox::OutboxOp;
use crate::scheduler::{StepError, StepResult, Work, next_utc_midnight};
use cyrus_codegen_executor::{CodegenError, CreateRun, ListRuns, PageRequest};
use cyrus_core::MicroDollars;
use cyrus_core::lifecycle::Event;
use cyrus_store::{Reservation, RunIntent, RunSlot};
use serde_json::{Map, Value, json};

/// The `step` of a `queued` task waiting for room in the daily budget.
pub const BUDGET_WAIT_STEP: &str = "budget_wait";
/// The metadata key carrying the run intent's marker to Codegen.
pub const MARKER_KEY: &str = "cyrus_marker";
/// How far back recovery looks for an orphaned run (list pages of 100).
const RECOVERY_PAGES: u64 = 3;
/// Retry interval while every run slot is taken.
const SLOT_WAIT_MS: i64 = 2_000;

pub async fn queued(ctx: &Ctx, work: &mut Work) -> StepResult {
    let now = ctx.now_ms();
    let codegen = &ctx.config.codegen;

    // 1. Budget: hold this task's worst case (maxCostPerTask) against the day.
    if !hold_budget(ctx, work).await? {
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
            work.task.step = Some("waiting_for_slot".into());
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

/// Holds `maxCostPerTask` of today's budget for the task. When the day's
/// budget has no room, tells the user once per day why the task waits and
/// until when, reschedules it, and returns false.
pub async fn hold_budget(ctx: &Ctx, work: &mut Work) -> Result<bool, StepError> {
    let now = ctx.now_ms();
    let codegen = &ctx.config.codegen;
    let today = ctx.today();
    match ctx
        .store
        .try_reserve(
            today,
            &work.task.id,
            codegen.max_cost_per_task,
            codegen.max_cost_per_day,
            now,
        )
        .await?
    {
        Reservation::Reserved => {
            if work.task.step.as_deref() == Some(BUDGET_WAIT_STEP) {
                work.task.step = None;
                work.task.detail = None;
            }
            Ok(true)
        }
        Reservation::WouldExceed { spent, reserved } => {
            crate::budget::check_day(ctx).await;
            let day = today.to_string();
            if work.data.budget_notice_day.as_deref() != Some(day.as_str()) {
                let body = format!(
                    "Today's estimated Codegen spend is {spent} (plus {reserved} held for running tasks) of the {} daily budget (`maxCostPerDay`), which leaves no room for this task's reserve of {} (`maxCostPerTask`). I'll start automatically when the budget resets at 00:00 UTC, or sooner if running tasks finish under their reserve.",
                    codegen.max_cost_per_day, codegen.max_cost_per_task
                );
                ctx.enqueue(
                    work.session(),
                    format!("budget:{}:{day}", work.session()),
                    OutboxOp::activity("thought", body),
                )
                .await?;
                work.data.budget_notice_day = Some(day);
            }
            work.task.step = Some(BUDGET_WAIT_STEP.into());
            work.task.detail = Some(format!(
                "waiting for daily budget (spent {spent}, held {reserved})"
            ));
            // Re-check every 5 minutes (a settling task may free room), at
            // the latest right after midnight UTC.
            work.task.run_at = (now + 300_000).min(next_utc_midnight(now) + 1_000);
            work.save(ctx).await?;
            Ok(false)
        }
    }
}

/// Recovery entry: an intent exists but the task never saw the run's id.
pub async fn starting(ctx: &Ctx, work: &mut Work) -> StepResult {
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
        .map(|_| find_by_marker(ctx, &intent.marker))
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
    let next = now + crate::steps::follow::progress_interval_ms(ctx).await;
    work.advance(ctx, Event::RunAttached, next).await?;
    // The answer is the run's first view: the first progress step reads it
    // from the cache, not with a `get run` of its own.
    let (run_id, status) = (run.id, run.status());
    ctx.runs_seen
        .lock()
        .expect("runs cache")
        .insert(run_id, run);
    let _ = ctx.tracker.send(crate::tracker::Command::Track {
        run_id,
        task_id: work.task.id.clone(),
        known: Some(status),
    });
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

/// Looks for a run carrying `marker` in its metadata among the newest runs.
pub(crate) async fn find_by_marker(
    ctx: &Ctx,
    marker: &str,
) -> Result<Option<cyrus_codegen_executor::AgentRun>, StepError> {
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

/// Dollars for messages: the estimate's amount or zero.
pub fn estimate_of(work: &Work) -> MicroDollars {
    work.task.estimated_cost.unwrap_or_default()
}
