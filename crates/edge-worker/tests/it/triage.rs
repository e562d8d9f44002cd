//! Proactive triage through the real worker: matching new issues get one
//! session and one run each, within the daily cap and the budget, never
//! twice, never over a person's delegation; a dry run starts nothing.

use crate::harness::*;
use cyrus_sandbox::linear::{NewIssue, NewLabel};
use cyrus_stack::{Stack, StackOptions};
use cyrus_store::{AuditFilter, AuditKind};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn triage_stack(triage: serde_json::Value, per_task: f64, per_day: f64) -> StackOptions {
    StackOptions {
        config_patch: Some(json!({"triage": triage})),
        max_cost_per_task: per_task,
        max_cost_per_day: per_day,
        ..Default::default()
    }
    .time_scale(30.0)
}

fn bug_label(stack: &Stack) -> String {
    stack
        .linear
        .control()
        .create_label(NewLabel {
            name: "Bug".into(),
            ..Default::default()
        })
        .unwrap()
        .id
}

/// A new issue in ENG with the Bug label, nobody delegated.
fn new_bug(stack: &Stack, label: &str, title: &str) -> String {
    stack
        .linear
        .control()
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: title.into(),
            description: Some("Crashes. [sim outcome=COMPLETE duration=900s logs=3]".into()),
            label_ids: vec![label.to_string()],
            ..Default::default()
        })
        .unwrap()
        .id
}

fn sessions_on(stack: &Stack, issue_id: &str) -> usize {
    let control = stack.linear.control();
    control
        .sessions()
        .iter()
        .filter(|s| {
            control
                .session(s)
                .is_some_and(|v| v.issue_id.as_deref() == Some(issue_id))
        })
        .count()
}

