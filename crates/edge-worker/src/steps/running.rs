//! `running`: read new log pages into coalesced progress, publish PR links,
//! update the cost estimate (and enforce `maxCostPerTask`), and settle the
//! task when the run ends.

use super::runs;
use super::{StepError, StepResult, Work};
use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use chrono::{DateTime, Utc};
use cyrus_codegen_executor::progress::{LogFollower, ProgressEvent as CodegenEvent};
use cyrus_codegen_executor::{AgentRun, RunStatus, StatusClass};
use cyrus_core::cost::TokenEstimate;
use cyrus_core::lifecycle::{Event, RunOutcome};
use cyrus_linear::activity_policy::{ActivityPolicy, ActivityPolicyConfig, ProgressEvent};
use cyrus_store::{CostEntry, PARKED};

/// Log pages read per progress step at most.
const MAX_LOG_PAGES: usize = 3;
/// How soon a finished run's step retries when the log budget is spent.
const LOG_BUDGET_RETRY_MS: i64 = 2_000;

/// Whether a log read would go out now rather than wait for the budget.
fn logs_headroom(ctx: &Ctx) -> bool {
    ctx.codegen
        .rate_permit()
        .headroom()
        .iter()
        .find(|h| h.class == cyrus_codegen_executor::EndpointClass::Logs)
        .is_none_or(|h| h.remaining() > 0)
}

