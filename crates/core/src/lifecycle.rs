//! The task state machine: which state a task moves to on which event.
//!
//! The worker decides every step from the *stored* state, so this table is the
//! whole of "what happens next"; a restart at any point resumes from it. The
//! worker performs side effects (Linear posts, Codegen calls) and then reports
//! what happened as an [`Event`]; [`transition`] answers with the next state or
//! refuses an illegal move, which the worker treats as a bug and logs.
//!
//! One rule matters above the rest: a Codegen run is only ever *created* on the
//! `Queued → Starting` edge, after the run intent is stored. Every other way
//! into `Running` goes through an existing run (recovery finds it by its
//! marker; a follow-up resumes it), so no sequence of events creates a second
//! run for one attempt.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a task is. Stored as its `as_str()` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// The session exists; the acknowledgement is out; nothing else done yet.
    Received,
    /// The repository could not be routed; a `select` elicitation asks the user.
    AwaitingSelection,
    /// Routed and prompt built; waits for budget, a concurrency slot and the
    /// creation rate limit.
    Queued,
    /// The run intent is stored and Codegen's create is (or was) in flight.
    /// Recovery looks the run up by its marker before ever creating again.
    Starting,
    /// A Codegen run is being followed.
    Running,
    /// The run is `PAUSED`; an elicitation asks the user for input.
    AwaitingInput,
    /// An orchestrator task whose issue has sub-issues: no run of its own;
    /// it delegates the sub-issues (each its own task) in dependency order
    /// and follows them (`core::orchestration`). Woken by its children's
    /// transitions and by answers to its elicitations.
    Orchestrating,
    /// The run finished and the response is posted. A follow-up resumes it.
    Completed,
    /// The run ended in failure and the error is posted. A follow-up resumes it.
    Failed,
    /// Stopped by the user, un-delegation or the issue closing. Final.
    Stopped,
    /// Gave up after exhausting attempts; reported in Linear. Final.
    DeadLetter,
}

impl TaskState {
    pub const ALL: [TaskState; 11] = [
        TaskState::Received,
        TaskState::AwaitingSelection,
        TaskState::Queued,
        TaskState::Starting,
        TaskState::Running,
        TaskState::AwaitingInput,
        TaskState::Orchestrating,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Stopped,
        TaskState::DeadLetter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Received => "received",
            TaskState::AwaitingSelection => "awaiting_selection",
            TaskState::Queued => "queued",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::AwaitingInput => "awaiting_input",
            TaskState::Orchestrating => "orchestrating",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Stopped => "stopped",
            TaskState::DeadLetter => "dead_letter",
        }
    }

    /// No further work will ever happen for the task.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Stopped | TaskState::DeadLetter)
    }

    /// The task has reached an outcome and posted it; it only wakes for a
    /// follow-up prompt (`Completed`, `Failed`) or never (`is_final`).
    pub fn is_settled(self) -> bool {
        self.is_final() || matches!(self, TaskState::Completed | TaskState::Failed)
    }

    /// The scheduler has something to do for a task in this state without an
    /// outside event.
    pub fn is_schedulable(self) -> bool {
        matches!(
            self,
            TaskState::Received
                | TaskState::Queued
                | TaskState::Starting
                | TaskState::Running
                | TaskState::Orchestrating
        )
    }

    /// A Codegen run exists and may be consuming money.
    pub fn has_live_run(self) -> bool {
        matches!(self, TaskState::Starting | TaskState::Running)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown task state `{s}`"))
    }
}

/// Lets a stored state be compared with its text form (`task.state ==
/// "queued"`), which keeps tests and status filters readable.
impl PartialEq<&str> for TaskState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<TaskState> for &str {
    fn eq(&self, other: &TaskState) -> bool {
        *self == other.as_str()
    }
}

/// Why a task in a non-final state is parked rather than worked on: the
/// outside condition it waits for. Stored as its `as_str()` text in the
/// task's `step` column; whoever changes that condition wakes the tasks
/// waiting for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// `received`: another issue blocks this one (an `Issue` webhook wakes it).
    Blocked,
    /// `queued`: the day's budget cannot hold the task's reserve (a settling
    /// task or midnight UTC wakes it).
    BudgetWait,
    /// `queued`: every run slot (`maxConcurrentRuns`) is taken.
    WaitingForSlot,
    /// `orchestrating`: every startable sub-issue is started; a child's
    /// transition wakes the parent.
    WaitingForChildren,
    /// `orchestrating`: a child failed or was stopped and the parent's
    /// elicitation (retry / skip / stop) waits for an answer.
    AwaitingDecision,
}

