//! Property test of the task state machine through the real worker.
//!
//! `core::lifecycle` has its own pure property test of the transition table.
//! This one drives the whole worker (webhook intake, scheduler, steps, store,
//! run tracker, outbox) against both simulators with random short scripts of
//! what users and operators do: delegate an issue (with a scripted Codegen
//! outcome), follow up (with the resumed leg's outcome), stop by message or
//! signal, mention the agent, un-delegate, close or delete the issue, restart
//! the worker gracefully, crash it, or lose Codegen's answer to a create —
//! with short pauses so the events land in different stored states. Then the
//! stack settles and the test checks:
//!
//! 1. No run is created twice: every Codegen run carries the marker of a
//!    stored run intent, no two runs share a marker, no task has more runs
//!    than run intents, a task's run is one of its own, and no run is left
//!    going that no task follows.
//! 2. Every stored state is a lifecycle state; every state change seen
//!    between two consecutive versions of a task is one legal
//!    `lifecycle::transition` (a change across unseen versions must be
//!    reachable); the worker never tried an illegal transition; at rest every
//!    task is settled, waits for input, or follows a run that never ends;
//!    nothing is dead-lettered (no script forces that).
//! 3. Each session has exactly one acknowledgement and it is the first agent
//!    activity; it has no more final `response`/`error` activities than its
//!    task can have settled (once, plus once per follow-up on the issue); a
//!    settled task's last activity is a final one, a paused task's is its
//!    elicitation.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 6, each a fresh
//! stack, typically 2–15 s, about a minute more when a crash left claims to
//! expire); `STATE_PROPS_VERBOSE=1` prints every case's script, events,
//! tasks, runs and sessions, not only a failing one's.

use crate::harness::{describe, outbox_rows};
use cyrus_core::lifecycle::{Event, RunOutcome, TaskState, transition};
use cyrus_edge_worker::MARKER_KEY;
use cyrus_sandbox::codegen::{AnswerLoss, Endpoint, RunRecord};
use cyrus_sandbox::linear::NewIssue;
use cyrus_stack::{Stack, StackOptions};
use cyrus_store::{PARKED, Store, Task, TaskFilter};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Simulated Codegen seconds per real second: a 60 s run takes 2 s.
const TIME_SCALE: f64 = 30.0;
/// How long the stack may take to come to rest after the script.
const SETTLE_WITHIN: Duration = Duration::from_secs(45);
/// How far the Codegen simulator's clock jumps at each look while settling
/// (longer than any scripted run).
const CLOCK_STEP: Duration = Duration::from_secs(300);
/// Issues a script acts on.
const ISSUES: usize = 2;
/// After a crash, the dead worker's task leases are released this much later
/// (as if they had expired), so nothing it sent is still in flight.
const LEASE_EXPIRY_AFTER_CRASH: Duration = Duration::from_millis(300);
/// The store can only release task leases; the webhook deliveries (30 s) and
/// outbox writes (60 s) a crashed worker had claimed wait for their leases to
/// expire, so a script with a crash may take this much longer to settle.
const CLAIMS_EXPIRE_WITHIN: Duration = Duration::from_secs(60);
/// Activity kinds the agent posts (the user's own are `prompt`).
const AGENT_KINDS: [&str; 5] = ["thought", "action", "elicitation", "response", "error"];

// ------------------------------------------------------------------ scripts

/// How a Codegen run (or a resumed leg of one) ends, as a `[sim …]` tag.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Complete { secs: u32, prs: u32 },
    Fail { secs: u32 },
    Pause { secs: u32 },
    NeverFinish,
}

