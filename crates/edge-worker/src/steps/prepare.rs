//! `received` and `awaiting_selection`: read the issue once, move it to
//! "started", route it and build the prompt.

use super::{StepError, StepResult, Work};
use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use cyrus_core::access::AccessDecision;
use cyrus_core::lifecycle::{Event, TaskState, WaitReason};
use cyrus_core::prompt::{self, IssueContext, IssueRef, PromptInput, RepositoryContext};
use cyrus_core::routing::{self, IssueView, RepositoryDecision};
use cyrus_linear::LinearClient;
use cyrus_linear::client::IssueDetails;
use cyrus_store::{AuditKind, FollowUpKind, PARKED};

pub(super) async fn received(ctx: &Ctx, work: &mut Work) -> StepResult {
    if let Some(live) = work.data.merged_into.clone() {
        let other = ctx.store.get_task(&live).await?.filter(|t| t.is_active());
        if let Some(other) = other {
            // The message joins the live run only if its author may use
            // the agent, under the rule of the live task's repository.
            let linear = ctx
                .linear
                .client_or_sync(&ctx.store, &work.task.organization_id)
                .await
                .ok_or_else(|| unknown_workspace(ctx, &work.task.organization_id))?;
            let repository = crate::task_data::TaskData::from_value(&other.data).repository;
            if let AccessDecision::Refused(reason) =
                access(ctx, work, &linear, repository.as_deref()).await?
            {
                return refuse(ctx, work, &reason).await;
            }
            if let Some(text) = work.data.mention.clone() {
                let now = ctx.now_ms();
                ctx.store
                    .add_followup(&other.id, &format!("merged:{}", work.session()), &text, now)
                    .await?;
                ctx.store.wake_task(&other.id, now).await?;
                ctx.wake.scheduler.notify_one();
            }
            let body = format!(
                "I'm already working on {} in another session, so I won't start a second run. I've passed your message on to that session; its progress and answer appear there.",
                work.task.issue_identifier
            );
            ctx.enqueue(
                work.session(),
                format!("final:merged:{}", work.session()),
                OutboxOp::activity(ActivityKind::Response, body),
            )
            .await?;
            return work.advance(ctx, Event::StopRequested, PARKED).await;
        }
        // The other task ended in the meantime: this session works normally.
        work.data.merged_into = None;
    }
    let linear = ctx
        .linear
        .client_or_sync(&ctx.store, &work.task.organization_id)
        .await
        .ok_or_else(|| unknown_workspace(ctx, &work.task.organization_id))?;
    let issue = linear.issue_for_agent(&work.task.issue_id).await?;
    ctx.store.add_api_calls(&work.task.id, 1).await?;
    work.data.issue_url = issue.url.clone();

    // Who asked must be allowed before anything in Linear changes or any
    // budget is held. Routing is pure, so the repository (whose rule may
    // differ) is known without side effects.
    let tentative = routing::route(
        &issue_view(&issue, &work.task.organization_id, 0),
        &ctx.config,
    );
    let decision = access(ctx, work, &linear, tentative.repository.chosen_id()).await?;
    if let AccessDecision::Refused(reason) = decision {
        return refuse(ctx, work, &reason).await;
    }

    // A sub-issue of an orchestration wakes its parent when it moves; one
    // the parent handed over has had its blockers checked by the parent
    // (a sibling whose run completed counts as done there, though its
    // issue stays open until its pull request merges).
    let released = match &issue.parent {
        Some(parent) => orchestrating_parent(ctx, work, &parent.id).await?,
        None => false,
    };

    // Parked while another issue blocks this one; an `Issue` webhook that
    // changes some issue's state wakes parked tasks to look again.
    let blockers: Vec<String> = if released {
        Vec::new()
    } else {
        issue
            .open_blockers()
            .iter()
            .map(|b| b.identifier.clone().unwrap_or_else(|| b.id.clone()))
            .collect()
    };
    if !blockers.is_empty() {
        let list = blockers.join(", ");
        ctx.enqueue(
            work.session(),
            format!("blocked:{}:{list}", work.session()),
            OutboxOp::activity(
                ActivityKind::Thought,
                format!("Blocked by {list} — I'll start automatically once it is resolved."),
            ),
        )
        .await?;
        work.task.step = Some(WaitReason::Blocked);
        work.task.detail = Some(format!("blocked by {list}"));
        work.task.run_at = PARKED;
        return work.save(ctx).await;
    }
    if work.task.step == Some(WaitReason::Blocked) {
        work.task.step = None;
        work.task.detail = None;
    }
    move_to_started(ctx, work, &linear, &issue).await?;

    if let Some(priority) = issue.priority {
        work.task.priority = priority as i64;
    }
    // An orchestrator whose issue has sub-issues runs them, not a run of
    // its own: no repository, prompt, budget or model call.
    if tentative.task_type == cyrus_core::TaskType::Orchestrator && !issue.children.nodes.is_empty()
    {
        work.task.task_type = Some(tentative.task_type);
        audit_route(ctx, work, &tentative, "received").await?;
        let count = issue.children.nodes.len();
        let more = if issue
            .children
            .page_info
            .as_ref()
            .is_some_and(|p| p.has_next_page)
        {
            "+"
        } else {
            ""
        };
        ctx.enqueue(
            work.session(),
            format!("route:{}", work.session()),
            OutboxOp::ephemeral_thought(format!(
                "{} {} has {count}{more} sub-issues: I'll run each in its own session, in dependency order and at most {} at a time, and keep the plan here up to date.",
                tentative.task_type_reason,
                issue.identifier,
                ctx.config.orchestration.max_parallel_children
            )),
        )
        .await?;
        work.data.orchestration = Some(Default::default());
        return work.advance(ctx, Event::Orchestrate, ctx.now_ms()).await;
    }
    work.data.team_id = issue.team.as_ref().map(|t| t.id.clone());
    // An orchestrator without sub-issues: its run plans them.
    work.data.planning = tentative.task_type == cyrus_core::TaskType::Orchestrator;
    work.data.images = super::images::gather(ctx, &linear, &issue).await;
    let view = issue_view(&issue, &work.task.organization_id, work.data.images.len());
    let decision = routing::route(&view, &ctx.config);
    work.task.task_type = Some(decision.task_type);
    work.task.model = decision.model.clone();
    let experiment_note = super::experiment::apply(ctx, work, &issue, &decision).await?;
    audit_route(ctx, work, &decision, "received").await?;
    let mut notes = vec![decision.task_type_reason.clone()];
    match &decision.repository {
        RepositoryDecision::Chosen {
            repository_id,
            branch,
            reason,
        } => {
            notes.push(reason.clone());
            if let Some(note) = experiment_note {
                notes.push(note);
            } else if let Some(model) = &decision.model {
                notes.push(format!("Model: {model} ({}).", decision.model_reason));
            }
            if !work.data.images.is_empty() {
                notes.push(format!(
                    "Sending {} image(s) from the issue.",
                    work.data.images.len()
                ));
            }
            notes.extend(crate::mcp_check::note_for(ctx, repository_id).await);
            ctx.enqueue(
                work.session(),
                format!("route:{}", work.session()),
                OutboxOp::ephemeral_thought(notes.join(" ")),
            )
            .await?;
            choose_repository(ctx, work, repository_id, branch.clone())?;
            build(ctx, work, &issue, None).await?;
            work.advance(ctx, Event::Routed, ctx.now_ms()).await
        }
        RepositoryDecision::NeedsSelection { candidates, reason } => {
            tracing::info!(task = %work.task.id, "repository needs selection: {reason}");
            work.data.selection_candidates = candidates.clone();
            ask_for_repository(ctx, work, "Which repository should I work in?", 0).await?;
            work.advance(ctx, Event::NeedsRepoSelection, PARKED).await
        }
    }
}

