//! The scheduler: claims due tasks (priority, then FIFO) under a lease,
//! keeps the lease alive while the state's step runs (`steps::dispatch`),
//! and applies the failure policy to what the step reports: wait, retry
//! with backoff, dead-letter, or fail.

use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use crate::steps::{self, StepError, Work};
use cyrus_core::lifecycle::Event;
use cyrus_store::{PARKED, StoreError, Task};
use std::sync::Arc;
use std::time::Duration;

/// How long a claim lasts before another worker may take the task; renewed
/// while a step runs.
const LEASE: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// Steps in flight at once on this replica.
const MAX_IN_FLIGHT: usize = 32;

/// Claims and works on due tasks until shutdown.
pub(crate) async fn run(ctx: Ctx) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        while in_flight.try_join_next().is_some() {}
        let free = slots.available_permits();
        let mut claimed = 0;
        if free > 0 {
            match ctx
                .store
                .claim_due_tasks(ctx.owner(), LEASE, ctx.now_ms(), free as i64)
                .await
            {
                Ok(tasks) => {
                    claimed = tasks.len();
                    for task in tasks {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        let ctx = ctx.clone();
                        in_flight.spawn(async move {
                            work_on(&ctx, task).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => tracing::error!(error = %err, "scheduler: claiming tasks failed"),
            }
        }
        if claimed == 0 {
            tokio::select! {
                _ = ctx.wake.scheduler.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = ctx.shutdown.cancelled() => break,
            }
        }
    }
    // Graceful shutdown: let in-flight steps finish their writes.
    while in_flight.join_next().await.is_some() {}
}

async fn work_on(ctx: &Ctx, task: Task) {
    let task_id = task.id.clone();
    let renew = {
        let ctx = ctx.clone();
        let task_id = task_id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let until = ctx.now_ms() + LEASE.as_millis() as i64;
                if ctx
                    .store
                    .renew_lease(&task_id, ctx.owner(), until)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    let result = step(ctx, task).await;
    renew.abort();
    if let Err(err) = result {
        tracing::error!(task = %task_id, error = %err, "scheduler: step bookkeeping failed");
    }
    if let Err(err) = ctx.store.release_task(&task_id, ctx.owner()).await {
        tracing::debug!(task = %task_id, error = %err, "scheduler: lease already gone");
    }
    ctx.wake.scheduler.notify_one();
}

/// Does one state's work and handles its failure.
async fn step(ctx: &Ctx, task: Task) -> Result<(), StoreError> {
    let mut work = Work::new(task);
    let outcome = steps::dispatch(ctx, &mut work).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(StepError::Store(err)) => {
            // A conflict means another worker owns the task now; anything
            // else is retried when the lease expires.
            tracing::warn!(task = %work.task.id, error = %err, "step could not store its result");
            Ok(())
        }
        Err(StepError::Wait { at, why }) => {
            tracing::info!(task = %work.task.id, "step waits: {why}");
            work.task.run_at = at.max(ctx.now_ms() + 1_000);
            work.task.detail = Some(why);
            save_quietly(ctx, &mut work).await
        }
        Err(StepError::Retry(why)) => retry_or_dead_letter(ctx, work, why).await,
        Err(StepError::Fatal(why)) => fail(ctx, work, why).await,
    }
}

async fn save_quietly(ctx: &Ctx, work: &mut Work) -> Result<(), StoreError> {
    match work.save(ctx).await {
        Err(StepError::Store(err)) => Err(err),
        _ => Ok(()),
    }
}

async fn retry_or_dead_letter(ctx: &Ctx, mut work: Work, why: String) -> Result<(), StoreError> {
    work.task.attempts += 1;
    work.task.last_error = Some(why.clone());
    if work.task.attempts < work.task.max_attempts {
        // 5 s, 10 s, 20 s, … capped at 5 min.
        let delay = (5_000i64 << (work.task.attempts - 1).min(6)).min(300_000);
        work.task.run_at = ctx.now_ms() + delay;
        tracing::warn!(task = %work.task.id, attempt = work.task.attempts, "step failed, retrying in {delay} ms: {why}");
        return save_quietly(ctx, &mut work).await;
    }
    let reason = format!("gave up after {} attempts: {why}", work.task.attempts);
    tracing::error!(task = %work.task.id, "dead-lettering: {reason}");
    crate::steps::budget::release(ctx, &work).await;
    ctx.store
        .dead_letter(&work.task.id, ctx.owner(), &reason, ctx.now_ms())
        .await?;
    let body = format!(
        "I couldn't finish this: {why}\n\nI tried {} times and have stopped. Reply here to try again once the cause is fixed.",
        work.task.attempts
    );
    ctx.enqueue(
        work.session(),
        format!("final:dead:{}", work.task.id),
        OutboxOp::activity(ActivityKind::Error, body),
    )
    .await?;
    let key = format!("dead_letter:{}", work.task.id);
    let text = format!(
        "Task for {} was dead-lettered: {why}",
        work.task.issue_identifier
    );
    crate::alerts::raise(ctx, &key, &text, ctx.now_ms()).await;
    Ok(())
}

/// Ends the task as failed with an error activity saying what to do.
async fn fail(ctx: &Ctx, mut work: Work, why: String) -> Result<(), StoreError> {
    tracing::error!(task = %work.task.id, "task failed: {why}");
    crate::steps::budget::release(ctx, &work).await;
    if let Ok(Some(intent)) = ctx.store.find_run_intent(&work.task.id).await {
        let _ = ctx
            .store
            .finish_run(intent.id, "failed", &intent.pr_urls, ctx.now_ms())
            .await;
    }
    let body = format!("I couldn't complete this: {why}");
    ctx.enqueue(
        work.session(),
        format!("final:fatal:{}:{}", work.task.id, work.task.version),
        OutboxOp::activity(ActivityKind::Error, body),
    )
    .await?;
    match work.advance(ctx, Event::Fatal, PARKED).await {
        Err(StepError::Store(err)) => return Err(err),
        Err(other) => tracing::error!(task = %work.task.id, "{other}"),
        Ok(()) => {}
    }
    work.task.last_error = Some(why);
    save_quietly(ctx, &mut work).await
}