async fn audit_rows(stack: &Stack, kind: AuditKind) -> Vec<cyrus_store::AuditEntry> {
    let store = stack.store().await.unwrap();
    store
        .list_audit(&AuditFilter {
            kind: Some(kind),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn runs_reach(stack: &Stack, n: usize) {
    eventually(
        T,
        &format!("{n} Codegen runs"),
        || (stack.codegen.control().runs().len() >= n).then_some(()),
        || format!("{:#?}", stack.codegen.control().runs()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_starts_matching_issues_once_within_the_daily_cap() {
    let rules =
        json!({"maxPerDay": 2, "rules": [{"name": "bugs", "teams": ["ENG"], "labels": ["bug"]}]});
    let stack = spawn(triage_stack(rules, 2.0, 100.0)).await;
    let bug = bug_label(&stack);
    let first = new_bug(&stack, &bug, "First crash");
    let second = new_bug(&stack, &bug, "Second crash");
    runs_reach(&stack, 2).await;
    assert_eq!(sessions_on(&stack, &first), 1);
    assert_eq!(sessions_on(&stack, &second), 1);
    let first_session = stack.linear.control().sessions()[0].clone();
    let thoughts = bodies(&session(&stack, &first_session), "thought");
    assert!(
        thoughts.iter().any(|t| t.contains("triage rule \"bugs\"")),
        "says why it started: {thoughts:?}"
    );

    // The day's cap is reached: a third matching issue gets nothing.
    let third = new_bug(&stack, &bug, "Third crash");
    let skipped = wait_for_audit(&stack, AuditKind::TriageSkipped, 1).await;
    assert!(skipped[0].reason.contains("maxPerDay"), "{skipped:#?}");
    assert_eq!(sessions_on(&stack, &third), 0);

    // An edit that still matches does not start a second session.
    let other = stack
        .linear
        .control()
        .create_label(NewLabel {
            name: "ui".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    linear_client(&stack)
        .update_issue(
            &first,
            &cyrus_linear::client::IssueUpdate {
                added_label_ids: vec![other],
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // A person's delegation is never doubled: the issue arrives delegated.
    let agent = stack.linear.agent_user_id().to_string();
    let delegated = stack
        .linear
        .control()
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "Delegated crash".into(),
            description: Some("[sim outcome=COMPLETE duration=900s]".into()),
            label_ids: vec![bug.clone()],
            delegate_id: Some(agent),
            ..Default::default()
        })
        .unwrap();
    runs_reach(&stack, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sessions_on(&stack, &delegated.id),
        1,
        "the person's session only"
    );
    assert_eq!(sessions_on(&stack, &first), 1, "never twice");
    assert_eq!(stack.codegen.control().runs().len(), 3);
    let started = audit_rows(&stack, AuditKind::TriageStarted).await;
    assert_eq!(started.len(), 2, "{started:#?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_never_starts_beyond_the_budget_and_a_dry_run_starts_nothing() {
    // Room for two reserves of $2 in a $5 day.
    let rules = json!({"rules": [{"name": "bugs", "labels": ["Bug"]}]});
    let stack = spawn(triage_stack(rules, 2.0, 5.0)).await;
    let bug = bug_label(&stack);
    new_bug(&stack, &bug, "One");
    new_bug(&stack, &bug, "Two");
    runs_reach(&stack, 2).await;
    let third = new_bug(&stack, &bug, "Three");
    let skipped = wait_for_audit(&stack, AuditKind::TriageSkipped, 1).await;
    assert!(skipped[0].reason.contains("budget"), "{skipped:#?}");
    assert_eq!(sessions_on(&stack, &third), 0);
    stack.shutdown().await;

    // A guest's issue never starts triage: its author must pass the policy.
    let rules = json!({"rules": [{"name": "bugs", "labels": ["Bug"]}]});
    let stack = spawn(triage_stack(rules, 2.0, 100.0)).await;
    let bug = bug_label(&stack);
    let guest = stack
        .linear
        .control()
        .create_user(cyrus_sandbox::linear::NewUser {
            name: "Gus Guest".into(),
            guest: true,
            ..Default::default()
        })
        .id;
    let by_guest = stack
        .linear
        .control()
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "Guest's bug".into(),
            label_ids: vec![bug],
            creator_id: Some(guest),
            ..Default::default()
        })
        .unwrap()
        .id;
    let skipped = wait_for_audit(&stack, AuditKind::TriageSkipped, 1).await;
    assert!(skipped[0].reason.contains("access policy"), "{skipped:#?}");
    assert_eq!(sessions_on(&stack, &by_guest), 0);
    stack.shutdown().await;

    let rules = json!({"dryRun": true, "rules": [{"name": "bugs", "labels": ["Bug"]}]});
    let stack = spawn(triage_stack(rules, 2.0, 100.0)).await;
    let bug = bug_label(&stack);
    let issue = new_bug(&stack, &bug, "Dry");
    let skipped = wait_for_audit(&stack, AuditKind::TriageSkipped, 1).await;
    assert!(skipped[0].reason.starts_with("dry run"), "{skipped:#?}");
    assert_eq!(sessions_on(&stack, &issue), 0);
    assert!(stack.codegen.control().runs().is_empty());
    stack.shutdown().await;
}

async fn wait_for_audit(stack: &Stack, kind: AuditKind, n: usize) -> Vec<cyrus_store::AuditEntry> {
    eventually_async(T, &format!("{n} {kind} audit row(s)"), async || {
        let rows = audit_rows(stack, kind).await;
        if rows.len() >= n {
            Ok(rows)
        } else {
            Err(format!("{rows:#?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_pass_catches_an_issue_whose_webhook_was_missed() {
    let rules = json!({"rules": [{"name": "bugs", "labels": ["Bug"]}]});
    let stack = spawn(triage_stack(rules, 2.0, 100.0)).await;
    let bug = bug_label(&stack);
    // Linear's webhook never arrives (the sender points nowhere).
    stack.linear.control().set_webhook_url(None);
    let missed = new_bug(&stack, &bug, "Missed");
    let worker_url = stack.worker_url();
    let addr = worker_url.trim_start_matches("http://");
    stack
        .linear
        .control()
        .set_webhook_url(Some(format!("http://{addr}/webhooks/linear")));
    assert_eq!(sessions_on(&stack, &missed), 0);

    let ctx = stack.worker.context();
    let seen = cyrus_edge_worker::reconcile::triage_pass(ctx)
        .await
        .unwrap();
    assert!(seen >= 1, "looked at the recent issue");
    runs_reach(&stack, 1).await;
    assert_eq!(sessions_on(&stack, &missed), 1);
    // A second pass changes nothing.
    cyrus_edge_worker::reconcile::triage_pass(ctx)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sessions_on(&stack, &missed), 1);
    assert_eq!(stack.codegen.control().runs().len(), 1);
    stack.shutdown().await;
}