pub(super) async fn running(ctx: &Ctx, work: &mut Work) -> StepResult {
    let Some(run_id) = work.task.codegen_run_id else {
        return Err(StepError::Fatal("running without a Codegen run".into()));
    };
    let now = ctx.now_ms();
    let cached = ctx
        .cache
        .runs_seen
        .lock()
        .expect("runs cache")
        .get(&run_id)
        .cloned();
    let run = match cached {
        Some(run) => run,
        None => {
            ctx.store.add_api_calls(&work.task.id, 1).await?;
            let run = ctx.codegen.get_run(run_id).await?;
            ctx.cache
                .runs_seen
                .lock()
                .expect("runs cache")
                .insert(run_id, run.clone());
            run
        }
    };
    let status = run.status();
    work.data.last_status = Some(status.as_str().to_string());
    // Followed until it ends (again after a restart, when the tracker
    // starts empty); a run already seen ending is not polled again.
    if status.should_poll() {
        runs::follow(ctx, &work.task.id, run_id, status.clone());
    }

    // Progress and the cost estimate from new log entries.
    let mut follower = LogFollower::resume_from(
        run_id,
        work.task.model.clone(),
        work.data.log_cursor,
        TokenEstimate {
            input_tokens: work.data.input_tokens,
            output_tokens: work.data.output_tokens,
        },
    );
    // A step must not sit on the log-read budget while holding a scheduler
    // slot (with many runs the budget is the bottleneck, and blocked steps
    // would starve new tasks): without headroom, a running run skips its
    // progress read this time, and a finished one comes back shortly for
    // its last entries (the cost estimate needs them).
    let can_read_logs = logs_headroom(ctx);
    if !can_read_logs && (status.is_terminal() || status.needs_input()) {
        return Err(StepError::Wait {
            at: now + LOG_BUDGET_RETRY_MS,
            why: "waiting for Codegen's log-read budget to read the run's last entries".into(),
        });
    }
    let events = if !can_read_logs {
        Vec::new()
    } else {
        let polled = follower.poll(&ctx.codegen, MAX_LOG_PAGES).await;
        ctx.store.add_api_calls(&work.task.id, 1).await?;
        match polled {
            Ok(events) => events,
            Err(err) if err.is_retryable() => {
                tracing::warn!(task = %work.task.id, error = %err, "logs unavailable this time");
                Vec::new()
            }
            Err(err) => return Err(err.into()),
        }
    };
    let first_cursor = work.data.log_cursor;
    work.data.log_cursor = follower.cursor();
    let tokens = follower.tokens();
    work.data.input_tokens = tokens.input_tokens;
    work.data.output_tokens = tokens.output_tokens;
    record_cost(ctx, work, follower.cost(&ctx.config.codegen.pricing).amount).await?;

    let planned = plan_progress(ctx, work, events, now);
    for (i, activity) in planned.into_iter().enumerate() {
        ctx.enqueue(
            work.session(),
            format!("progress:{}:{first_cursor}:{i}", work.session()),
            activity,
        )
        .await?;
    }
    announce_pull_requests(ctx, work, &run).await?;

    // The per-task cost cap.
    let cap = ctx.config.codegen.max_cost_per_task;
    if super::budget::over_task_cap(ctx, work) && status.class() != StatusClass::Succeeded {
        runs::stop(ctx, run_id).await;
        let estimate = super::budget::estimate_of(work);
        crate::audit::task(
            ctx,
            &work.task,
            cyrus_store::AuditKind::BudgetRefused,
            &format!("run{run_id}"),
            Some("cyrus"),
            &format!("the run's estimated cost {estimate} passed maxCostPerTask {cap}"),
            Some(serde_json::json!({"estimateMicros": estimate.0, "capMicros": cap.0, "runId": run_id})),
        )
        .await?;
        let body = format!(
            "I stopped the run because its estimated cost ({}) passed the per-task limit `maxCostPerTask` ({cap}). The estimate is derived from the run's logs. Raise the limit or split the issue, then reply here to continue.",
            super::budget::estimate_of(work)
        );
        return finish(
            ctx,
            work,
            &run,
            Event::CostCapExceeded,
            ActivityKind::Error,
            body,
            "cost_cap",
        )
        .await;
    }

    // The run deadline.
    let deadline_ms = ctx.config.codegen.run_deadline_minutes as i64 * 60_000;
    if status.is_in_progress() && work.task.started_at.is_some_and(|s| now - s > deadline_ms) {
        runs::stop(ctx, run_id).await;
        let body = format!(
            "I stopped the run after {} minutes (`codegen.runDeadlineMinutes`). The trace is at {}. Reply here to continue where it left off.",
            ctx.config.codegen.run_deadline_minutes,
            run.web_url.as_deref().unwrap_or("Codegen")
        );
        return finish(
            ctx,
            work,
            &run,
            Event::RunStatus(RunOutcome::Failed),
            ActivityKind::Error,
            body,
            "deadline",
        )
        .await;
    }

    match status.class() {
        StatusClass::Succeeded => {
            let body = success_body(work, &run, now);
            finish(
                ctx,
                work,
                &run,
                Event::RunStatus(RunOutcome::Succeeded),
                ActivityKind::Response,
                body,
                "done",
            )
            .await
        }
        StatusClass::Failed | StatusClass::LimitHit => {
            let body = failure_body(&status, &run);
            finish(
                ctx,
                work,
                &run,
                Event::RunStatus(RunOutcome::Failed),
                ActivityKind::Error,
                body,
                "failed",
            )
            .await
        }
        StatusClass::Stopped => {
            let body = "The Codegen run was cancelled outside Cyrus, so I've stopped. Reply here to start again.".to_string();
            finish(
                ctx,
                work,
                &run,
                Event::RunStatus(RunOutcome::Cancelled),
                ActivityKind::Response,
                body,
                "cancelled",
            )
            .await
        }
        StatusClass::NeedsInput => {
            let body = run
                .result
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "The agent paused and needs your input to continue. Reply here with what it should do.".into());
            ctx.enqueue(
                work.session(),
                format!("paused:{}:{}:{}", work.session(), run_id, work.data.resumes),
                OutboxOp::activity(ActivityKind::Elicitation, body),
            )
            .await?;
            runs::forget(ctx, run_id);
            work.advance(ctx, Event::RunStatus(RunOutcome::NeedsInput), PARKED)
                .await?;
            // An answer that arrived while this step ran was woken before
            // the task was parked (and the park overwrote it): look again.
            if work.has_pending_prompt(ctx).await? {
                ctx.store.wake_task(&work.task.id, ctx.now_ms()).await?;
                ctx.wake.scheduler.notify_one();
            }
            Ok(())
        }
        StatusClass::NotStarted | StatusClass::Running | StatusClass::Unknown => {
            // The keep-alive came from `plan_progress`'s policy tick above.
            let next = now + runs::progress_interval_ms(ctx).await;
            work.advance(ctx, Event::RunStatus(RunOutcome::InProgress), next)
                .await
        }
    }
}