impl WaitReason {
    pub const ALL: [WaitReason; 5] = [
        WaitReason::Blocked,
        WaitReason::BudgetWait,
        WaitReason::WaitingForSlot,
        WaitReason::WaitingForChildren,
        WaitReason::AwaitingDecision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Blocked => "blocked",
            WaitReason::BudgetWait => "budget_wait",
            WaitReason::WaitingForSlot => "waiting_for_slot",
            WaitReason::WaitingForChildren => "waiting_for_children",
            WaitReason::AwaitingDecision => "awaiting_decision",
        }
    }

    /// The state a task parked for this reason is in.
    pub fn state(self) -> TaskState {
        match self {
            WaitReason::Blocked => TaskState::Received,
            WaitReason::BudgetWait | WaitReason::WaitingForSlot => TaskState::Queued,
            WaitReason::WaitingForChildren | WaitReason::AwaitingDecision => {
                TaskState::Orchestrating
            }
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WaitReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WaitReason::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown wait reason `{s}`"))
    }
}

impl PartialEq<&str> for WaitReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How a Codegen run status reads to the lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunOutcome {
    /// Still pending or running (or an unknown status: keep following).
    InProgress,
    /// `PAUSED`: the agent waits for the user.
    NeedsInput,
    /// `COMPLETE`.
    Succeeded,
    /// `ERROR`, `FAILED`, `TIMEOUT`, `MAX_ITERATIONS_REACHED`, `OUT_OF_TOKENS`.
    Failed,
    /// `CANCELLED`, `STOPPED`: ended from outside.
    Cancelled,
}

/// What happened, as reported by the worker after doing a step's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// Issue fetched and routed to a repository; prompt built.
    Routed,
    /// Routing needs the user to choose a repository; elicitation posted.
    NeedsRepoSelection,
    /// The user's answer matched a repository.
    RepoSelected,
    /// Budget, concurrency slot and limiter allow a run; intent stored.
    RunIntentRecorded,
    /// Codegen created the run (or recovery found it by its marker) and its id
    /// is stored.
    RunAttached,
    /// Recovery found no run for a stale intent: the create never happened.
    RunIntentAbandoned,
    /// The poller saw the run's status.
    RunStatus(RunOutcome),
    /// A follow-up prompt was sent with Codegen's resume.
    Resumed,
    /// A follow-up arrived but the previous run cannot be resumed (there was
    /// none, or Codegen refused): a new run is queued. Only from a settled
    /// or paused state, so the previous run is over.
    Requeued,
    /// The estimate crossed `maxCostPerTask`; the run was stopped.
    CostCapExceeded,
    /// Stop signal, "stop" message, un-delegation, issue closed or deleted.
    StopRequested,
    /// An orchestrator task's issue has sub-issues: they are run as their
    /// own sessions instead of one run (also a follow-up to a settled
    /// orchestration, which looks at the sub-issues again).
    Orchestrate,
    /// Every sub-issue of an orchestration settled; the summary is posted.
    ChildrenSettled,
    /// The step failed; `retry` says whether attempts remain.
    StepFailed { retry: bool },
    /// Nothing will make the task succeed as it is (bad credentials, plan
    /// allowance used up, a rejected request); the error is posted.
    Fatal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: TaskState,
    pub event: Event,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "illegal transition: {:?} in state {}",
            self.event, self.from
        )
    }
}

impl std::error::Error for IllegalTransition {}

