//! The work of each task state, and the contract every step keeps.
//!
//! A step is handed a claimed task ([`Work`]) and ends in one of four ways:
//! it wrote the task's next state itself (`Ok`), it hit a transient problem
//! ([`StepError::Retry`]: the same state again later, counting an attempt;
//! out of attempts → dead letter), it waits for something outside its
//! control ([`StepError::Wait`]: the same state later, no attempt counted —
//! e.g. Linear's rate limit), or nothing will make it work
//! ([`StepError::Fatal`]: the task fails with that message). What happens
//! after an error is the scheduler's failure policy, not the step's.
//!
//! Steps are named after the state they handle and never call each other;
//! what several need lives in [`runs`] (a Codegen run) and [`budget`]
//! (money), which are not steps.

pub(crate) mod budget;
mod experiment;
mod followup;
mod images;
mod prepare;
mod running;
pub(crate) mod runs;
mod start;
mod stop;

use crate::context::Ctx;
use crate::task_data::TaskData;
use cyrus_core::lifecycle::{Event, TaskState, transition};
use cyrus_store::{PARKED, StoreError, Task};

/// How often a task of a workspace that needs reconnecting looks again.
const RECONNECT_RECHECK_MS: i64 = 30_000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
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
            // The workspace's installation needs a person (a dead refresh
            // token, the app revoked): wait, nothing fails, until
            // `cyrus linear connect` makes it active again.
            L::NeedsReconnect { message } => StepError::Wait {
                at: chrono::Utc::now().timestamp_millis() + RECONNECT_RECHECK_MS,
                why: message,
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

pub(crate) type StepResult = Result<(), StepError>;

/// A claimed task being worked on, with its typed data. The task's state is
/// `task.state`; [`Work::advance`] is the only way a step changes it.
pub(crate) struct Work {
    pub task: Task,
    pub data: TaskData,
}

impl Work {
    pub fn new(task: Task) -> Work {
        let data = TaskData::from_value(&task.data);
        Work { task, data }
    }

    pub fn state(&self) -> TaskState {
        self.task.state
    }

    /// Applies `event` through the state machine (refusing illegal moves)
    /// and stores the task. Keeps `self` current for further writes.
    pub async fn advance(&mut self, ctx: &Ctx, event: Event, run_at: i64) -> StepResult {
        let next = transition(self.task.state, event)
            .map_err(|e| StepError::Fatal(format!("bug: {e}")))?;
        self.task.state = next;
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
        self.task = ctx.store.update_task(&self.task, ctx.owner()).await?;
        Ok(())
    }

    pub fn session(&self) -> &str {
        &self.task.agent_session_id
    }

    /// Follow-up prompts (not stops) waiting for the task, oldest first.
    /// Those already handed to a run (`data.delivered_followups`, stored
    /// with that state change) are marked delivered here instead.
    pub async fn pending_prompts(
        &self,
        ctx: &Ctx,
    ) -> Result<Vec<cyrus_store::FollowUp>, StepError> {
        let mut prompts = Vec::new();
        for f in ctx.store.pending_followups(&self.task.id).await? {
            if self.data.delivered_followups.contains(&f.id) {
                ctx.store
                    .mark_followup_delivered(f.id, ctx.now_ms())
                    .await?;
            } else if f.kind == cyrus_store::FollowUpKind::Prompt {
                prompts.push(f);
            }
        }
        Ok(prompts)
    }

    /// Whether a follow-up prompt waits for the task. Steps that park the
    /// task read this after their write, so a prompt stored meanwhile is
    /// never left behind.
    pub async fn has_pending_prompt(&self, ctx: &Ctx) -> Result<bool, StepError> {
        Ok(!self.pending_prompts(ctx).await?.is_empty())
    }
}

/// Does the work of the task's state: a pending stop first, then the step
/// named after the state.
pub(crate) async fn dispatch(ctx: &Ctx, work: &mut Work) -> StepResult {
    let state = work.state();
    if work.task.cancel_requested_at.is_some() && !state.is_final() {
        return stop::stop(ctx, work).await;
    }
    match state {
        TaskState::Received => prepare::received(ctx, work).await,
        TaskState::AwaitingSelection => prepare::awaiting_selection(ctx, work).await,
        TaskState::Queued => start::queued(ctx, work).await,
        TaskState::Starting => start::starting(ctx, work).await,
        TaskState::Running => running::running(ctx, work).await,
        TaskState::AwaitingInput | TaskState::Completed | TaskState::Failed => {
            followup::followup(ctx, work).await
        }
        TaskState::Stopped | TaskState::DeadLetter => Ok(()),
    }
}
