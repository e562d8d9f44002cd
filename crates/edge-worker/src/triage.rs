//! Proactive triage: Cyrus starts on issues that match a `triage.rules[]`
//! entry, without being delegated, through Linear's
//! `agentSessionCreateOnIssue`. Bounded: at most `triage.maxPerDay` per UTC
//! day (claimed in the store before Linear is asked, atomically across
//! replicas), never when the day's budget cannot hold a task, never twice
//! for one issue, never for an issue a person already delegated, and in a
//! dry run nothing starts: the audit log says what would have.
//!
//! The session's `created` webhook names the agent as its creator, which
//! intake ignores as self-triggered; the task is created here instead, from
//! the mutation's answer.

use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use cyrus_core::config::{TriageIssue, TriageRule};
use cyrus_linear::webhook::event::WebhookIssue;
use cyrus_store::{AuditEntry, AuditKind, NewTask, TriageClaim};
use serde_json::json;

/// What triage did with an issue, for the delivery's outcome.
pub(crate) async fn consider(
    ctx: &Ctx,
    organization_id: &str,
    issue: &WebhookIssue,
) -> Result<Option<String>, crate::intake::IntakeError> {
    let triage = &ctx.config.triage;
    if triage.rules.is_empty() {
        return Ok(None);
    }
    // A person's delegation (to us or another agent) is theirs to run; an
    // issue the agent created itself (an orchestration's sub-issue) is run
    // by that orchestration.
    if issue.delegate_id.is_some() {
        return Ok(None);
    }
    if issue.creator_id.is_some()
        && issue.creator_id.as_deref() == ctx.linear.app_user_id(organization_id).as_deref()
    {
        return Ok(None);
    }
    let Some(linear) = ctx.linear.client(organization_id) else {
        return Ok(None);
    };
    let creator_email = match (&issue.creator_id, wants_creator_email(&triage.rules)) {
        (Some(id), true) => linear.user_access(id).await?.email,
        _ => None,
    };
    let labels: Vec<&str> = issue
        .labels
        .iter()
        .filter_map(|l| l.name.as_deref())
        .collect();
    let view = TriageIssue {
        team_key: issue.team.as_ref().and_then(|t| t.key.as_deref()),
        labels,
        state_name: issue.state.as_ref().and_then(|s| s.name.as_deref()),
        state_type: issue.state.as_ref().and_then(|s| s.kind.as_deref()),
        priority: issue.priority.map(|p| p as u8),
        creator_id: issue.creator_id.as_deref(),
        creator_email: creator_email.as_deref(),
    };
    let Some(rule) = triage.rules.iter().find(|r| r.matches(&view)) else {
        return Ok(None);
    };
    // Any task ever, not only a live one: an issue a person delegated and
    // then took back is theirs, not triage's.
    if has_any_task(ctx, &issue.id).await? {
        return Ok(Some("triage: the issue has (or had) a task".into()));
    }
    let identifier = issue.identifier.clone().unwrap_or_else(|| issue.id.clone());
    let day = ctx.today().to_string();
    let skip = |reason: String, key: String| AuditEntry {
        dedupe_key: key,
        at: ctx.now_ms(),
        kind: AuditKind::TriageSkipped,
        organization_id: Some(organization_id.to_string()),
        issue_id: Some(issue.id.clone()),
        issue_identifier: Some(identifier.clone()),
        task_id: None,
        actor: Some(format!("triage:{}", rule.name)),
        reason,
        detail: None,
    };
    if triage.dry_run {
        let reason = format!(
            "dry run: rule {} would start a session on {identifier}",
            rule.name
        );
        tracing::info!("triage: {reason}");
        crate::audit::record(
            ctx,
            &skip(reason.clone(), format!("triage:dry:{}", issue.id)),
        )
        .await?;
        return Ok(Some(format!("triage: {reason}")));
    }
    // The issue's author must be someone the access policy admits (a
    // guest's issue matching a rule spends nothing); an issue with no human
    // author (an integration) is the operator's rule to allow.
    if let Some(creator) = issue.creator_id.as_deref() {
        let requester = crate::access::Requester {
            id: creator,
            email: creator_email.as_deref(),
        };
        let decision =
            crate::access::decide(ctx, &linear, organization_id, &requester, None).await?;
        if let cyrus_core::access::AccessDecision::Refused(why) = decision {
            let reason = format!("the issue's author is not admitted by the access policy ({why})");
            crate::audit::record(
                ctx,
                &skip(reason.clone(), format!("triage:access:{}", issue.id)),
            )
            .await?;
            return Ok(Some(format!("triage: not started: {reason}")));
        }
    }
    let codegen = &ctx.config.codegen;
    let spent = ctx.store.spend_for_day(ctx.today()).await?;
    let held = ctx.store.reserved_for_day(ctx.today()).await?;
    let committed = spent.0.saturating_add(held.0);
    if committed.saturating_add(codegen.max_cost_per_task.0) > codegen.max_cost_per_day.0 {
        let reason = format!(
            "today's budget ({spent} spent and {held} held of {}) cannot hold another task's reserve of {}",
            codegen.max_cost_per_day, codegen.max_cost_per_task
        );
        crate::audit::record(
            ctx,
            &skip(reason.clone(), format!("triage:budget:{}:{day}", issue.id)),
        )
        .await?;
        return Ok(Some(format!("triage: not started: {reason}")));
    }
    let claim = ctx
        .store
        .claim_triage_start(
            &issue.id,
            organization_id,
            &rule.name,
            &day,
            triage.max_per_day,
            ctx.now_ms(),
        )
        .await?;
    match claim {
        TriageClaim::AlreadyStarted => return Ok(Some("triage: already started once".into())),
        TriageClaim::DailyCapReached => {
            let reason = format!(
                "triage.maxPerDay ({}) reached for {day}",
                triage.max_per_day
            );
            crate::audit::record(
                ctx,
                &skip(reason.clone(), format!("triage:cap:{}:{day}", issue.id)),
            )
            .await?;
            return Ok(Some(format!("triage: not started: {reason}")));
        }
        TriageClaim::Claimed => {}
    }
    // Claimed: from here on the issue is never tried again, so a crash or a
    // failure below leaves it to a person rather than risking two sessions.
    // A person may have delegated in the meantime: look once more, holding
    // the issue until the task is stored, so a delegation accepted at the
    // same moment sees one or the other (`issue_gate`).
    let issue_held = ctx.issue_gate.enter(&issue.id).await;
    if ctx
        .store
        .find_active_task_for_issue(&issue.id)
        .await?
        .is_some()
    {
        return Ok(Some(
            "triage: a person delegated the issue meanwhile".into(),
        ));
    }
    let session_id = match linear.create_session_on_issue(&issue.id).await {
        Ok(id) => id,
        Err(err) => {
            let reason = format!("Linear did not open the session: {err}");
            tracing::warn!(issue = %identifier, "triage: {reason}");
            crate::audit::record(
                ctx,
                &skip(reason.clone(), format!("triage:failed:{}", issue.id)),
            )
            .await?;
            return Ok(Some(format!("triage: {reason}")));
        }
    };
    ctx.store.set_triage_session(&issue.id, &session_id).await?;
    start_task(ctx, organization_id, issue, &identifier, rule, &session_id).await?;
    drop(issue_held);
    metrics::counter!("cyrus_triage_started_total").increment(1);
    Ok(Some(format!(
        "triage: started a session by rule {}",
        rule.name
    )))
}

