//! `orchestrating`: an orchestrator task whose issue has sub-issues runs
//! them as their own sessions, with no run (and no model call) of its own.
//!
//! Every step decides from stored state: the sub-issues and their status
//! are in the parent's data (`orchestration::Orchestration`), each child's
//! outcome is its own task's state. A step reads the sub-issues from Linear
//! when it has none yet (one request), looks at the children's tasks,
//! applies an answer to its question, asks about the first failed child,
//! hands the ready children to the agent (within
//! `orchestration.maxParallelChildren`), shows progress as the session's
//! agent plan and links, and posts one summary when the last child settles.
//! A child's transitions wake the parent (`Work::advance`); a periodic look
//! is the backstop.

use super::{StepError, StepResult, Work};
use crate::context::Ctx;
use crate::orchestration::{self, ChildRun, Orchestration};
use crate::outbox::{ActivityKind, OutboxOp};
use crate::task_data::TaskData;
use cyrus_core::MicroDollars;
use cyrus_core::lifecycle::{Event, TaskState, WaitReason};
use cyrus_core::orchestration::{self as rules, Child, ChildStatus, Decision};
use cyrus_linear::client::ChildIssue;
use cyrus_store::{FollowUp, PARKED};
use std::collections::BTreeSet;

/// How often a parked orchestration looks at its children without a wake.
const RECHECK_MS: i64 = 30_000;
/// How often the sub-issues are read again while one waits for a blocker
/// outside the set.
const EXTERNAL_RECHECK_MS: i64 = 60_000;
/// A hand-over whose session never became a task within this long (the
/// delegation was refused, its webhook lost) counts as a failed child, so
/// a person decides instead of the orchestration waiting forever.
const HANDOVER_TIMEOUT_MS: i64 = 15 * 60_000;
/// Linear's page size in `IssueChildren`.
const MAX_CHILDREN: usize = 50;