/// The next state for `event` in `from`, or an error when the event cannot
/// happen there. Pure; see the table in `ARCHITECTURE.md`.
pub fn transition(from: TaskState, event: Event) -> Result<TaskState, IllegalTransition> {
    use Event as E;
    use TaskState as S;
    let illegal = Err(IllegalTransition { from, event });
    if from.is_final() {
        return illegal;
    }
    let next = match (from, event) {
        (_, E::StopRequested) => S::Stopped,
        (_, E::StepFailed { retry: true }) => from,
        (_, E::StepFailed { retry: false }) => S::DeadLetter,
        (_, E::Fatal) => S::Failed,

        (S::Received, E::Routed) => S::Queued,
        (S::Received, E::NeedsRepoSelection) => S::AwaitingSelection,
        (S::AwaitingSelection, E::RepoSelected) => S::Queued,
        (S::AwaitingSelection, E::NeedsRepoSelection) => S::AwaitingSelection,

        (S::Queued, E::RunIntentRecorded) => S::Starting,
        (S::Starting, E::RunAttached) => S::Running,
        (S::Starting, E::RunIntentAbandoned) => S::Queued,

        (S::Running, E::RunStatus(outcome)) => match outcome {
            RunOutcome::InProgress => S::Running,
            RunOutcome::NeedsInput => S::AwaitingInput,
            RunOutcome::Succeeded => S::Completed,
            RunOutcome::Failed => S::Failed,
            RunOutcome::Cancelled => S::Stopped,
        },
        (S::Running, E::CostCapExceeded) => S::Failed,

        (S::AwaitingInput | S::Completed | S::Failed, E::Resumed) => S::Running,
        (S::AwaitingInput | S::Completed | S::Failed, E::Requeued) => S::Queued,

        // From `running`: a planning run's plan approved by configuration.
        (S::Received | S::Running | S::Completed | S::Failed, E::Orchestrate) => S::Orchestrating,
        (S::Orchestrating, E::ChildrenSettled) => S::Completed,
        _ => return illegal,
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_state() -> impl Strategy<Value = TaskState> {
        proptest::sample::select(TaskState::ALL.to_vec())
    }

    fn any_event() -> impl Strategy<Value = Event> {
        let outcomes = proptest::sample::select(vec![
            RunOutcome::InProgress,
            RunOutcome::NeedsInput,
            RunOutcome::Succeeded,
            RunOutcome::Failed,
            RunOutcome::Cancelled,
        ]);
        prop_oneof![
            Just(Event::Routed),
            Just(Event::NeedsRepoSelection),
            Just(Event::RepoSelected),
            Just(Event::RunIntentRecorded),
            Just(Event::RunAttached),
            Just(Event::RunIntentAbandoned),
            outcomes.prop_map(Event::RunStatus),
            Just(Event::Resumed),
            Just(Event::Requeued),
            Just(Event::CostCapExceeded),
            Just(Event::Orchestrate),
            Just(Event::ChildrenSettled),
            Just(Event::StopRequested),
            any::<bool>().prop_map(|retry| Event::StepFailed { retry }),
            Just(Event::Fatal),
        ]
    }

    #[test]
    fn state_names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>(), Ok(s));
        }
        assert!("running ".parse::<TaskState>().is_err());
    }

    #[test]
    fn happy_path_reaches_completed() {
        let mut s = TaskState::Received;
        for e in [
            Event::Routed,
            Event::RunIntentRecorded,
            Event::RunAttached,
            Event::RunStatus(RunOutcome::InProgress),
            Event::RunStatus(RunOutcome::Succeeded),
        ] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, TaskState::Completed);
        assert_eq!(transition(s, Event::Resumed), Ok(TaskState::Running));
    }

    #[test]
    fn an_orchestration_never_creates_a_run_of_its_own() {
        let s = transition(TaskState::Received, Event::Orchestrate).unwrap();
        assert_eq!(s, TaskState::Orchestrating);
        for e in [Event::RunIntentRecorded, Event::RunAttached, Event::Resumed] {
            assert!(transition(s, e).is_err(), "{e:?}");
        }
        assert_eq!(
            transition(s, Event::ChildrenSettled),
            Ok(TaskState::Completed)
        );
        assert_eq!(
            transition(TaskState::Completed, Event::Orchestrate),
            Ok(TaskState::Orchestrating)
        );
        for r in WaitReason::ALL {
            assert_eq!(r.as_str().parse::<WaitReason>(), Ok(r));
        }
    }

    #[test]
    fn final_states_accept_nothing() {
        for e in [Event::StopRequested, Event::Resumed, Event::Routed] {
            assert!(transition(TaskState::Stopped, e).is_err());
            assert!(transition(TaskState::DeadLetter, e).is_err());
        }
    }

    proptest! {
        /// From any state, any sequence of events yields only legal states, and
        /// a run is created (the `Queued → Starting` edge) at most once while
        /// an earlier run may still be live: only after recovery proved the
        /// intent never reached Codegen, or after the run ended.
        #[test]
        fn no_sequence_creates_a_run_twice(start in any_state(), events in proptest::collection::vec(any_event(), 0..64)) {
            let mut state = start;
            let mut live_intents = 0u32;
            for event in events {
                match transition(state, event) {
                    Ok(next) => {
                        prop_assert!(TaskState::ALL.contains(&next));
                        if state == TaskState::Queued && next == TaskState::Starting {
                            live_intents += 1;
                        }
                        // The intent is over when recovery proves it never
                        // reached Codegen, or when the run has ended.
                        if event == Event::RunIntentAbandoned || next.is_settled() || next == TaskState::AwaitingInput {
                            live_intents = 0;
                        }
                        prop_assert!(live_intents <= 1, "second run created while the first intent was live");
                        if event == Event::Resumed {
                            prop_assert_eq!(next, TaskState::Running);
                        }
                        state = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(err.from, state);
                    }
                }
                if state.is_final() {
                    prop_assert!(transition(state, Event::StopRequested).is_err());
                }
            }
        }
    }
}