/// Posts the final activity, settles money and the run slot, and moves the
/// task on. A follow-up that arrived meanwhile is picked up right after.
async fn finish(
    ctx: &Ctx,
    work: &mut Work,
    run: &AgentRun,
    event: Event,
    kind: ActivityKind,
    body: String,
    why: &str,
) -> StepResult {
    let run_id = run.id;
    ctx.enqueue(
        work.session(),
        format!("final:{}:{run_id}:{}", work.session(), work.data.resumes),
        OutboxOp::activity(kind, body),
    )
    .await?;
    super::budget::release(ctx, work).await;
    if let Some(intent) = ctx.store.find_run_intent(&work.task.id).await? {
        ctx.store
            .finish_run(
                intent.id,
                run.status().as_str(),
                &work.data.pr_urls,
                ctx.now_ms(),
            )
            .await?;
    }
    if let Some(started) = work.task.started_at {
        metrics::histogram!("cyrus_run_duration_seconds", "outcome" => why.to_string())
            .record((ctx.now_ms() - started).max(0) as f64 / 1000.0);
    }
    runs::forget(ctx, run_id);
    ctx.cache
        .policies
        .lock()
        .expect("policies")
        .remove(&work.task.id);
    super::budget::check_day(ctx).await;
    work.advance(ctx, event, PARKED).await?;
    // A settled task is not claimable; reopen it for a follow-up that
    // arrived meanwhile. Read only now, after the task is stored settled: a
    // follow-up stored before this read is seen here, and one stored after
    // it finds the task settled and reopens it itself (intake). Reading
    // before the write left a window in which both missed it.
    if !work.state().is_final() && work.has_pending_prompt(ctx).await? {
        ctx.store.reopen_task(&work.task.id, ctx.now_ms()).await?;
    }
    Ok(())
}

async fn record_cost(ctx: &Ctx, work: &mut Work, total: cyrus_core::MicroDollars) -> StepResult {
    let previous = work.task.estimated_cost.unwrap_or_default();
    // Estimates only grow (log entries are never un-read).
    let total = total.max(previous);
    if total > previous {
        work.data.cost_seq += 1;
        let entry = CostEntry {
            task_id: work.task.id.clone(),
            seq: work.data.cost_seq,
            repository: work
                .data
                .repository_name
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            model: work.task.model.clone().unwrap_or_else(|| "default".into()),
            task_type: work.task.task_type,
            day: ctx.today(),
            amount: total - previous,
            recorded_at: ctx.now_ms(),
        };
        ctx.store.add_cost(&entry).await?;
        work.task.estimated_cost = Some(total);
    }
    Ok(())
}

fn plan_progress(ctx: &Ctx, work: &Work, events: Vec<CodegenEvent>, now_ms: i64) -> Vec<OutboxOp> {
    let now = to_utc(now_ms);
    let mut policies = ctx.cache.policies.lock().expect("policies");
    let policy = policies.entry(work.task.id.clone()).or_insert_with(|| {
        let cfg = ActivityPolicyConfig {
            max_per_minute: ctx.config.linear.max_activities_per_session_per_minute,
            verbosity: ctx.config.linear.verbosity,
            ..Default::default()
        };
        ActivityPolicy::new(cfg, now)
    });
    let mut out = Vec::new();
    for event in events {
        let mapped = match event {
            CodegenEvent::Thought(t) => ProgressEvent::Thought(t),
            CodegenEvent::ToolCall {
                name,
                input_summary,
            } => ProgressEvent::ToolCall {
                name,
                input: input_summary,
            },
            CodegenEvent::Observation(o) => ProgressEvent::Observation(o),
            // Final answers and errors are posted from the run's status.
            CodegenEvent::FinalAnswer(_) | CodegenEvent::Error(_) => continue,
        };
        if let Some(planned) = policy.on_event(mapped, now) {
            out.push(to_op(planned));
        }
    }
    if let Some(planned) = policy.tick(now) {
        out.push(to_op(planned));
    }
    out
}

