//! The scheduler: claims due tasks (priority, then FIFO) under a lease and
//! does the work of each task's state, deciding only from what is stored.
//!
//! A step ends in one of three ways: it wrote the task's next state itself
//! (`Ok`), it hit a transient problem (`Retry`: the same state again later,
//! counting an attempt; out of attempts → dead letter), or it waits for
//! something outside its control (`Wait`: the same state later, no attempt
//! counted — e.g. Linear's rate limit or a free run slot).

use crate::context::Ctx;
use crate::outbox::OutboxOp;
use crate::task_data::TaskData;
use cyrus_core::lifecycle::{Event, TaskState, transition};
use cyrus_store::{PARKED, StoreError, Task};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a claim lasts before another worker may take the task; renewed
/// while a step runs.
pub const LEASE: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// Steps in flight at once on this replica.
const MAX_IN_FLIGHT: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Transient: retry later, counting an attempt.
    #[error("{0}")]
    Retry(String),
    /// Outside our control: retry at the given time without counting.
    #[error("waiting until {at}: {why}")]
    Wait { at: i64, why: String },
    /// Nothing will make this work: fail the task with this message.
    #[error("{0}")]
    Fatal(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<cyrus_linear::LinearError> for StepError {
    fn from(err: cyrus_linear::LinearError) -> StepError {
        use cyrus_linear::LinearError as L;
        match err {
            L::RateLimited { reset_at, message } => StepError::Wait {
                at: reset_at
                    .map(|t| t.timestamp_millis())
                    .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() + 60_000),
                why: format!("Linear rate limit: {message}"),
            },
            L::Permanent { code, message } => {
                StepError::Fatal(format!("Linear rejected a request ({code}): {message}"))
            }
            other => StepError::Retry(other.to_string()),
        }
    }
}

impl From<cyrus_codegen_executor::CodegenError> for StepError {
    fn from(err: cyrus_codegen_executor::CodegenError) -> StepError {
        if err.is_retryable() {
            StepError::Retry(err.to_string())
        } else {
            StepError::Fatal(err.to_string())
        }
    }
}

pub type StepResult = Result<(), StepError>;

/// A claimed task being worked on, with its typed data.
pub struct Work {
    pub task: Task,
    pub data: TaskData,
    pub state: TaskState,
}

impl Work {
    /// Applies `event` through the state machine (refusing illegal moves)
    /// and stores the task. Keeps `self` current for further writes.
    pub async fn advance(&mut self, ctx: &Ctx, event: Event, run_at: i64) -> StepResult {
        let next =
            transition(self.state, event).map_err(|e| StepError::Fatal(format!("bug: {e}")))?;
        self.task.state = next.as_str().to_string();
        self.state = next;
        self.task.run_at = run_at;
        self.task.attempts = 0;
        self.task.last_error = None;
        if next.is_settled() {
            self.task.finished_at.get_or_insert(ctx.now_ms());
            self.task.outcome = Some(next.as_str().to_string());
            self.task.run_at = PARKED;
        } else {
            self.task.finished_at = None;
            self.task.outcome = None;
        }
        self.save(ctx).await
    }

    /// Stores the task as it is (same state), e.g. to reschedule it.
    pub async fn save(&mut self, ctx: &Ctx) -> StepResult {
        self.task.data = self.data.to_value();
        self.task = ctx.store.update_task(&self.task, &ctx.owner).await?;
        Ok(())
    }

    pub fn session(&self) -> &str {
        &self.task.agent_session_id
    }
}

/// Claims and works on due tasks until shutdown.
pub async fn run(ctx: Ctx) {
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
                .claim_due_tasks(&ctx.owner, LEASE, ctx.now_ms(), free as i64)
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
                _ = ctx.scheduler_wake.notified() => {}
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
                    .renew_lease(&task_id, &ctx.owner, until)
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
    if let Err(err) = ctx.store.release_task(&task_id, &ctx.owner).await {
        tracing::debug!(task = %task_id, error = %err, "scheduler: lease already gone");
    }
    ctx.scheduler_wake.notify_one();
}