/// Whether the issue's parent is being orchestrated and handed this issue
/// over; notes the parent so this task's transitions wake it.
async fn orchestrating_parent(
    ctx: &Ctx,
    work: &mut Work,
    parent_issue: &str,
) -> Result<bool, StepError> {
    let Some(parent) = ctx.store.find_active_task_for_issue(parent_issue).await? else {
        return Ok(false);
    };
    if parent.state != TaskState::Orchestrating {
        return Ok(false);
    }
    work.data.orchestration_parent = Some(parent.id.clone());
    let data = crate::task_data::TaskData::from_value(&parent.data);
    Ok(data
        .orchestration
        .as_ref()
        .and_then(|o| o.run(&work.task.issue_id))
        .is_some_and(|r| r.released_at.is_some()))
}

/// The access decision for the task's requester, recorded in the audit
/// log once per repository it was made for.
async fn access(
    ctx: &Ctx,
    work: &Work,
    linear: &LinearClient,
    repository_id: Option<&str>,
) -> Result<AccessDecision, StepError> {
    let key = repository_id.unwrap_or("-");
    if let Some(rule) = &work.data.triage_rule {
        let reason = format!("started by triage rule {rule}");
        crate::audit::task(
            ctx,
            &work.task,
            AuditKind::AccessAllowed,
            key,
            Some(&format!("triage:{rule}")),
            &reason,
            None,
        )
        .await?;
        return Ok(AccessDecision::Allowed(reason));
    }
    let decision = match &work.data.requested_by {
        Some(id) => {
            let requester = crate::access::Requester {
                id,
                email: work.data.requested_by_email.as_deref(),
            };
            crate::access::decide(
                ctx,
                linear,
                &work.task.organization_id,
                &requester,
                repository_id,
            )
            .await?
        }
        None => AccessDecision::Refused("the session does not say who asked".into()),
    };
    let actor = work
        .data
        .requested_by_email
        .clone()
        .or_else(|| work.data.requested_by.clone());
    let kind = if decision.is_allowed() {
        AuditKind::AccessAllowed
    } else {
        AuditKind::AccessRefused
    };
    let detail = serde_json::json!({"repository": repository_id});
    crate::audit::task(
        ctx,
        &work.task,
        kind,
        key,
        actor.as_deref(),
        decision.reason(),
        Some(detail),
    )
    .await?;
    Ok(decision)
}