pub(super) async fn orchestrating(ctx: &Ctx, work: &mut Work) -> StepResult {
    let now = ctx.now_ms();
    let mut orch = work.data.orchestration.clone().unwrap_or_default();
    let session = work.session().to_string();

    // An approved plan's sub-issues and relations are created first.
    if work
        .data
        .plan
        .as_ref()
        .is_some_and(|p| p.approved && !p.created())
    {
        create_planned(ctx, work).await?;
        orch.refresh = true;
    }

    let waits_outside = orch
        .children
        .iter()
        .any(|c| c.status == ChildStatus::Waiting && !c.external_blockers.is_empty());
    let fetch = orch.children.is_empty()
        || orch.refresh
        || (waits_outside && now - orch.fetched_at >= EXTERNAL_RECHECK_MS);
    if fetch {
        let linear = ctx
            .linear
            .client_or_sync(&ctx.store, &work.task.organization_id)
            .await
            .ok_or_else(|| StepError::Retry("the workspace's Linear client is not ready".into()))?;
        let fetched = linear.issue_children(&work.task.issue_id).await?;
        ctx.store.add_api_calls(&work.task.id, 1).await?;
        let more = fetched
            .children
            .page_info
            .as_ref()
            .is_some_and(|p| p.has_next_page);
        if more {
            return refuse(
                ctx,
                work,
                orch,
                &format!(
                    "{} has more than {MAX_CHILDREN} sub-issues, more than I orchestrate at once. Group them under intermediate parents, then reply here.",
                    work.task.issue_identifier
                ),
                "more sub-issues than one orchestration holds".into(),
            )
            .await;
        }
        let app_user = work
            .data
            .app_user_id
            .clone()
            .or_else(|| ctx.linear.app_user_id(&work.task.organization_id));
        merge(&mut orch, &fetched.children.nodes, app_user.as_deref());
        orch.refresh = false;
        orch.fetched_at = now;
        if orch.children.is_empty() {
            return refuse(
                ctx,
                work,
                orch,
                &format!(
                    "{} has no sub-issues any more, so there is nothing to orchestrate. Add sub-issues, then reply here.",
                    work.task.issue_identifier
                ),
                "no sub-issues".into(),
            )
            .await;
        }
        if let Some(cycle) = rules::find_cycle(&orch.children) {
            return refuse(
                ctx,
                work,
                orch,
                &format!(
                    "I can't orchestrate these sub-issues: their \"blocked by\" relations form a cycle ({cycle}), so none of them could ever start. Remove one of those relations in Linear, then reply here and I'll look again."
                ),
                format!("refused: dependency cycle {cycle}"),
            )
            .await;
        }
    }

    observe(ctx, &mut orch).await?;
    let prompts = work.pending_prompts(ctx).await?;
    let handled = answer(ctx, work, &mut orch, &prompts).await?;
    ask(ctx, &session, &mut orch).await?;

    // Hand over what is ready; the store learns of it before Linear does
    // (the child's session is accepted only for a stored hand-over).
    if !orch.stopped {
        let cap = ctx.config.orchestration.max_parallel_children as usize;
        let ready = rules::ready(&orch.children, cap);
        let room = affordable(ctx, &orch);
        // While children run, their settling frees holds: ask only when
        // nothing runs and the spend itself leaves no room.
        let running = orch.children.iter().any(|c| c.status.in_flight());
        if !ready.is_empty() && room == 0 && !running && !orch.cost_asking {
            ask_to_continue(ctx, &session, &mut orch).await?;
        }
        for i in ready.into_iter().take(room) {
            orch.children[i].status = ChildStatus::Started;
            let run = orch.runs.entry(orch.children[i].id.clone()).or_default();
            run.released_at = Some(now);
        }
    }
    progress(ctx, &session, &mut orch).await?;

    if rules::over(&orch.children, orch.stopped) && orch.asking.is_none() {
        let body = summary(&work.task.issue_identifier, &orch);
        ctx.enqueue(
            &session,
            format!("orchestration:final:{session}:{}", orch.round),
            OutboxOp::activity(ActivityKind::Response, body),
        )
        .await?;
        work.data.orchestration = Some(orch);
        work.data.delivered_followups = handled.clone();
        work.task.step = None;
        work.task.detail = Some("every sub-issue settled".into());
        work.advance(ctx, Event::ChildrenSettled, PARKED).await?;
        mark_delivered(ctx, &handled).await?;
        if work.has_pending_prompt(ctx).await? {
            ctx.store.reopen_task(&work.task.id, ctx.now_ms()).await?;
        }
        return Ok(());
    }

    let settled = orch
        .children
        .iter()
        .filter(|c| c.status.is_settled())
        .count();
    let running = orch
        .children
        .iter()
        .filter(|c| c.status.in_flight())
        .count();
    work.task.step = Some(if orch.asking.is_some() || orch.cost_asking {
        WaitReason::AwaitingDecision
    } else {
        WaitReason::WaitingForChildren
    });
    work.task.detail = Some(format!(
        "{settled}/{} sub-issues settled, {running} in progress",
        orch.children.len()
    ));
    work.task.run_at = now + RECHECK_MS;
    let before = fingerprint(ctx, &orch).await?;
    work.data.orchestration = Some(orch.clone());
    work.data.delivered_followups = handled.clone();
    work.save(ctx).await?;
    mark_delivered(ctx, &handled).await?;
    release(ctx, work, &orch).await?;
    // A child that moved between the look above and this write woke a
    // task the write then parked again: look once more.
    if fingerprint(ctx, &orch).await? != before || work.has_pending_prompt(ctx).await? {
        ctx.store.wake_task(&work.task.id, ctx.now_ms()).await?;
        ctx.wake.scheduler.notify_one();
    }
    Ok(())
}