/// Does one state's work and handles its failure.
async fn step(ctx: &Ctx, task: Task) -> Result<(), StoreError> {
    let Ok(state) = TaskState::from_str(&task.state) else {
        tracing::error!(task = %task.id, state = %task.state, "unknown task state; dead-lettering");
        return ctx
            .store
            .dead_letter(
                &task.id,
                &ctx.owner,
                &format!("unknown state {}", task.state),
                ctx.now_ms(),
            )
            .await;
    };
    let data = TaskData::from_value(&task.data);
    let mut work = Work { task, data, state };
    let outcome = if work.task.cancel_requested_at.is_some() && !state.is_final() {
        crate::steps::stop::stop(ctx, &mut work).await
    } else {
        match state {
            TaskState::Received => crate::steps::prepare::prepare(ctx, &mut work).await,
            TaskState::AwaitingSelection => crate::steps::prepare::selection(ctx, &mut work).await,
            TaskState::Queued => crate::steps::start::queued(ctx, &mut work).await,
            TaskState::Starting => crate::steps::start::starting(ctx, &mut work).await,
            TaskState::Running => crate::steps::follow::running(ctx, &mut work).await,
            TaskState::AwaitingInput | TaskState::Completed | TaskState::Failed => {
                crate::steps::resume::settled(ctx, &mut work).await
            }
            TaskState::Stopped | TaskState::DeadLetter => Ok(()),
        }
    };
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
    release_money(ctx, &work).await;
    ctx.store
        .dead_letter(&work.task.id, &ctx.owner, &reason, ctx.now_ms())
        .await?;
    let body = format!(
        "I couldn't finish this: {why}\n\nI tried {} times and have stopped. Reply here to try again once the cause is fixed.",
        work.task.attempts
    );
    ctx.enqueue(
        work.session(),
        format!("final:dead:{}", work.task.id),
        OutboxOp::activity("error", body),
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
    release_money(ctx, &work).await;
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
        OutboxOp::activity("error", body),
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

/// Returns the task's budget hold, if any (the run never started or ended),
/// and wakes the tasks waiting for budget: the unused part of the hold may
/// let one of them start now rather than at its next check.
pub async fn release_money(ctx: &Ctx, work: &Work) {
    let actual = work.task.estimated_cost.unwrap_or_default();
    match ctx.store.settle_reservation(&work.task.id, actual).await {
        Ok(true) => {
            let waiting = wake_parked(
                ctx,
                TaskState::Queued,
                crate::steps::start::BUDGET_WAIT_STEP,
            );
            if let Err(err) = waiting.await {
                tracing::warn!(error = %err, "waking tasks that wait for budget failed");
            }
        }
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(task = %work.task.id, error = %err, "settling the budget hold failed")
        }
    }
}

/// Makes every active task in `state` whose step is `step` due now (tasks
/// parked for an outside condition that may have changed). Returns how many.
pub async fn wake_parked(ctx: &Ctx, state: TaskState, step: &str) -> Result<usize, StoreError> {
    let filter = cyrus_store::TaskFilter {
        state: Some(state.as_str().into()),
        active_only: true,
        ..Default::default()
    };
    let now = ctx.now_ms();
    let mut woken = 0;
    for task in ctx.store.list_tasks(&filter).await? {
        if task.step.as_deref() == Some(step) {
            ctx.store.wake_task(&task.id, now).await?;
            woken += 1;
        }
    }
    if woken > 0 {
        ctx.scheduler_wake.notify_one();
    }
    Ok(woken)
}

/// Records a stop request (from any replica, without the lease) with its
/// reason, and wakes the task.
pub async fn request_stop(
    ctx: &Ctx,
    task: &Task,
    key: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let now = ctx.now_ms();
    ctx.store
        .add_followup(&task.id, key, &format!("{STOP_PREFIX}{reason}"), now)
        .await?;
    ctx.store.request_cancel(&task.id, now).await?;
    ctx.scheduler_wake.notify_one();
    Ok(())
}

/// Follow-ups whose body starts with this are stop reasons, not prompts.
/// A control character no one types, but not NUL: PostgreSQL's `text`
/// rejects NUL, which lost every stop request there.
pub const STOP_PREFIX: &str = "\u{1e}stop:";

/// Next UTC midnight, in unix millis.
pub fn next_utc_midnight(now_ms: i64) -> i64 {
    let day = 86_400_000;
    (now_ms / day + 1) * day
}