/// One polite `response` and the task ends: no run, no budget held.
async fn refuse(ctx: &Ctx, work: &mut Work, reason: &str) -> StepResult {
    metrics::counter!("cyrus_access_refused_total").increment(1);
    tracing::info!(task = %work.task.id, issue = %work.task.issue_identifier, "access policy refused: {reason}");
    ctx.enqueue(
        work.session(),
        format!("final:refused:{}", work.session()),
        OutboxOp::activity(ActivityKind::Response, crate::access::refusal(ctx, reason)),
    )
    .await?;
    work.task.detail = Some(format!("refused by the access policy: {reason}"));
    work.advance(ctx, Event::StopRequested, PARKED).await
}

/// The routing decision, in the audit log.
async fn audit_route(
    ctx: &Ctx,
    work: &Work,
    decision: &routing::RoutingDecision,
    key: &str,
) -> StepResult {
    let detail = serde_json::json!({
        "taskType": decision.task_type.to_string(),
        "repository": decision.repository.chosen_id(),
        "model": work.task.model,
        "images": work.data.images.len(),
        "experiment": work.data.experiment,
        "arm": work.data.experiment_arm,
    });
    let reason = format!("{} {}", decision.task_type_reason, decision.model_reason);
    crate::audit::task(
        ctx,
        &work.task,
        AuditKind::Routed,
        key,
        Some("cyrus"),
        &reason,
        Some(detail),
    )
    .await?;
    Ok(())
}

/// No client for the task's workspace: with an OAuth app the workspace is
/// not connected (yet) — wait for `cyrus linear connect`; with static
/// tokens only, the configuration lacks it, which no wait will fix.
fn unknown_workspace(ctx: &Ctx, organization_id: &str) -> StepError {
    if ctx.config.linear.oauth.is_some() {
        StepError::Wait {
            at: ctx.now_ms() + 30_000,
            why: format!(
                "the Linear workspace {organization_id} is not connected; run `cyrus linear connect` (as an admin of that workspace)"
            ),
        }
    } else {
        StepError::Fatal(format!(
            "no Linear workspace is configured for organization {organization_id}"
        ))
    }
}