/// Creates the approved plan's sub-issues under the parent (its team, the
/// labels the plan names that exist, a line linking back with the slot's
/// marker) and their `blocks` relations. Idempotent: each created id is
/// stored before the next create; a slot without an id is first looked for
/// among the parent's children by its marker; a relation already in Linear
/// is not created again.
async fn create_planned(ctx: &Ctx, work: &mut Work) -> StepResult {
    use cyrus_linear::client::{IssueCreate, RelationType};
    let Some(mut stored) = work.data.plan.clone() else {
        return Ok(());
    };
    let linear = ctx
        .linear
        .client_or_sync(&ctx.store, &work.task.organization_id)
        .await
        .ok_or_else(|| StepError::Retry("the workspace's Linear client is not ready".into()))?;
    let team = work.data.team_id.clone().ok_or_else(|| {
        StepError::Fatal("the issue's team is unknown, so I cannot create its sub-issues".into())
    })?;
    let existing = linear.issue_children(&work.task.issue_id).await?;
    ctx.store.add_api_calls(&work.task.id, 1).await?;
    let wanted: BTreeSet<String> = stored
        .plan
        .sub_issues
        .iter()
        .flat_map(|s| s.labels.iter().map(|l| l.to_ascii_lowercase()))
        .collect();
    let labels = if wanted.is_empty() {
        Vec::new()
    } else {
        ctx.store.add_api_calls(&work.task.id, 1).await?;
        linear.team_workflow(&team).await?.labels.nodes
    };
    for i in 0..stored.plan.sub_issues.len() {
        if stored.issue_ids[i].is_some() {
            continue;
        }
        let item = stored.plan.sub_issues[i].clone();
        let marker = crate::orchestration::StoredPlan::marker(&item.key);
        let found = existing.children.nodes.iter().find(|c| {
            c.description
                .as_deref()
                .is_some_and(|d| d.contains(&marker))
        });
        let id = match found {
            Some(c) => c.id.clone(),
            None => {
                let input = IssueCreate {
                    team_id: team.clone(),
                    title: item.title.clone(),
                    description: Some(item.body(&work.task.issue_identifier, &marker)),
                    parent_id: Some(work.task.issue_id.clone()),
                    label_ids: labels
                        .iter()
                        .filter(|l| item.labels.iter().any(|n| n.eq_ignore_ascii_case(&l.name)))
                        .map(|l| l.id.clone())
                        .collect(),
                    ..Default::default()
                };
                ctx.store.add_api_calls(&work.task.id, 1).await?;
                linear.create_issue(&input).await?.id
            }
        };
        stored.issue_ids[i] = Some(id);
        work.data.plan = Some(stored.clone());
        work.save(ctx).await?;
    }
    let key_id = |key: &str| -> Option<String> {
        let at = stored.plan.sub_issues.iter().position(|s| s.key == key)?;
        stored.issue_ids[at].clone()
    };
    for (i, item) in stored.plan.sub_issues.iter().enumerate() {
        let Some(child) = stored.issue_ids[i].clone() else {
            continue;
        };
        let has = existing
            .children
            .nodes
            .iter()
            .find(|c| c.id == child)
            .map(|c| {
                c.blockers()
                    .iter()
                    .map(|b| b.id.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for dep in &item.depends_on {
            let Some(blocker) = key_id(dep) else {
                continue;
            };
            if has.contains(&blocker) {
                continue;
            }
            ctx.store.add_api_calls(&work.task.id, 1).await?;
            linear
                .create_issue_relation(&blocker, &child, RelationType::Blocks)
                .await?;
        }
    }
    stored.relations_done = true;
    work.data.plan = Some(stored);
    work.save(ctx).await?;
    Ok(())
}

/// The orchestration cannot go on as Linear has it: say why, fail the
/// task (a reply looks again).
async fn refuse(
    ctx: &Ctx,
    work: &mut Work,
    orch: Orchestration,
    body: &str,
    detail: String,
) -> StepResult {
    let session = work.session().to_string();
    ctx.enqueue(
        &session,
        format!("orchestration:refused:{session}:{}", orch.round),
        OutboxOp::activity(ActivityKind::Error, body),
    )
    .await?;
    work.data.orchestration = Some(orch);
    work.task.step = None;
    work.task.detail = Some(detail);
    work.advance(ctx, Event::Fatal, PARKED).await
}

/// The sub-issues as Linear has them, merged with what is stored: a child's
/// status survives a re-read; children done in Linear before they started
/// are skipped; children already delegated to the agent are adopted.
fn merge(orch: &mut Orchestration, nodes: &[ChildIssue], app_user: Option<&str>) {
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let mut children = Vec::with_capacity(nodes.len());
    for n in nodes {
        let blockers = n.blockers();
        let blocked_by = blockers
            .iter()
            .filter(|b| ids.contains(b.id.as_str()))
            .map(|b| b.id.clone())
            .collect();
        let external_blockers = blockers
            .iter()
            .filter(|b| !ids.contains(b.id.as_str()) && b.is_open())
            .map(|b| b.identifier.clone().unwrap_or_else(|| b.id.clone()))
            .collect();
        let done_in_linear = match n.state.as_ref().and_then(|s| s.kind.as_deref()) {
            Some("completed") => Some(ChildStatus::AlreadyDone),
            Some("canceled" | "duplicate") => Some(ChildStatus::Canceled),
            _ => None,
        };
        let stored = orch
            .children
            .iter()
            .find(|c| c.id == n.id)
            .map(|c| c.status);
        let status = match (stored, done_in_linear) {
            (None | Some(ChildStatus::Waiting), Some(done)) => done,
            (Some(status), _) => status,
            (None, None) => ChildStatus::Waiting,
        };
        let run = orch.runs.entry(n.id.clone()).or_default();
        let ours = app_user.is_some_and(|u| n.delegate.as_ref().is_some_and(|d| d.id == u));
        if status == ChildStatus::Waiting && run.released_at.is_none() && run.attempt == 0 && ours {
            run.adopted = true;
        }
        children.push(Child {
            id: n.id.clone(),
            identifier: n.identifier.clone(),
            title: n.title.clone(),
            priority: n.priority.map(|p| p.clamp(0.0, 4.0) as u8).unwrap_or(0),
            sort_order: n.sort_order.unwrap_or(0.0),
            blocked_by,
            external_blockers,
            status,
        });
    }
    // A child moved out of the epic after it started stays in the summary.
    for c in &orch.children {
        if !ids.contains(c.id.as_str()) && c.status != ChildStatus::Waiting {
            let mut kept = c.clone();
            kept.blocked_by.clear();
            children.push(kept);
        }
    }
    orch.children = children;
}

/// Whether the child's task (if any) tells us something now: a retry's
/// task is the one created after the retry was handed over.
fn watched(child: &Child, run: &ChildRun) -> bool {
    match child.status {
        ChildStatus::Started | ChildStatus::Failed | ChildStatus::Stopped => true,
        ChildStatus::Waiting => run.adopted && run.attempt == 0,
        _ => false,
    }
}

async fn current_task(
    ctx: &Ctx,
    child: &Child,
    run: &ChildRun,
) -> Result<Option<cyrus_store::Task>, StepError> {
    let Some(task) = orchestration::current_task(ctx, &child.id).await? else {
        return Ok(None);
    };
    if run.attempt > 0 && run.released_at.is_none_or(|at| task.created_at < at) {
        return Ok(None);
    }
    Ok(Some(task))
}

/// Reads each watched child's task into its status, cost and PR links.
async fn observe(ctx: &Ctx, orch: &mut Orchestration) -> StepResult {
    for child in orch.children.iter_mut() {
        let run = orch.runs.entry(child.id.clone()).or_default();
        if !watched(child, run) {
            continue;
        }
        let Some(task) = current_task(ctx, child, run).await? else {
            let stale = run
                .released_at
                .is_some_and(|at| ctx.now_ms() - at > HANDOVER_TIMEOUT_MS);
            if child.status == ChildStatus::Started && stale && !run.adopted {
                tracing::warn!(child = %child.identifier, "no session arrived for a delegated sub-issue");
                child.status = ChildStatus::Failed;
            }
            continue;
        };
        let parked_behind_sibling = task.state == TaskState::Received
            && task.step == Some(WaitReason::Blocked)
            && child.status == ChildStatus::Waiting;
        child.status = match task.state {
            TaskState::Completed => ChildStatus::Succeeded,
            TaskState::Failed | TaskState::DeadLetter => ChildStatus::Failed,
            TaskState::Stopped => ChildStatus::Stopped,
            _ if parked_behind_sibling => ChildStatus::Waiting,
            _ => ChildStatus::Started,
        };
        // Children that ended after the orchestration was stopped need no
        // decision any more.
        if orch.stopped && child.status.needs_decision() {
            child.status = ChildStatus::NotStarted;
        }
        let data = TaskData::from_value(&task.data);
        run.task_id = Some(task.id.clone());
        run.pr_urls = data.pr_urls;
        run.cost = task.estimated_cost.unwrap_or_default();
    }
    Ok(())
}

/// What the watched children's tasks are now, to notice a move that
/// happened during the step.
async fn fingerprint(ctx: &Ctx, orch: &Orchestration) -> Result<Vec<String>, StepError> {
    let mut out = Vec::new();
    for child in &orch.children {
        let Some(run) = orch.run(&child.id) else {
            continue;
        };
        if watched(child, run)
            && let Some(task) = current_task(ctx, child, run).await?
        {
            out.push(format!("{}:{}:{}", task.id, task.state, task.version));
        }
    }
    Ok(out)
}

/// Applies a reply to the question about a failed child. Returns the
/// follow-ups read (stored as delivered with the step's write).
async fn answer(
    ctx: &Ctx,
    work: &Work,
    orch: &mut Orchestration,
    prompts: &[FollowUp],
) -> Result<Vec<i64>, StepError> {
    let Some(last) = prompts.last() else {
        return Ok(Vec::new());
    };
    let session = work.session();
    let handled: Vec<i64> = prompts.iter().map(|f| f.id).collect();
    let asked = orch
        .asking
        .as_ref()
        .and_then(|id| orch.children.iter().position(|c| &c.id == id))
        .filter(|&i| orch.children[i].status.needs_decision());
    if asked.is_none() && orch.cost_asking {
        return answer_cost(ctx, work, orch, last).await.map(|()| handled);
    }
    let Some(at) = asked else {
        orch.asking = None;
        ctx.enqueue(
            session,
            format!("orchestration:note:{session}:{}", last.id),
            OutboxOp::activity(
                ActivityKind::Thought,
                "I'm coordinating this issue's sub-issues; each has its own session, where you can talk to its run. Reply \"stop\" here to stop all of them.",
            ),
        )
        .await?;
        return Ok(handled);
    };
    let identifier = orch.children[at].identifier.clone();
    let Some(decision) = rules::parse_decision(&last.body) else {
        orch.asked += 1;
        ctx.enqueue(
            session,
            format!("orchestration:ask:{session}:{}", orch.asked),
            OutboxOp::select(
                format!(
                    "I couldn't read \"{}\" as an answer. Should I retry {identifier}, skip it (and start what waits for it), or stop the orchestration?",
                    last.body.trim()
                ),
                Decision::options(&identifier),
            ),
        )
        .await?;
        return Ok(handled);
    };
    let running = rules::decide(&mut orch.children, at, decision);
    orch.asking = None;
    let note = match decision {
        Decision::Retry => {
            let run = orch.runs.entry(orch.children[at].id.clone()).or_default();
            run.attempt += 1;
            run.released_at = None;
            format!("Retrying {identifier} in a new session.")
        }
        Decision::Skip => format!("Skipping {identifier}; what waited for it can start now."),
        Decision::Stop => {
            stop_running(ctx, work, orch, running).await?;
            "Stopping the orchestration: nothing more will start, and running sub-issues are being stopped.".to_string()
        }
    };
    ctx.enqueue(
        session,
        format!("orchestration:decided:{session}:{}", last.id),
        OutboxOp::activity(ActivityKind::Thought, note),
    )
    .await?;
    Ok(handled)
}

/// The orchestration's spend limit: `orchestration.maxCost` plus what
/// answers of "continue" added.
fn cost_limit(ctx: &Ctx, orch: &Orchestration) -> MicroDollars {
    ctx.config
        .orchestration
        .max_cost_with(ctx.config.codegen.max_cost_per_task)
        + orch.cost_allowance
}

/// How many more children the spend limit lets start: what settled
/// children spent, plus a `maxCostPerTask` hold for each running one.
fn affordable(ctx: &Ctx, orch: &Orchestration) -> usize {
    let settled: MicroDollars = orch
        .children
        .iter()
        .filter(|c| !c.status.in_flight())
        .filter_map(|c| orch.run(&c.id))
        .map(|r| r.cost)
        .fold(MicroDollars::ZERO, |a, b| a + b);
    let in_flight = orch
        .children
        .iter()
        .filter(|c| c.status.in_flight())
        .count();
    rules::affordable(
        settled,
        in_flight,
        ctx.config.codegen.max_cost_per_task,
        cost_limit(ctx, orch),
    )
}

/// No further child starts: ask whether to continue past the limit.
async fn ask_to_continue(ctx: &Ctx, session: &str, orch: &mut Orchestration) -> StepResult {
    let limit = cost_limit(ctx, orch);
    let per_task = ctx.config.codegen.max_cost_per_task;
    let waiting = orch
        .children
        .iter()
        .filter(|c| c.status == ChildStatus::Waiting)
        .count();
    let body = format!(
        "The sub-issues' estimated spend plus the holds of running ones ({per_task} each, `maxCostPerTask`) would pass this orchestration's limit of {limit} (`orchestration.maxCost`), so I won't start more for now; {waiting} still wait. Continue (another {} for this orchestration), or stop the orchestration?",
        ctx.config.orchestration.max_cost_with(per_task)
    );
    orch.cost_asked += 1;
    ctx.enqueue(
        session,
        format!("orchestration:cost:{session}:{}", orch.cost_asked),
        OutboxOp::select(body, continue_options()),
    )
    .await?;
    orch.cost_asking = true;
    Ok(())
}

fn continue_options() -> Vec<String> {
    vec![
        "Continue the orchestration".to_string(),
        "Stop the orchestration".to_string(),
    ]
}

/// Ends the orchestration: asks each running child's task to stop.
async fn stop_running(
    ctx: &Ctx,
    work: &Work,
    orch: &mut Orchestration,
    running: Vec<usize>,
) -> StepResult {
    orch.stopped = true;
    orch.cost_asking = false;
    for i in running {
        let task_id = orch
            .run(&orch.children[i].id)
            .and_then(|r| r.task_id.clone());
        if let Some(id) = task_id {
            crate::orchestration::stop_child(ctx, &work.task, &id).await?;
        }
    }
    Ok(())
}

/// A reply to the spend question.
async fn answer_cost(
    ctx: &Ctx,
    work: &Work,
    orch: &mut Orchestration,
    last: &FollowUp,
) -> StepResult {
    let session = work.session();
    let note = match rules::parse_continue(&last.body) {
        Some(true) => {
            orch.cost_allowance += ctx
                .config
                .orchestration
                .max_cost_with(ctx.config.codegen.max_cost_per_task);
            orch.cost_asking = false;
            format!(
                "Continuing: this orchestration may now spend up to {}.",
                cost_limit(ctx, orch)
            )
        }
        Some(false) => {
            let running = rules::stop_all(&mut orch.children);
            stop_running(ctx, work, orch, running).await?;
            "Stopping the orchestration: nothing more will start, and running sub-issues are being stopped.".to_string()
        }
        None => {
            orch.cost_asked += 1;
            ctx.enqueue(
                session,
                format!("orchestration:cost:{session}:{}", orch.cost_asked),
                OutboxOp::select(
                    format!(
                        "I couldn't read \"{}\" as an answer. Continue the orchestration past its spend limit, or stop it?",
                        last.body.trim()
                    ),
                    continue_options(),
                ),
            )
            .await?;
            return Ok(());
        }
    };
    ctx.enqueue(
        session,
        format!("orchestration:decided:{session}:{}", last.id),
        OutboxOp::activity(ActivityKind::Thought, note),
    )
    .await?;
    Ok(())
}

/// Asks about the first child that failed or was stopped, once.
async fn ask(ctx: &Ctx, session: &str, orch: &mut Orchestration) -> StepResult {
    if orch.stopped {
        orch.asking = None;
        return Ok(());
    }
    // A child asked about may have moved on without an answer (someone
    // followed up in its own session and it succeeded).
    let still_open = orch.asking.as_ref().is_some_and(|id| {
        orch.children
            .iter()
            .any(|c| &c.id == id && c.status.needs_decision())
    });
    if still_open {
        return Ok(());
    }
    orch.asking = None;
    let Some(at) = rules::awaiting_decision(&orch.children) else {
        return Ok(());
    };
    let child = &orch.children[at];
    let held: Vec<&str> = rules::held_back(&orch.children)
        .into_iter()
        .map(|i| orch.children[i].identifier.as_str())
        .collect();
    let waiting = if held.is_empty() {
        String::new()
    } else {
        format!(" Waiting on it: {}.", held.join(", "))
    };
    let how = if child.status == ChildStatus::Stopped {
        "was stopped"
    } else {
        "failed"
    };
    let body = format!(
        "{} ({}) {how}.{waiting} Should I retry it, skip it (and start what waits for it), or stop the orchestration?",
        child.identifier, child.title
    );
    orch.asked += 1;
    ctx.enqueue(
        session,
        format!("orchestration:ask:{session}:{}", orch.asked),
        OutboxOp::select(body, Decision::options(&child.identifier)),
    )
    .await?;
    orch.asking = Some(child.id.clone());
    Ok(())
}

/// The session's agent plan (one step per sub-issue) and its links (each
/// child's pull requests), sent when they changed.
async fn progress(ctx: &Ctx, session: &str, orch: &mut Orchestration) -> StepResult {
    let plan: Vec<(String, String)> = orch
        .children
        .iter()
        .map(|c| {
            let note = match c.status {
                ChildStatus::Failed => " — failed",
                ChildStatus::Stopped => " — stopped",
                ChildStatus::Skipped => " — skipped",
                ChildStatus::AlreadyDone => " — already done",
                ChildStatus::NotStarted => " — not started",
                _ => "",
            };
            (
                format!("{} {}{note}", c.identifier, c.title),
                c.status.plan_status().as_str().to_string(),
            )
        })
        .collect();
    let mut urls = Vec::new();
    for c in &orch.children {
        if let Some(run) = orch.run(&c.id) {
            for (n, url) in run.pr_urls.iter().enumerate() {
                let label = if n == 0 {
                    format!("{} pull request", c.identifier)
                } else {
                    format!("{} pull request {}", c.identifier, n + 1)
                };
                if !urls.iter().any(|(_, u): &(String, String)| u == url) {
                    urls.push((label, url.clone()));
                }
            }
        }
    }
    let seen = serde_json::to_string(&(&plan, &urls)).expect("plan serializes");
    if orch.plan_sent.as_deref() == Some(seen.as_str()) {
        return Ok(());
    }
    orch.plan_seq += 1;
    ctx.enqueue(
        session,
        format!("orchestration:plan:{session}:{}", orch.plan_seq),
        OutboxOp::SessionPlan { plan, urls },
    )
    .await?;
    orch.plan_sent = Some(seen);
    Ok(())
}

/// Hands each started child without a task to the agent: the first time
/// by delegating it (Linear opens its session), a retry by a new session;
/// an adopted child parked behind a sibling is woken. Idempotent: the
/// outbox keys are fixed, so repeating this after a crash sends nothing new.
async fn release(ctx: &Ctx, work: &Work, orch: &Orchestration) -> StepResult {
    let session = work.session();
    for child in &orch.children {
        if child.status != ChildStatus::Started {
            continue;
        }
        let Some(run) = orch.run(&child.id) else {
            continue;
        };
        if run.released_at.is_none() {
            continue;
        }
        if run.adopted && run.attempt == 0 {
            if let Some(task_id) = &run.task_id
                && ctx.store.wake_task(task_id, ctx.now_ms()).await?
            {
                ctx.wake.scheduler.notify_one();
            }
            continue;
        }
        if run.task_id.is_some() && current_task(ctx, child, run).await?.is_some() {
            continue;
        }
        let (key, op) = if run.attempt == 0 {
            let agent = work
                .data
                .app_user_id
                .clone()
                .or_else(|| ctx.linear.app_user_id(&work.task.organization_id))
                .ok_or_else(|| {
                    StepError::Fatal(
                        "the agent's Linear user is unknown, so I cannot delegate the sub-issues"
                            .into(),
                    )
                })?;
            (
                format!("orchestration:delegate:{session}:{}", child.id),
                OutboxOp::IssueDelegate {
                    issue_id: child.id.clone(),
                    delegate_id: agent,
                },
            )
        } else {
            (
                format!("orchestration:retry:{session}:{}:{}", child.id, run.attempt),
                OutboxOp::CreateSession {
                    issue_id: child.id.clone(),
                },
            )
        };
        ctx.enqueue(session, key, op).await?;
    }
    Ok(())
}

/// The one final answer: each child's outcome, PR and estimated cost, the
/// total, and what was skipped.
fn summary(parent: &str, orch: &Orchestration) -> String {
    let mut total = MicroDollars::ZERO;
    let mut lines = Vec::new();
    for c in &orch.children {
        let run = orch.run(&c.id).cloned().unwrap_or_default();
        total += run.cost;
        let pr = match run.pr_urls.as_slice() {
            [] => String::new(),
            prs => format!(" · PR {}", prs.join(", ")),
        };
        let cost = if run.task_id.is_some() {
            format!(" · estimated cost {}", run.cost)
        } else {
            String::new()
        };
        lines.push(format!(
            "- **{}** {} — {}{pr}{cost}",
            c.identifier,
            c.title,
            c.status.describe()
        ));
    }
    let skipped: Vec<String> = orch
        .children
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                ChildStatus::Skipped
                    | ChildStatus::NotStarted
                    | ChildStatus::AlreadyDone
                    | ChildStatus::Canceled
            )
        })
        .map(|c| format!("{} ({})", c.identifier, c.status.describe()))
        .collect();
    let head = if orch.stopped {
        format!("The orchestration of {parent} was stopped.")
    } else {
        format!(
            "All {} sub-issues of {parent} are settled.",
            orch.children.len()
        )
    };
    let skipped = if skipped.is_empty() {
        "Nothing was skipped.".to_string()
    } else {
        format!("Not run here: {}.", skipped.join(", "))
    };
    format!(
        "{head}\n\n{}\n\nTotal estimated cost: {total} (estimates from the runs' logs). {skipped}",
        lines.join("\n")
    )
}

async fn mark_delivered(ctx: &Ctx, ids: &[i64]) -> StepResult {
    for id in ids {
        ctx.store.mark_followup_delivered(*id, ctx.now_ms()).await?;
    }
    Ok(())
}