/// The task for a session triage opened, its first thought, and the audit
/// row.
async fn start_task(
    ctx: &Ctx,
    organization_id: &str,
    issue: &WebhookIssue,
    identifier: &str,
    rule: &TriageRule,
    session_id: &str,
) -> Result<(), cyrus_store::StoreError> {
    let now = ctx.now_ms();
    let body = format!(
        "I picked up {identifier} on my own: it matches the triage rule \"{}\". Reply \"stop\" if I shouldn't work on it.",
        rule.name
    );
    ctx.enqueue(
        session_id,
        format!("ack:{session_id}"),
        OutboxOp::activity(ActivityKind::Thought, body),
    )
    .await?;
    let new = NewTask {
        agent_session_id: session_id.to_string(),
        issue_id: issue.id.clone(),
        issue_identifier: identifier.to_string(),
        organization_id: organization_id.to_string(),
        state: cyrus_core::lifecycle::TaskState::Received,
        priority: issue.priority.map(|p| p as i64).unwrap_or(0),
        created_at: now,
        run_at: now,
        max_attempts: crate::intake::MAX_TASK_ATTEMPTS,
        data: json!({
            "triage_rule": rule.name,
            "app_user_id": ctx.linear.app_user_id(organization_id),
        }),
    };
    let (task, _) = ctx.store.create_task_if_absent(&new).await?;
    crate::audit::task(
        ctx,
        &task,
        AuditKind::TriageStarted,
        "start",
        Some(&format!("triage:{}", rule.name)),
        &format!("the issue matches triage rule {}", rule.name),
        None,
    )
    .await?;
    ctx.wake.scheduler.notify_one();
    Ok(())
}

async fn has_any_task(ctx: &Ctx, issue_id: &str) -> Result<bool, cyrus_store::StoreError> {
    let filter = cyrus_store::TaskFilter {
        issue_id: Some(issue_id.to_string()),
        limit: Some(1),
        ..Default::default()
    };
    Ok(!ctx.store.list_tasks(&filter).await?.is_empty())
}

fn wants_creator_email(rules: &[TriageRule]) -> bool {
    rules
        .iter()
        .any(|r| r.created_by.iter().any(|c| c.contains('@')))
}

/// How far back the catch-up looks for issues whose `Issue` webhook may
/// have been missed: longer than the reconciliation interval, so a pass
/// that failed is covered by the next.
const CATCH_UP_WINDOW_MS: i64 = 60 * 60_000;

/// The reconciliation pass's share: issues created recently in each
/// workspace, considered as if their webhook had arrived. Idempotent with
/// the webhook path (claims and audit keys are per issue). Returns how many
/// issues it looked at.
pub(crate) async fn catch_up(ctx: &Ctx) -> Result<usize, crate::intake::IntakeError> {
    if ctx.config.triage.rules.is_empty() {
        return Ok(0);
    }
    let since = chrono::DateTime::from_timestamp_millis(ctx.now_ms() - CATCH_UP_WINDOW_MS)
        .unwrap_or_default();
    let mut seen = 0;
    for (organization_id, linear) in ctx.linear.all() {
        for issue in linear.recent_issues(since).await? {
            seen += 1;
            if let Some(outcome) = consider(ctx, &organization_id, &issue).await? {
                tracing::debug!(issue = %issue.id, "triage catch-up: {outcome}");
            }
        }
    }
    Ok(seen)
}