/// Woken by a follow-up answering the `select` elicitation.
pub(super) async fn awaiting_selection(ctx: &Ctx, work: &mut Work) -> StepResult {
    let pending = ctx.store.pending_followups(&work.task.id).await?;
    let Some(answer) = pending
        .iter()
        .rev()
        .find(|f| f.kind == FollowUpKind::Prompt)
    else {
        work.task.run_at = PARKED;
        return work.save(ctx).await;
    };
    for f in &pending {
        ctx.store
            .mark_followup_delivered(f.id, ctx.now_ms())
            .await?;
    }
    let Some(repo_id) = match_repository(ctx, &work.data.selection_candidates, &answer.body) else {
        let body = format!(
            "I couldn't match \"{}\" to a repository. Please pick one of the options.",
            answer.body.trim()
        );
        ask_for_repository(ctx, work, &body, answer.id).await?;
        return work.advance(ctx, Event::NeedsRepoSelection, PARKED).await;
    };
    let linear = ctx
        .linear
        .client_or_sync(&ctx.store, &work.task.organization_id)
        .await
        .ok_or_else(|| unknown_workspace(ctx, &work.task.organization_id))?;
    if let AccessDecision::Refused(reason) = access(ctx, work, &linear, Some(&repo_id)).await? {
        return refuse(ctx, work, &reason).await;
    }
    let issue = linear.issue_for_agent(&work.task.issue_id).await?;
    ctx.store.add_api_calls(&work.task.id, 1).await?;
    choose_repository(ctx, work, &repo_id, None)?;
    build(ctx, work, &issue, None).await?;
    work.advance(ctx, Event::RepoSelected, ctx.now_ms()).await
}

async fn ask_for_repository(ctx: &Ctx, work: &Work, body: &str, seq: i64) -> StepResult {
    let options: Vec<String> = work
        .data
        .selection_candidates
        .iter()
        .filter_map(|id| ctx.config.repository(id))
        .map(|r| r.name.clone())
        .collect();
    ctx.enqueue(
        work.session(),
        format!("select:{}:{seq}", work.session()),
        OutboxOp::select(body, options),
    )
    .await?;
    Ok(())
}

/// Matches a free-text answer to one of the candidates by name or id,
/// ignoring case and surrounding text such as a URL.
fn match_repository(ctx: &Ctx, candidates: &[String], answer: &str) -> Option<String> {
    let answer = answer.trim().to_ascii_lowercase();
    let repos: Vec<_> = candidates
        .iter()
        .filter_map(|id| ctx.config.repository(id))
        .collect();
    repos
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(&answer) || r.id.eq_ignore_ascii_case(&answer))
        .or_else(|| {
            let hits: Vec<_> = repos
                .iter()
                .filter(|r| answer.contains(&r.name.to_ascii_lowercase()))
                .collect();
            (hits.len() == 1).then(|| hits[0])
        })
        .map(|r| r.id.clone())
}

fn choose_repository(
    ctx: &Ctx,
    work: &mut Work,
    repository_id: &str,
    branch: Option<String>,
) -> StepResult {
    let repo = ctx.config.repository(repository_id).ok_or_else(|| {
        StepError::Fatal(format!("routing chose unknown repository {repository_id}"))
    })?;
    work.data.repository = Some(repo.id.clone());
    work.data.repository_name = Some(repo.name.clone());
    work.data.branch = branch;
    work.task.repository_id = repo.codegen_repo_id;
    Ok(())
}