fn to_op(planned: cyrus_linear::activity_policy::PlannedActivity) -> OutboxOp {
    use cyrus_linear::ActivityContent as C;
    let (kind, body) = match planned.content {
        C::Thought { body } => (ActivityKind::Thought, body),
        C::Action {
            action, parameter, ..
        } => (ActivityKind::Thought, format!("{action}: {parameter}")),
        C::Elicitation { body } => (ActivityKind::Elicitation, body),
        C::Response { body } => (ActivityKind::Response, body),
        C::Error { body } => (ActivityKind::Error, body),
    };
    OutboxOp::activity(kind, body).ephemeral(planned.ephemeral)
}

async fn announce_pull_requests(ctx: &Ctx, work: &mut Work, run: &AgentRun) -> StepResult {
    let new: Vec<_> = run
        .pull_requests()
        .iter()
        .filter_map(|pr| pr.url.clone())
        .filter(|url| !work.data.pr_urls.contains(url))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    work.data.pr_urls.extend(new.iter().cloned());
    let mut urls: Vec<(String, String)> = Vec::new();
    if let Some(web) = &work.data.web_url {
        urls.push(("Codegen run".into(), web.clone()));
    }
    for (i, url) in work.data.pr_urls.iter().enumerate() {
        urls.push((format!("Pull request {}", i + 1), url.clone()));
    }
    ctx.enqueue(
        work.session(),
        format!("urls:{}:prs:{}", work.session(), work.data.pr_urls.len()),
        OutboxOp::SessionUrls { urls },
    )
    .await?;
    for url in new {
        ctx.enqueue(
            work.session(),
            format!("pr:{}:{url}", work.session()),
            OutboxOp::activity(
                ActivityKind::Thought,
                format!("Opened a pull request: {url}"),
            ),
        )
        .await?;
    }
    Ok(())
}

fn success_body(work: &Work, run: &AgentRun, now_ms: i64) -> String {
    let mut body = run
        .result
        .clone()
        .or_else(|| run.summary.clone())
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "The run finished without a written summary.".to_string());
    if !work.data.pr_urls.is_empty() {
        body.push_str("\n\n**Pull requests:**\n");
        for url in &work.data.pr_urls {
            body.push_str(&format!("- {url}\n"));
        }
    }
    body.push_str(&footer(work, run, now_ms));
    body
}

fn failure_body(status: &RunStatus, run: &AgentRun) -> String {
    let what = status
        .limit_description()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the Codegen run ended with status {}", status.as_str()));
    let detail = run.result.clone().filter(|r| !r.trim().is_empty());
    let mut body = format!("I couldn't finish this: {what}.");
    if let Some(detail) = detail {
        body.push_str(&format!("\n\n{detail}"));
    }
    if let Some(url) = &run.web_url {
        body.push_str(&format!("\n\nThe run's trace: {url}"));
    }
    body.push_str("\n\nReply here with more guidance to try again from where it stopped.");
    body
}

fn footer(work: &Work, run: &AgentRun, now_ms: i64) -> String {
    let duration = work
        .task
        .started_at
        .map(|s| format_duration((now_ms - s).max(0) / 1000))
        .unwrap_or_else(|| "unknown".into());
    let cost = work.task.estimated_cost.unwrap_or_default();
    let trace = run
        .web_url
        .as_deref()
        .map(|u| format!(" · [trace]({u})"))
        .unwrap_or_default();
    format!("\n\n---\nDuration {duration} · estimated cost {cost} (estimate from run logs){trace}")
}

fn format_duration(secs: i64) -> String {
    if secs >= 3600 {
        format!("{}h {}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
