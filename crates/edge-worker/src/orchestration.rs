//! What an orchestration stores, and what the rest of the worker asks of
//! it: which parent released an issue (intake accepts the session our own
//! delegation opened; the child's preparation trusts the parent's blocker
//! check), and waking the parent when a child moves. The work itself is
//! `steps::orchestrate`; the scheduling rules are `core::orchestration`.

use crate::context::Ctx;
use crate::task_data::TaskData;
use cyrus_core::MicroDollars;
use cyrus_core::lifecycle::TaskState;
use cyrus_core::orchestration::Child;
use cyrus_store::{StoreError, Task, TaskFilter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The orchestration of a parent task, stored in its `data` (the parent is
/// its only writer).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Orchestration {
    /// The sub-issues, in Linear's order, with their status.
    pub children: Vec<Child>,
    /// Per child id: how it was handed over and what its task reported.
    pub runs: BTreeMap<String, ChildRun>,
    /// The child a posted elicitation asks about.
    pub asking: Option<String>,
    /// Elicitations posted so far (their outbox keys).
    pub asked: u32,
    /// Read the sub-issues from Linear again on the next step (a
    /// follow-up reopened a settled orchestration).
    pub refresh: bool,
    /// When the sub-issues were last read, for blockers outside the set.
    pub fetched_at: i64,
    /// The plan and links last enqueued, so an unchanged plan is not sent.
    pub plan_sent: Option<String>,
    pub plan_seq: u32,
    /// The person stopped the orchestration.
    pub stopped: bool,
    /// Bumped each time the orchestration settles (its summary's key).
    pub round: u32,
    /// The spend limit was reached and the parent asks whether to go on.
    pub cost_asking: bool,
    /// Spend questions posted so far (their outbox keys).
    pub cost_asked: u32,
    /// What answers of "continue" added to `orchestration.maxCost`.
    pub cost_allowance: MicroDollars,
}

/// How one child was handed to the agent, and its task's outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChildRun {
    /// 0 for the first hand-over; each retry adds one.
    pub attempt: u32,
    /// When it was handed over (its task is created after this).
    pub released_at: Option<i64>,
    /// Delegated to the agent before the orchestration reached it.
    pub adopted: bool,
    pub task_id: Option<String>,
    pub pr_urls: Vec<String>,
    pub cost: MicroDollars,
}

impl Orchestration {
    pub fn run(&self, child_id: &str) -> Option<&ChildRun> {
        self.runs.get(child_id)
    }
}

/// A planning run's valid plan, with a slot per sub-issue for the issue
/// created for it: each id is stored as soon as it is known, and a create
/// is preceded by a look for the slot's marker, so a crash between two
/// creates never makes a second copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredPlan {
    pub plan: cyrus_core::orchestration::plan::Plan,
    pub issue_ids: Vec<Option<String>>,
    /// A person (or `orchestration.autoApprove`) approved it.
    pub approved: bool,
    /// Every `blocks` relation of the plan exists in Linear.
    pub relations_done: bool,
}

impl StoredPlan {
    pub fn new(plan: cyrus_core::orchestration::plan::Plan) -> StoredPlan {
        let n = plan.sub_issues.len();
        StoredPlan {
            plan,
            issue_ids: vec![None; n],
            approved: false,
            relations_done: false,
        }
    }

    /// Everything is in Linear: the sub-issues and their relations.
    pub fn created(&self) -> bool {
        self.relations_done && self.issue_ids.iter().all(Option::is_some)
    }

    /// The text in a sub-issue's description that finds it again.
    pub fn marker(key: &str) -> String {
        format!("plan item `{key}`")
    }
}

/// The orchestrating parent that handed `issue_id` to the agent, if any.
/// Reads the few tasks in `orchestrating`.
pub(crate) async fn releasing_parent(
    ctx: &Ctx,
    issue_id: &str,
) -> Result<Option<Task>, StoreError> {
    let filter = TaskFilter {
        state: Some(TaskState::Orchestrating),
        active_only: true,
        ..Default::default()
    };
    for task in ctx.store.list_tasks(&filter).await? {
        let data = TaskData::from_value(&task.data);
        let released = data
            .orchestration
            .as_ref()
            .and_then(|o| o.run(issue_id))
            .is_some_and(|r| r.released_at.is_some());
        if released {
            return Ok(Some(task));
        }
    }
    Ok(None)
}

/// A stopped orchestration asks a child's task to stop, if it still runs
/// (the child's own stop step says so in its session).
pub(crate) async fn stop_child(
    ctx: &Ctx,
    parent: &Task,
    child_task_id: &str,
) -> Result<(), StoreError> {
    let Some(task) = ctx.store.get_task(child_task_id).await? else {
        return Ok(());
    };
    if !task.is_active() {
        return Ok(());
    }
    crate::requests::request_stop(
        ctx,
        &task,
        &format!("orchestration-stop:{}", parent.id),
        &format!(
            "The orchestration of {} was stopped.",
            parent.issue_identifier
        ),
        "cyrus",
    )
    .await
}

/// A child moved: its parent looks at the orchestration again.
pub(crate) async fn wake_parent(ctx: &Ctx, parent_task_id: &str) -> Result<(), StoreError> {
    if ctx.store.wake_task(parent_task_id, ctx.now_ms()).await? {
        ctx.wake.scheduler.notify_one();
    }
    Ok(())
}

/// The task that speaks for an issue now: its active task if it has one
/// (a session merged into it is a newer but stopped task), else the newest
/// (a retry opens a new session, so a child may have several).
pub(crate) async fn current_task(ctx: &Ctx, issue_id: &str) -> Result<Option<Task>, StoreError> {
    if let Some(active) = ctx.store.find_active_task_for_issue(issue_id).await? {
        return Ok(Some(active));
    }
    let filter = TaskFilter {
        issue_id: Some(issue_id.to_string()),
        limit: Some(1),
        ..Default::default()
    };
    Ok(ctx.store.list_tasks(&filter).await?.into_iter().next())
}