/// Moves the issue to the team's first `started` state unless it is already
/// started or closed (Linear's recommendation for agents).
async fn move_to_started(
    ctx: &Ctx,
    work: &Work,
    linear: &cyrus_linear::LinearClient,
    issue: &IssueDetails,
) -> StepResult {
    let kind = issue.state.as_ref().and_then(|s| s.kind.as_deref());
    if matches!(kind, Some("started" | "completed" | "canceled")) {
        return Ok(());
    }
    let Some(team) = &issue.team else {
        return Ok(());
    };
    let workflow = linear.team_workflow(&team.id).await?;
    ctx.store.add_api_calls(&work.task.id, 1).await?;
    if let Some(state) = workflow.first_started_state() {
        ctx.enqueue(
            work.session(),
            format!("state:{}", work.session()),
            OutboxOp::IssueState {
                issue_id: issue.id.clone(),
                state_id: state.id.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

fn label_names(issue: &IssueDetails) -> Vec<String> {
    issue
        .label_names()
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn issue_view(issue: &IssueDetails, organization_id: &str, images: usize) -> IssueView {
    IssueView {
        identifier: issue.identifier.clone(),
        title: issue.title.clone(),
        description: issue.description.clone(),
        labels: label_names(issue),
        team_key: issue.team.as_ref().and_then(|t| t.key.clone()),
        project_name: issue.project.as_ref().and_then(|p| p.name.clone()),
        has_parent: issue.parent.is_some(),
        creator: None,
        organization_id: Some(organization_id.to_string()),
        images,
    }
}

fn issue_context(issue: &IssueDetails, work: &Work) -> IssueContext {
    let issue_ref = |s: &cyrus_linear::client::IssueSummary| IssueRef {
        identifier: s.identifier.clone().unwrap_or_default(),
        title: s.title.clone().unwrap_or_default(),
        state: s.state.as_ref().and_then(|k| k.kind.clone()),
    };
    IssueContext {
        identifier: issue.identifier.clone(),
        title: issue.title.clone(),
        description: issue.description.clone(),
        labels: label_names(issue),
        state: issue.state.as_ref().and_then(|s| s.name.clone()),
        parent: issue.parent.as_ref().map(issue_ref),
        sub_issues: issue.children.nodes.iter().map(issue_ref).collect(),
        comments: issue
            .comments
            .nodes
            .iter()
            .filter_map(|c| {
                Some(prompt::Comment {
                    author: c
                        .user
                        .as_ref()
                        .or(c.bot_actor.as_ref())
                        .and_then(|u| u.name.clone())
                        .unwrap_or_else(|| "someone".into()),
                    created_at: c
                        .created_at
                        .as_deref()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_default(),
                    body: c.body.clone().filter(|b| !b.trim().is_empty())?,
                })
            })
            .collect(),
        attachments: issue
            .attachments
            .nodes
            .iter()
            .filter_map(|a| {
                Some(prompt::Attachment {
                    title: a.title.clone().unwrap_or_else(|| "attachment".into()),
                    url: a.url.clone()?,
                })
            })
            .collect(),
        prompt_context: work.data.prompt_context.clone(),
        guidance: work.data.guidance.clone(),
    }
}

/// Builds and stores the prompt for the chosen repository (the images were
/// gathered before routing).
async fn build(
    ctx: &Ctx,
    work: &mut Work,
    issue: &IssueDetails,
    follow_up: Option<String>,
) -> StepResult {
    let repo = work
        .data
        .repository
        .as_deref()
        .and_then(|id| ctx.config.repository(id))
        .ok_or_else(|| StepError::Fatal("no repository chosen".into()))?;
    let input = PromptInput {
        task_type: work
            .task
            .task_type
            .unwrap_or(cyrus_core::TaskType::Orchestrator),
        issue: issue_context(issue, work),
        repository: RepositoryContext {
            name: repo.name.clone(),
            branch: work.data.branch.clone(),
            allowed_tools: repo.allowed_tools.clone(),
            mcp_servers: repo.mcp_servers.clone(),
        },
        follow_up,
        previous_run: None,
    };
    let built = prompt::build_prompt(&input, ctx.config.prompt.token_budget);
    work.data.prompt = Some(built.text);
    work.data.prompt_tokens = Some(built.approx_tokens);
    let t = &built.truncation;
    work.data.prompt_cut_chars = t.comment_chars_cut
        + t.description_chars_cut
        + t.prompt_context_chars_cut
        + t.base_chars_cut
        + t.follow_up_chars_cut;
    work.data.prompt_sections = built
        .sections
        .iter()
        .map(|(name, tokens)| (name.to_string(), *tokens))
        .collect();
    Ok(())
}