impl Outcome {
    fn tag(self) -> String {
        match self {
            Outcome::Complete { secs, prs } => {
                format!("[sim outcome=COMPLETE duration={secs}s prs={prs} logs=3]")
            }
            Outcome::Fail { secs } => format!("[sim outcome=FAILED duration={secs}s logs=2]"),
            Outcome::Pause { secs } => format!("[sim outcome=PAUSED duration={secs}s]"),
            Outcome::NeverFinish => "[sim never_finish logs=2]".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Action {
    /// Creates the issue (its description carries `outcome`) on first use,
    /// then delegates it to the agent (a new session). With `lose_create`,
    /// Codegen performs the next create but its answer never reaches the
    /// worker (a 502 instead): the worker must find the run by its marker.
    Delegate {
        issue: usize,
        outcome: Outcome,
        lose_create: bool,
    },
    /// A follow-up prompt in the issue's newest session; `outcome` scripts
    /// the leg a resume starts.
    FollowUp {
        issue: usize,
        outcome: Outcome,
    },
    /// "stop" typed in the newest session.
    StopMessage {
        issue: usize,
    },
    /// Linear's "Send stop request" in the newest session.
    StopSignal {
        issue: usize,
    },
    /// A comment @mentioning the agent (a new session).
    Mention {
        issue: usize,
    },
    Undelegate {
        issue: usize,
    },
    /// Moves the issue to Done, or Canceled.
    Close {
        issue: usize,
        canceled: bool,
    },
    Delete {
        issue: usize,
    },
    /// Graceful restart (`Stack::restart_worker`).
    Restart,
    /// The worker dies at once (every loop and in-flight step aborted); a
    /// fresh one takes over once the dead one's leases have expired.
    Crash,
}

#[derive(Clone, Debug)]
struct Step {
    action: Action,
    pause_ms: u64,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let secs = (1u32..=6).prop_map(|n| n * 10);
    prop_oneof![
        3 => (secs.clone(), 0u32..=1).prop_map(|(secs, prs)| Outcome::Complete { secs, prs }),
        2 => secs.clone().prop_map(|secs| Outcome::Fail { secs }),
        2 => secs.prop_map(|secs| Outcome::Pause { secs }),
        1 => Just(Outcome::NeverFinish),
    ]
}

fn delegate(issue: impl Strategy<Value = usize>) -> impl Strategy<Value = Action> {
    (issue, outcome(), proptest::bool::weighted(0.3)).prop_map(|(issue, outcome, lose_create)| {
        Action::Delegate {
            issue,
            outcome,
            lose_create,
        }
    })
}

fn action() -> impl Strategy<Value = Action> {
    // Issue 0 always exists (the first step creates it); issue 1 only once
    // a later step delegates it.
    let issue = proptest::sample::select(vec![0, 0, 1]);
    prop_oneof![
        3 => delegate(0..ISSUES),
        3 => (issue.clone(), outcome()).prop_map(|(issue, outcome)| Action::FollowUp { issue, outcome }),
        1 => issue.clone().prop_map(|issue| Action::StopMessage { issue }),
        1 => issue.clone().prop_map(|issue| Action::StopSignal { issue }),
        1 => issue.clone().prop_map(|issue| Action::Mention { issue }),
        1 => issue.clone().prop_map(|issue| Action::Undelegate { issue }),
        1 => (issue.clone(), any::<bool>()).prop_map(|(issue, canceled)| Action::Close { issue, canceled }),
        1 => issue.prop_map(|issue| Action::Delete { issue }),
        1 => Just(Action::Restart),
        2 => Just(Action::Crash),
    ]
}

/// 3–8 steps; the first delegates issue 0 (otherwise nothing happens).
fn script() -> impl Strategy<Value = Vec<Step>> {
    let pause = proptest::sample::select(vec![0u64, 100, 300, 800]);
    let first =
        (delegate(Just(0)), pause.clone()).prop_map(|(action, pause_ms)| Step { action, pause_ms });
    let rest = proptest::collection::vec(
        (action(), pause).prop_map(|(action, pause_ms)| Step { action, pause_ms }),
        2..=7,
    );
    (first, rest).prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    ProptestConfig {
        cases,
        // Every case is a whole stack for seconds: shrink a little, within
        // bounds, and print the script instead of persisting a seed file.
        max_shrink_iters: 12,
        max_shrink_time: 180_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_script_keeps_the_worker_in_legal_states_with_one_run_per_intent(script in script()) {
        if let Err(report) = run_case_blocking(&script) {
            return Err(TestCaseError::fail(report));
        }
    }
}

/// Runs one case on a runtime of its own (proptest bodies are synchronous).
fn run_case_blocking(script: &[Step]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(run_case(script));
    runtime.shutdown_timeout(Duration::from_secs(10));
    outcome
}

// --------------------------------------------------------------- one case

#[derive(Default)]
struct IssueSlot {
    id: Option<String>,
    deleted: bool,
    sessions: Vec<String>,
    /// Follow-up prompts and mentions that reached Linear: each may reopen a
    /// task once more.
    follow_ups: usize,
}

struct Case {
    /// A crash happened (see [`CLAIMS_EXPIRE_WITHIN`]).
    crashed: bool,
    stack: Stack,
    issues: Vec<IssueSlot>,
    log: Vec<String>,
    started: Instant,
}

async fn run_case(script: &[Step]) -> Result<(), String> {
    let stack = Stack::start(StackOptions::default().time_scale(TIME_SCALE))
        .await
        .expect("stack starts");
    let sampler = Sampler::start(&stack).await;
    let mut case = Case {
        crashed: false,
        stack,
        issues: (0..ISSUES).map(|_| IssueSlot::default()).collect(),
        log: Vec::new(),
        started: Instant::now(),
    };
    for step in script {
        case.apply(step.action).await;
        tokio::time::sleep(Duration::from_millis(step.pause_ms)).await;
    }
    let settled = case.settle().await;
    let sampled = sampler.stop().await;
    let violations = case.check(&settled, &sampled).await;
    if std::env::var_os("STATE_PROPS_VERBOSE").is_some() {
        eprintln!(
            "{}",
            case.report(script, &settled, &sampled, &violations).await
        );
    }
    let result = if violations.is_empty() {
        Ok(())
    } else {
        Err(case.report(script, &settled, &sampled, &violations).await)
    };
    case.stack.shutdown().await;
    result
}

impl Case {
    fn note(&mut self, action: Action, what: String) {
        let at = self.started.elapsed().as_millis();
        self.log.push(format!("{at:>6} ms  {action:?}: {what}"));
    }

    /// The issue's id if it exists and was not deleted.
    fn live_issue(&self, issue: usize) -> Option<String> {
        let slot = &self.issues[issue];
        slot.id.clone().filter(|_| !slot.deleted)
    }

    fn newest_session(&self, issue: usize) -> Option<String> {
        self.issues[issue].sessions.last().cloned()
    }

    async fn apply(&mut self, action: Action) {
        let linear = self.stack.linear.control();
        let what = match action {
            Action::Delegate {
                issue,
                outcome,
                lose_create,
            } => {
                if self.issues[issue].deleted {
                    "skipped: the issue was deleted".to_string()
                } else {
                    let mut what = String::new();
                    if self.issues[issue].id.is_none() {
                        match linear.create_issue(NewIssue {
                            team_id: Some(self.stack.team_id.clone()),
                            title: format!("Property issue {issue}"),
                            description: Some(format!("Do the thing. {}", outcome.tag())),
                            ..Default::default()
                        }) {
                            Ok(created) => {
                                what = format!("created {} ({}); ", created.id, outcome.tag());
                                self.issues[issue].id = Some(created.id);
                            }
                            Err(err) => what = format!("creating the issue failed: {err:?}; "),
                        }
                    } else {
                        what.push_str("existing issue (its first outcome applies); ");
                    }
                    if let Some(id) = self.issues[issue].id.clone() {
                        if lose_create {
                            self.stack.codegen.control().lose_next_answer(
                                1,
                                Some(Endpoint::CreateRun),
                                AnswerLoss::BadGateway,
                            );
                            what.push_str("the next create's answer will be lost; ");
                        }
                        match linear.delegate(&id, None) {
                            Ok(session) => {
                                what.push_str(&format!("session {session}"));
                                let sessions = &mut self.issues[issue].sessions;
                                if sessions.last() != Some(&session) {
                                    sessions.push(session);
                                }
                            }
                            Err(err) => what.push_str(&format!("refused: {err:?}")),
                        }
                    }
                    what
                }
            }
            Action::FollowUp { issue, outcome } => match self.newest_session(issue) {
                Some(session) => {
                    let body = format!("Please also cover the edge case. {}", outcome.tag());
                    match linear.prompt(&session, &body, false) {
                        Ok(_) => {
                            self.issues[issue].follow_ups += 1;
                            format!("prompted {session}")
                        }
                        Err(err) => format!("refused: {err:?}"),
                    }
                }
                None => "skipped: no session".to_string(),
            },
            Action::StopMessage { issue } | Action::StopSignal { issue } => {
                let signal = matches!(action, Action::StopSignal { .. });
                match self.newest_session(issue) {
                    Some(session) => {
                        let body = if signal { "Please stop." } else { "stop" };
                        match linear.prompt(&session, body, signal) {
                            Ok(_) => format!("sent to {session}"),
                            Err(err) => format!("refused: {err:?}"),
                        }
                    }
                    None => "skipped: no session".to_string(),
                }
            }
            Action::Mention { issue } => match self.live_issue(issue) {
                Some(id) => {
                    match linear.mention(&id, "@cyrus please also update the changelog", None) {
                        Ok(session) => {
                            self.issues[issue].follow_ups += 1;
                            self.issues[issue].sessions.push(session.clone());
                            format!("session {session}")
                        }
                        Err(err) => format!("refused: {err:?}"),
                    }
                }
                None => "skipped: no issue".to_string(),
            },
            Action::Undelegate { issue } => match self.live_issue(issue) {
                Some(id) => match linear.undelegate(&id) {
                    Ok(_) => "done".to_string(),
                    Err(err) => format!("refused: {err:?}"),
                },
                None => "skipped: no issue".to_string(),
            },
            Action::Close { issue, canceled } => match self.live_issue(issue) {
                Some(id) => {
                    let state = if canceled { "Canceled" } else { "Done" };
                    match linear.set_state(&id, state) {
                        Ok(_) => format!("moved to {state}"),
                        Err(err) => format!("refused: {err:?}"),
                    }
                }
                None => "skipped: no issue".to_string(),
            },
            Action::Delete { issue } => match self.live_issue(issue) {
                Some(id) => match linear.delete_issue(&id) {
                    Ok(()) => {
                        self.issues[issue].deleted = true;
                        "deleted".to_string()
                    }
                    Err(err) => format!("refused: {err:?}"),
                },
                None => "skipped: no issue".to_string(),
            },
            Action::Restart => {
                self.stack
                    .restart_worker()
                    .await
                    .expect("the worker restarts");
                "restarted gracefully".to_string()
            }
            Action::Crash => self.crash().await,
        };
        self.note(action, what);
    }

    /// Kills the worker without any shutdown (its loops and in-flight steps
    /// are aborted wherever they are), and lets a fresh worker on the same
    /// store take over once the dead one's leases have expired.
    async fn crash(&mut self) -> String {
        let dead = self
            .stack
            .replace_worker()
            .await
            .expect("a fresh worker starts");
        let owner = dead.context().owner().to_string();
        // Dropping a worker aborts everything it runs.
        drop(dead);
        tokio::time::sleep(LEASE_EXPIRY_AFTER_CRASH).await;
        self.crashed = true;
        let released = self
            .store()
            .release_lease(&owner)
            .await
            .expect("releasing the dead worker's task leases");
        format!("killed {owner}; its {released} task lease(s) expired")
    }

    fn store(&self) -> &Store {
        &self.stack.worker.context().store
    }

    /// How long the stack may take to come to rest after the script.
    fn settle_within(&self) -> Duration {
        if self.crashed {
            SETTLE_WITHIN + CLAIMS_EXPIRE_WITHIN
        } else {
            SETTLE_WITHIN
        }
    }

    /// Waits until the stack is at rest (twice in a row); `Ok(how long)`,
    /// or `Err(what was still going on)` after [`Case::settle_within`].
    async fn settle(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let mut quiet_in_a_row = 0;
        loop {
            // Simulated time races ahead: every run that will end on its own
            // ends before the next look, so a run still going at rest is one
            // that never finishes.
            self.stack.codegen.control().advance(CLOCK_STEP);
            match self.unsettled().await {
                None => {
                    quiet_in_a_row += 1;
                    if quiet_in_a_row == 2 {
                        return Ok(start.elapsed());
                    }
                }
                Some(why) => {
                    quiet_in_a_row = 0;
                    if start.elapsed() > self.settle_within() {
                        return Err(why);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// What is still going on, or `None` at rest: every webhook delivered
    /// and processed, every task parked (settled, awaiting input, or
    /// following a run that is still going after the clock jumped), no lease
    /// held, no stop pending, no outbox write pending.
    async fn unsettled(&self) -> Option<String> {
        let store = self.store();
        let now = chrono::Utc::now().timestamp_millis();
        let linear = self.stack.linear.control();
        for d in linear.deliveries() {
            if !d.delivered && !d.gave_up {
                return Some(format!("webhook {} ({}) is being delivered", d.id, d.event));
            }
            if d.delivered {
                match store.get_delivery(&d.id).await {
                    Ok(Some(stored)) if stored.processed_at.is_some() => {}
                    _ => return Some(format!("webhook {} ({}) is not processed", d.id, d.event)),
                }
            }
        }
        let tasks = match store.list_tasks(&TaskFilter::default()).await {
            Ok(tasks) => tasks,
            Err(err) => return Some(format!("listing tasks failed: {err}")),
        };
        let runs = self.stack.codegen.control().runs();
        for t in &tasks {
            // An unknown state is a violation, reported by `check`.
            let Ok(state) = t.state.as_str().parse::<TaskState>() else {
                continue;
            };
            if t.lease_owner.is_some() && t.lease_expires_at.is_some_and(|e| e > now) {
                return Some(format!("task {} ({state}) is being worked on", t.id));
            }
            if t.is_active() && t.cancel_requested_at.is_some() {
                return Some(format!("task {} ({state}) has a stop pending", t.id));
            }
            let parked = match state {
                TaskState::Received
                | TaskState::AwaitingSelection
                | TaskState::Queued
                | TaskState::Starting => false,
                // Waits for its sub-issues, which are tasks of their own.
                TaskState::Orchestrating => false,
                TaskState::Running => run_of(&runs, t).is_some_and(|r| in_progress(&r.status)),
                TaskState::AwaitingInput | TaskState::Completed | TaskState::Failed => {
                    !t.is_active() || t.run_at >= PARKED
                }
                TaskState::Stopped | TaskState::DeadLetter => true,
            };
            if !parked {
                return Some(format!("task {} is in {state}", t.id));
            }
        }
        for session in linear.sessions() {
            match store.activity_counts(&session).await {
                Ok(counts) if counts.pending == 0 => {}
                Ok(counts) => {
                    return Some(format!(
                        "{} activities of session {session} wait in the outbox",
                        counts.pending
                    ));
                }
                Err(err) => return Some(format!("reading the outbox failed: {err}")),
            }
        }
        None
    }

    async fn check(&self, settled: &Result<Duration, String>, sampled: &Sampled) -> Vec<String> {
        let mut v = Vec::new();
        if let Err(why) = settled {
            v.push(format!(
                "the stack did not come to rest within {:?}: {why}",
                self.settle_within()
            ));
        }
        let store = self.store();
        let tasks = store
            .list_tasks(&TaskFilter::default())
            .await
            .expect("tasks");
        let runs = self.stack.codegen.control().runs();

        // 1. No run is created twice.
        let mut by_marker: HashMap<&str, i64> = HashMap::new();
        for run in &runs {
            let Some(marker) = marker_of(run) else {
                v.push(format!(
                    "Codegen run {} carries no run-intent marker",
                    run.id
                ));
                continue;
            };
            if let Some(first) = by_marker.insert(marker, run.id) {
                v.push(format!(
                    "Codegen runs {first} and {} were both created for intent {marker}",
                    run.id
                ));
            }
            match store.find_run_by_marker(marker).await {
                Ok(Some(intent)) => {
                    if let Some(attached) = intent.codegen_run_id.filter(|id| *id != run.id) {
                        v.push(format!(
                            "Codegen run {} carries marker {marker}, whose intent is attached to run {attached}",
                            run.id
                        ));
                    }
                }
                Ok(None) => v.push(format!(
                    "Codegen run {} carries marker {marker}, but no such run intent is stored",
                    run.id
                )),
                Err(err) => v.push(format!("reading the intent {marker}: {err}")),
            }
        }
        for t in &tasks {
            let intents = store.runs_for_task(&t.id).await.expect("run intents");
            let created = runs
                .iter()
                .filter(|r| session_of(r) == Some(t.agent_session_id.as_str()))
                .count();
            if created > intents.len() {
                v.push(format!(
                    "task {} has {created} Codegen runs but {} run intents",
                    t.id,
                    intents.len()
                ));
            }
            if let Some(run_id) = t.codegen_run_id {
                let own = runs
                    .iter()
                    .find(|r| r.id == run_id)
                    .and_then(marker_of)
                    .is_some_and(|m| intents.iter().any(|i| i.marker == m));
                if !own {
                    v.push(format!(
                        "task {} follows Codegen run {run_id}, which is not one of its intents",
                        t.id
                    ));
                }
            }
        }
        for run in runs.iter().filter(|r| in_progress(&r.status)) {
            let followed = tasks.iter().any(|t| {
                t.is_active()
                    && t.state == TaskState::Running.as_str()
                    && t.codegen_run_id == Some(run.id)
            });
            if followed {
                continue;
            }
            v.push(format!(
                "Codegen run {} ({}) is still going, but no running task follows it",
                run.id, run.status
            ));
        }

        // 2. Legal states only, at rest.
        for t in &tasks {
            match t.state.as_str().parse::<TaskState>() {
                Err(err) => v.push(format!("task {}: {err}", t.id)),
                Ok(TaskState::DeadLetter) => v.push(format!(
                    "task {} was dead-lettered: {}",
                    t.id,
                    t.last_error.as_deref().unwrap_or("")
                )),
                Ok(_) => {}
            }
            if let Some(err) = t.last_error.as_deref().filter(|e| e.contains("illegal")) {
                v.push(format!("task {}: {err}", t.id));
            }
        }
        v.extend(sampled.violations.iter().cloned());

        // 3. What each session shows.
        let linear = self.stack.linear.control();
        for session in linear.sessions() {
            let Some(view) = linear.session(&session) else {
                continue;
            };
            let slot = self
                .issues
                .iter()
                .find(|s| s.id.is_some() && s.id == view.issue_id);
            let task = tasks.iter().find(|t| t.agent_session_id == session);
            if task.is_none() {
                v.push(format!("session {session} has no task"));
            }
            let agent: Vec<_> = view
                .activities
                .iter()
                .filter(|a| AGENT_KINDS.contains(&a.kind()))
                .collect();
            let acks = agent.iter().filter(|a| is_ack(a)).count();
            if acks != 1 {
                v.push(format!("session {session} has {acks} acknowledgements"));
            } else if !is_ack(agent[0]) {
                v.push(format!(
                    "session {session}: the first agent activity is a {} ({:?}), not the acknowledgement",
                    agent[0].kind(),
                    body(agent[0])
                ));
            }
            let finals = agent
                .iter()
                .filter(|a| matches!(a.kind(), "response" | "error"))
                .count();
            let most = 1 + slot.map_or(0, |s| s.follow_ups);
            if finals > most {
                v.push(format!(
                    "session {session} has {finals} final activities; its task can settle at most {most} times"
                ));
            }
            if let Some(a) = agent.iter().find(|a| body(a).contains("illegal")) {
                v.push(format!("session {session} reports {:?}", body(a)));
            }
            let deleted = slot.is_some_and(|s| s.deleted);
            let state = task.and_then(|t| t.state.as_str().parse::<TaskState>().ok());
            if let (Some(state), false) = (state, deleted) {
                let last = agent.last().map(|a| a.kind()).unwrap_or("nothing");
                if state.is_settled() && !matches!(last, "response" | "error") {
                    v.push(format!(
                        "session {session}: the task is {state} but the last agent activity is {last}"
                    ));
                }
                if state == TaskState::AwaitingInput && last != "elicitation" {
                    v.push(format!(
                        "session {session}: the task awaits input but the last agent activity is {last}"
                    ));
                }
            }
        }
        v
    }

    async fn report(
        &self,
        script: &[Step],
        settled: &Result<Duration, String>,
        sampled: &Sampled,
        violations: &[String],
    ) -> String {
        let mut out = String::from("\nscript:\n");
        for step in script {
            let _ = writeln!(out, "  {:?}, then {} ms", step.action, step.pause_ms);
        }
        out.push_str("what happened:\n");
        for line in &self.log {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(
            out,
            "  settled: {settled:?}; {} creates answered with a lost 502; {} store samples",
            self.stack.codegen.control().stats().answers_lost,
            sampled.samples
        );
        out.push_str("violations:\n");
        for v in violations {
            let _ = writeln!(out, "  - {v}");
        }
        out.push_str("tasks (store):\n");
        let store = self.store();
        for t in store
            .list_tasks(&TaskFilter::default())
            .await
            .unwrap_or_default()
        {
            let intents: Vec<_> = store
                .runs_for_task(&t.id)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|i| format!("{}→{:?} {}", i.marker, i.codegen_run_id, i.status))
                .collect();
            let _ = writeln!(
                out,
                "  {} session {} issue {}: {} v{} run {:?} attempts {} step {:?} detail {:?} last_error {:?} cancel {:?} finished {:?} intents {intents:?}",
                t.id,
                t.agent_session_id,
                t.issue_id,
                t.state,
                t.version,
                t.codegen_run_id,
                t.attempts,
                t.step,
                t.detail,
                t.last_error,
                t.cancel_requested_at,
                t.finished_at
            );
            if let Some(trace) = sampled.traces.get(&t.id) {
                let seen: Vec<_> = trace.iter().map(|(v, s)| format!("{s}@v{v}")).collect();
                let _ = writeln!(out, "      states seen: {}", seen.join(" → "));
            }
        }
        out.push_str("Codegen runs (simulator):\n");
        for r in self.stack.codegen.control().runs() {
            let _ = writeln!(
                out,
                "  {} {} marker {:?} session {:?} follow-ups {}",
                r.id,
                r.status,
                marker_of(&r),
                session_of(&r),
                r.follow_ups.len()
            );
        }
        out.push_str("outbox writes not delivered (store):\n");
        for a in outbox_rows(store).await {
            if a.status != "delivered" {
                let _ = writeln!(
                    out,
                    "  #{} {} {} {:?} attempts {} not_before {} last_error {:?}",
                    a.id,
                    a.session_id,
                    a.status,
                    a.dedupe_key,
                    a.attempts,
                    a.not_before,
                    a.last_error
                );
            }
        }
        out.push_str("sessions (Linear simulator):\n");
        for session in self.stack.linear.control().sessions() {
            let _ = writeln!(out, "{}", describe(&self.stack, &session));
        }
        out
    }
}

fn marker_of(run: &RunRecord) -> Option<&str> {
    run.metadata.as_ref()?.get(MARKER_KEY)?.as_str()
}

fn session_of(run: &RunRecord) -> Option<&str> {
    run.metadata.as_ref()?.get("linear_session")?.as_str()
}

fn run_of<'a>(runs: &'a [RunRecord], task: &Task) -> Option<&'a RunRecord> {
    let id = task.codegen_run_id?;
    runs.iter().find(|r| r.id == id)
}

/// A simulator status that will still change by itself.
fn in_progress(status: &str) -> bool {
    matches!(
        status.to_ascii_uppercase().as_str(),
        "ACTIVE" | "PENDING" | "RUNNING" | "QUEUED" | "EVALUATING"
    )
}

fn body(a: &cyrus_sandbox::linear::Activity) -> &str {
    a.content
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_ack(a: &cyrus_sandbox::linear::Activity) -> bool {
    a.kind() == "thought" && body(a).starts_with("On it")
}

// ------------------------------------------------- the lifecycle as a graph

fn every_event() -> Vec<Event> {
    let mut events = vec![
        Event::Routed,
        Event::NeedsRepoSelection,
        Event::RepoSelected,
        Event::RunIntentRecorded,
        Event::RunAttached,
        Event::RunIntentAbandoned,
        Event::Resumed,
        Event::Requeued,
        Event::CostCapExceeded,
        Event::StopRequested,
        Event::StepFailed { retry: true },
        Event::StepFailed { retry: false },
        Event::Fatal,
    ];
    events.extend(
        [
            RunOutcome::InProgress,
            RunOutcome::NeedsInput,
            RunOutcome::Succeeded,
            RunOutcome::Failed,
            RunOutcome::Cancelled,
        ]
        .map(Event::RunStatus),
    );
    events
}

/// Some event moves `from` to `to` in one transition.
fn one_transition(from: TaskState, to: TaskState) -> bool {
    every_event()
        .into_iter()
        .any(|e| transition(from, e) == Ok(to))
}

/// Some sequence of transitions (possibly none) leads from `from` to `to`.
fn reachable(from: TaskState, to: TaskState) -> bool {
    let mut seen = HashSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(s) = queue.pop_front() {
        if s == to {
            return true;
        }
        for e in every_event() {
            if let Ok(next) = transition(s, e)
                && seen.insert(next)
            {
                queue.push_back(next);
            }
        }
    }
    false
}

// --------------------------------------------------------- state sampling

/// Reads every task from the store every few milliseconds, from its own
/// connection, and checks each change of state it sees.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Sampled>,
}

#[derive(Default)]
struct Sampled {
    /// Per task: the (version, state) pairs seen, changes only.
    traces: BTreeMap<String, Vec<(i64, String)>>,
    violations: Vec<String>,
    samples: usize,
}

impl Sampler {
    async fn start(stack: &Stack) -> Sampler {
        let store = Store::connect_without_migrating(&stack.store_url)
            .await
            .expect("the sampler's store opens");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut sampled = Sampled::default();
            let mut last: HashMap<String, (i64, TaskState)> = HashMap::new();
            loop {
                let stopping = flag.load(Ordering::SeqCst);
                if let Ok(tasks) = store.list_tasks(&TaskFilter::default()).await {
                    sampled.samples += 1;
                    for task in &tasks {
                        sampled.observe(&mut last, task);
                    }
                }
                if stopping {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            store.close().await;
            sampled
        });
        Sampler { stop, handle }
    }

    async fn stop(self) -> Sampled {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("the sampler ran")
    }
}

impl Sampled {
    fn flag(&mut self, violation: String) {
        if !self.violations.contains(&violation) {
            self.violations.push(violation);
        }
    }

    fn observe(&mut self, last: &mut HashMap<String, (i64, TaskState)>, t: &Task) {
        if let Some(err) = t.last_error.as_deref().filter(|e| e.contains("illegal")) {
            self.flag(format!("task {} recorded {err:?}", t.id));
        }
        let Ok(to) = t.state.as_str().parse::<TaskState>() else {
            self.flag(format!("task {} is in unknown state {:?}", t.id, t.state));
            return;
        };
        let trace = self.traces.entry(t.id.clone()).or_default();
        match last.get(&t.id).copied() {
            None => {
                trace.push((t.version, t.state.to_string()));
                if !reachable(TaskState::Received, to) {
                    self.flag(format!(
                        "task {} was first seen in {to}, which no task can reach",
                        t.id
                    ));
                }
            }
            Some((version, from)) => {
                if t.version < version {
                    self.flag(format!(
                        "task {}: version went from {version} back to {}",
                        t.id, t.version
                    ));
                } else if t.version == version && to != from {
                    self.flag(format!(
                        "task {}: state changed {from} → {to} without a new version ({version})",
                        t.id
                    ));
                } else if to != from {
                    trace.push((t.version, t.state.to_string()));
                    let consecutive = t.version == version + 1;
                    let legal = if consecutive {
                        one_transition(from, to)
                    } else {
                        reachable(from, to)
                    };
                    if !legal {
                        self.flag(format!(
                            "task {}: {from} (v{version}) → {to} (v{}) is not {} of core::lifecycle",
                            t.id,
                            t.version,
                            if consecutive {
                                "one transition"
                            } else {
                                "reachable by transitions"
                            }
                        ));
                    }
                }
            }
        }
        last.insert(t.id.clone(), (t.version, to));
    }
}

#[test]
fn the_lifecycle_graph_helpers_read_the_table() {
    use TaskState as S;
    assert!(one_transition(S::Received, S::Queued));
    assert!(one_transition(S::Running, S::Running));
    assert!(!one_transition(S::Queued, S::Running));
    assert!(reachable(S::Queued, S::Running));
    assert!(reachable(S::Completed, S::Starting));
    assert!(!reachable(S::Queued, S::Received));
    assert!(!reachable(S::Stopped, S::Running));
    assert!(!reachable(S::DeadLetter, S::Failed));
}

/// A case the property first found: "stop" while the task is `starting`
/// after Codegen created its run but the answer was lost. The task ends
/// `stopped`, and the run it never attached must be stopped too (it was
/// left going forever until `steps/stop` looked it up by the intent's
/// marker).
#[test]
fn a_stop_while_starting_stops_the_run_created_for_the_intent() {
    let script = [
        Step {
            action: Action::Delegate {
                issue: 0,
                outcome: Outcome::NeverFinish,
                lose_create: true,
            },
            pause_ms: 1_000,
        },
        Step {
            action: Action::StopMessage { issue: 0 },
            pause_ms: 0,
        },
    ];
    if let Err(report) = run_case_blocking(&script) {
        panic!("{report}");
    }
}
