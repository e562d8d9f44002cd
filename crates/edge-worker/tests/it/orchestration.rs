//! Orchestration through the real worker: an epic delegated to the agent
//! runs its sub-issues as their own sessions, in dependency order and in
//! parallel, and reports on the parent.

use crate::harness::*;
use cyrus_sandbox::linear::NewIssue;
use cyrus_stack::{Stack, StackOptions};
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// An epic with sub-issues (title, description with the run's script) and
/// "`a` blocks `b`" relations by index; returns the parent issue, the
/// children's ids and identifiers. Nothing is delegated yet.
fn epic(stack: &Stack, children: &[(&str, &str)], blocks: &[(usize, usize)]) -> Epic {
    let control = stack.linear.control();
    let parent = control
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "Checkout revamp".into(),
            description: Some("The epic.".into()),
            ..Default::default()
        })
        .unwrap();
    let mut ids = Vec::new();
    let mut identifiers = Vec::new();
    for (title, description) in children {
        let child = control
            .create_issue(NewIssue {
                team_id: Some(stack.team_id.clone()),
                title: title.to_string(),
                description: Some(description.to_string()),
                parent_id: Some(parent.id.clone()),
                ..Default::default()
            })
            .unwrap();
        ids.push(child.id);
        identifiers.push(child.identifier);
    }
    for &(a, b) in blocks {
        control.create_relation(&ids[a], &ids[b], "blocks").unwrap();
    }
    Epic {
        parent: parent.id,
        ids,
        identifiers,
    }
}

struct Epic {
    parent: String,
    ids: Vec<String>,
    identifiers: Vec<String>,
}

/// The parent's plan as `(content, status)` pairs.
fn plan(stack: &Stack, session: &str) -> Vec<(String, String)> {
    let Some(plan) = session_opt(stack, session).and_then(|v| v.plan) else {
        return Vec::new();
    };
    plan.as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["content"].as_str().unwrap_or_default().to_string(),
                        s["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn session_opt(stack: &Stack, id: &str) -> Option<cyrus_sandbox::linear::SessionView> {
    stack.linear.control().session(id)
}

/// The sessions opened on an issue.
fn sessions_on(stack: &Stack, issue_id: &str) -> Vec<String> {
    let control = stack.linear.control();
    control
        .sessions()
        .into_iter()
        .filter(|s| {
            control
                .session(s)
                .is_some_and(|v| v.issue_id.as_deref() == Some(issue_id))
        })
        .collect()
}

/// The Codegen run whose prompt names `title`.
fn run_for(stack: &Stack, title: &str) -> Option<cyrus_sandbox::codegen::RunRecord> {
    stack
        .codegen
        .control()
        .runs()
        .into_iter()
        .find(|r| r.prompt.contains(title))
}

fn responses(stack: &Stack, id: &str) -> Vec<String> {
    bodies(&session(stack, id), "response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epic_runs_independent_children_in_parallel_and_dependents_after() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            (
                "Alpha part",
                "[sim outcome=COMPLETE prs=1 duration=60s logs=4]",
            ),
            (
                "Bravo part",
                "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            ),
            (
                "Charlie part",
                "[sim outcome=COMPLETE prs=1 duration=60s logs=4]",
            ),
        ],
        &[(0, 1)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();

    // While A and C run, B waits: the plan shows it.
    let mut seen = BTreeSet::new();
    let (_, body) = eventually(
        T,
        "the parent's summary",
        || {
            let p = plan(&stack, &parent);
            if !p.is_empty() {
                seen.insert(p.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>());
            }
            let view = session_opt(&stack, &parent)?;
            view.activities
                .iter()
                .find(|a| a.kind() == "response" || a.kind() == "error")
                .map(|a| {
                    (
                        a.kind().to_string(),
                        a.content["body"].as_str().unwrap_or_default().to_string(),
                    )
                })
        },
        || describe(&stack, &parent),
    )
    .await;
    assert!(
        seen.contains(&vec![
            "inProgress".to_string(),
            "pending".into(),
            "inProgress".into()
        ]),
        "A and C in progress while B waits: {seen:?}"
    );

    let a = run_for(&stack, "Alpha part").expect("A ran");
    let b = run_for(&stack, "Bravo part").expect("B ran");
    let c = run_for(&stack, "Charlie part").expect("C ran");
    // A and C side by side; B only after A's 60 simulated seconds.
    assert!(
        c.created_ms < a.created_ms + 60_000,
        "C started while A ran"
    );
    assert!(
        a.created_ms < c.created_ms + 60_000,
        "A started while C ran"
    );
    assert!(b.created_ms >= a.created_ms + 60_000, "B waited for A");
    // One run per child, none for the parent itself.
    assert_eq!(stack.codegen.control().runs().len(), 3);

    // One summary, with each child, its PR and cost, and the total.
    assert_eq!(
        responses(&stack, &parent).len(),
        1,
        "{}",
        describe(&stack, &parent)
    );
    for id in &e.identifiers {
        assert!(body.contains(id.as_str()), "{id} in the summary: {body}");
    }
    assert_eq!(body.matches("/pull/").count(), 3, "{body}");
    assert_eq!(body.matches("· estimated cost $").count(), 3, "{body}");
    assert!(body.contains("Total estimated cost"), "{body}");
    assert!(body.contains("Nothing was skipped"), "{body}");
    let final_plan = plan(&stack, &parent);
    assert!(
        final_plan.iter().all(|(_, s)| s == "completed"),
        "{final_plan:?}"
    );
    let view = session(&stack, &parent);
    let prs = view
        .external_urls
        .iter()
        .filter(|u| u.url.contains("/pull/"))
        .count();
    assert_eq!(
        prs, 3,
        "each child's PR on the parent: {:?}",
        view.external_urls
    );
    // Linear requests on the parent's session: six of its own
    // (acknowledgement, routing thought, issue read, state move, sub-issue
    // read, summary) and at most two per child for progress (plan and
    // links, coalesced).
    let stats = stack.linear.control().request_stats();
    let on_parent = stats.by_session.get(&parent).copied().unwrap_or(0);
    assert!(
        on_parent <= 6 + 2 * 3,
        "{on_parent} requests on the parent: {:?}",
        stats.by_operation
    );
    // Each child had exactly one session of its own, through the normal
    // lifecycle (its own final response).
    for id in &e.ids {
        let sessions = sessions_on(&stack, id);
        assert_eq!(sessions.len(), 1, "{id}: {sessions:?}");
        let (kind, _) = final_activity(&stack, &sessions[0], T).await;
        assert_eq!(kind, "response");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_child_asks_the_parent_and_skip_starts_its_dependents() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            ("Alpha part", "[sim outcome=FAILED duration=20s]"),
            ("Bravo part", "[sim outcome=COMPLETE prs=1 duration=20s]"),
        ],
        &[(0, 1)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    let question = eventually(
        T,
        "the parent's question",
        || {
            bodies(&session(&stack, &parent), "elicitation")
                .into_iter()
                .next()
        },
        || describe(&stack, &parent),
    )
    .await;
    assert!(question.contains(&e.identifiers[0]), "{question}");
    assert!(question.contains("failed"), "{question}");
    assert!(
        question.contains(&e.identifiers[1]),
        "names what waits: {question}"
    );
    let view = session(&stack, &parent);
    let ask = view
        .activities
        .iter()
        .find(|a| a.kind() == "elicitation")
        .unwrap();
    assert_eq!(ask.signal.as_deref(), Some("select"), "{ask:?}");
    // B has not started.
    assert!(run_for(&stack, "Bravo part").is_none());

    stack
        .linear
        .control()
        .prompt(&parent, &format!("Skip {}", e.identifiers[0]), false)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(
        run_for(&stack, "Bravo part").is_some(),
        "B ran after the skip"
    );
    assert!(body.contains("skipped"), "{body}");
    assert!(body.contains(&e.identifiers[0]), "{body}");
    assert_eq!(responses(&stack, &parent).len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_cycle_is_refused_by_name() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            ("Alpha part", "[sim outcome=COMPLETE duration=20s]"),
            ("Bravo part", "[sim outcome=COMPLETE duration=20s]"),
            ("Charlie part", "[sim outcome=COMPLETE duration=20s]"),
        ],
        &[(0, 1), (1, 2), (2, 1)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "error", "{}", describe(&stack, &parent));
    assert!(body.contains("cycle"), "{body}");
    let b = &e.identifiers[1];
    let c = &e.identifiers[2];
    assert!(
        body.contains(&format!("{b} → {c} → {b}")) || body.contains(&format!("{c} → {b} → {c}")),
        "names the cycle: {body}"
    );
    assert!(
        !body.contains(&format!("{} →", e.identifiers[0])),
        "A is not in the cycle: {body}"
    );
    assert!(stack.codegen.control().runs().is_empty());
    for id in &e.ids {
        assert!(sessions_on(&stack, id).is_empty(), "nothing delegated");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_orchestration_resumes_without_duplicates() {
    let mut stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            ("Alpha part", "[sim outcome=COMPLETE prs=1 duration=60s]"),
            ("Bravo part", "[sim outcome=COMPLETE prs=1 duration=20s]"),
            ("Charlie part", "[sim outcome=COMPLETE prs=1 duration=20s]"),
        ],
        &[(0, 1), (1, 2)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    eventually(
        T,
        "A's run",
        || run_for(&stack, "Alpha part"),
        || describe(&stack, &parent),
    )
    .await;
    stack.restart_worker().await.unwrap();
    eventually(
        T,
        "B's run",
        || run_for(&stack, "Bravo part"),
        || describe(&stack, &parent),
    )
    .await;
    stack.restart_worker().await.unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("Nothing was skipped"), "{body}");
    assert_eq!(stack.codegen.control().runs().len(), 3, "one run per child");
    for id in &e.ids {
        assert_eq!(sessions_on(&stack, id).len(), 1, "one delegation of {id}");
    }
    // Give a duplicate a moment to show up, then count again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(responses(&stack, &parent).len(), 1);
    assert_eq!(stack.codegen.control().runs().len(), 3);
    stack.shutdown().await;
}

/// A stack whose epic's first child failed and the parent asks about it.
async fn failed_first_child() -> (Stack, Epic, String) {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            ("Alpha part", "[sim outcome=FAILED duration=20s]"),
            ("Bravo part", "[sim outcome=COMPLETE prs=1 duration=20s]"),
            (
                "Charlie part",
                "[sim outcome=COMPLETE prs=1 duration=60s never_finish]",
            ),
        ],
        &[(0, 1)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    eventually(
        T,
        "the parent's question",
        || {
            bodies(&session(&stack, &parent), "elicitation")
                .into_iter()
                .next()
        },
        || describe(&stack, &parent),
    )
    .await;
    (stack, e, parent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_the_failed_child_again_in_a_new_session() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let e = epic(
        &stack,
        &[
            ("Alpha part", "[sim outcome=FAILED duration=20s]"),
            ("Bravo part", "[sim outcome=COMPLETE prs=1 duration=20s]"),
        ],
        &[(0, 1)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    eventually(
        T,
        "the parent's question",
        || {
            bodies(&session(&stack, &parent), "elicitation")
                .into_iter()
                .next()
        },
        || describe(&stack, &parent),
    )
    .await;
    // The retried run succeeds.
    stack
        .codegen
        .control()
        .script_next_run(cyrus_sandbox::codegen::RunScript {
            outcome: Some("COMPLETE".into()),
            prs: Some(1),
            duration: Some(Duration::from_secs(20)),
            ..Default::default()
        });
    // The `select` option's text, as Linear sends it back.
    stack
        .linear
        .control()
        .prompt(&parent, &format!("Retry {}", e.identifiers[0]), false)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("Nothing was skipped"), "{body}");
    assert_eq!(
        sessions_on(&stack, &e.ids[0]).len(),
        2,
        "the retry has its own session"
    );
    assert_eq!(sessions_on(&stack, &e.ids[1]).len(), 1);
    assert_eq!(stack.codegen.control().runs().len(), 3, "A twice, B once");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_stop_ends_the_orchestration_and_stops_running_children() {
    let (stack, e, parent) = failed_first_child().await;
    // C never finishes on its own; B waits for A.
    stack
        .linear
        .control()
        .prompt(&parent, "Stop the orchestration", false)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("was stopped"), "{body}");
    assert!(run_for(&stack, "Bravo part").is_none(), "B never started");
    let c_session = &sessions_on(&stack, &e.ids[2])[0];
    let (_, c_body) = final_activity(&stack, c_session, T).await;
    assert!(c_body.contains("stopped"), "C was stopped: {c_body}");
    eventually(
        T,
        "C's run stopped at Codegen",
        || (run_for(&stack, "Charlie part")?.status == "CANCELLED").then_some(()),
        || format!("{:?}", run_for(&stack, "Charlie part")),
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_the_parent_stops_every_running_child() {
    let (stack, e, parent) = failed_first_child().await;
    stack
        .linear
        .control()
        .prompt(&parent, "Stop", true)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("stopped"), "{body}");
    let c_session = &sessions_on(&stack, &e.ids[2])[0];
    eventually(
        T,
        "C stopped",
        || {
            bodies(&session(&stack, c_session), "response")
                .iter()
                .any(|b| b.contains("stopped"))
                .then_some(())
        },
        || describe(&stack, c_session),
    )
    .await;
    assert!(run_for(&stack, "Bravo part").is_none(), "B never started");
    eventually(
        T,
        "C's run stopped at Codegen",
        || (run_for(&stack, "Charlie part")?.status == "CANCELLED").then_some(()),
        || format!("{:?}", run_for(&stack, "Charlie part")),
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_orders_by_priority_skips_done_children_and_adopts_delegated_ones() {
    let stack = spawn(
        StackOptions::default()
            .time_scale(20.0)
            .patch(serde_json::json!({"orchestration": {"maxParallelChildren": 1}})),
    )
    .await;
    let control = stack.linear.control();
    let e = epic(
        &stack,
        &[
            ("Alpha low", "[sim outcome=COMPLETE prs=1 duration=20s]"),
            ("Bravo urgent", "[sim outcome=COMPLETE prs=1 duration=20s]"),
            ("Charlie done", "[sim outcome=COMPLETE prs=1 duration=20s]"),
            (
                "Delta delegated",
                "[sim outcome=COMPLETE prs=1 duration=20s]",
            ),
        ],
        &[],
    );
    let client = linear_client(&stack);
    for (i, priority) in [(0, 4), (1, 1)] {
        client
            .execute(
                cyrus_linear::operations::ISSUE_UPDATE,
                serde_json::json!({"id": e.ids[i], "input": {"priority": priority}}),
            )
            .await
            .unwrap();
    }
    control.set_state(&e.ids[2], "Done").unwrap();
    // Delta was delegated by a person before the epic: its run goes ahead.
    let delta = control.delegate(&e.ids[3], None).unwrap();
    final_activity(&stack, &delta, T).await;
    let parent = control.delegate(&e.parent, None).unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    let a = run_for(&stack, "Alpha low").unwrap();
    let b = run_for(&stack, "Bravo urgent").unwrap();
    assert!(
        b.created_ms + 20_000 <= a.created_ms,
        "urgent first, one at a time"
    );
    assert!(
        run_for(&stack, "Charlie done").is_none(),
        "done in Linear: skipped"
    );
    assert!(body.contains("already done"), "{body}");
    assert_eq!(sessions_on(&stack, &e.ids[3]).len(), 1, "Delta adopted");
    assert_eq!(stack.codegen.control().runs().len(), 3);
    stack.shutdown().await;
}

const PLAN: &str = r#"I'd split this in three.

```json
{"subIssues": [
  {"key": "schema", "title": "Orders table", "description": "Add the table.", "acceptanceCriteria": ["migrates"]},
  {"key": "api", "title": "Orders API", "description": "Expose it.", "dependsOn": ["schema"], "labels": ["Feature"]},
  {"key": "docs", "title": "Orders docs", "description": "Document it."}
]}
```
"#;

fn plan_run(result: &str) -> cyrus_sandbox::codegen::RunScript {
    cyrus_sandbox::codegen::RunScript {
        outcome: Some("COMPLETE".into()),
        duration: Some(Duration::from_secs(20)),
        result: Some(result.to_string()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planning_run_plan_is_approved_created_once_and_orchestrated() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    // The planning run's first answer names an unknown dependency; told
    // so, it answers with a valid plan.
    let broken = PLAN.replace(r#""dependsOn": ["schema"]"#, r#""dependsOn": ["db"]"#);
    stack.codegen.control().script_next_run(plan_run(&broken));
    let (parent_issue, parent) = stack
        .delegate_issue("Orders", "Build orders end to end.", &[])
        .unwrap();
    let run = eventually(
        T,
        "the planning run",
        || stack.codegen.control().runs().first().cloned(),
        || describe(&stack, &parent),
    )
    .await;
    stack.codegen.control().script_run(run.id, plan_run(PLAN));
    let ask = eventually(
        T,
        "the approval question",
        || {
            bodies(&session(&stack, &parent), "elicitation")
                .into_iter()
                .find(|b| b.contains("Shall I create"))
        },
        || describe(&stack, &parent),
    )
    .await;
    assert!(ask.contains("`api` Orders API (after schema)"), "{ask}");
    let followups = stack.codegen.control().run(run.id).unwrap().follow_ups;
    assert!(
        followups.iter().any(|f| f.contains("\"db\"")),
        "the problem went back to the run: {followups:?}"
    );
    let shown = plan(&stack, &parent);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(shown.iter().all(|(_, s)| s == "pending"), "{shown:?}");
    // Nothing is created before the approval.
    let client = linear_client(&stack);
    let children = || async {
        client
            .issue_children(&parent_issue)
            .await
            .unwrap()
            .children
            .nodes
    };
    assert!(children().await.is_empty());
    // As if an earlier attempt created the first sub-issue and crashed
    // before storing its id: it is found by its marker, not made again.
    let earlier = stack
        .linear
        .control()
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "Orders table".into(),
            description: Some(
                "Add the table.\n\nPart of ENG-1, planned by Cyrus (plan item `schema`).".into(),
            ),
            parent_id: Some(parent_issue.clone()),
            ..Default::default()
        })
        .unwrap();

    stack
        .linear
        .control()
        .prompt(&parent, "Create the 3 sub-issues", false)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, Duration::from_secs(90)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("All 3 sub-issues"), "{body}");
    let made = children().await;
    assert_eq!(made.len(), 3, "each planned sub-issue once: {made:#?}");
    let api = made.iter().find(|i| i.title == "Orders API").unwrap();
    let schema = made.iter().find(|i| i.title == "Orders table").unwrap();
    assert_eq!(schema.id, earlier.id, "the earlier copy was adopted");
    assert!(
        api.description
            .as_deref()
            .unwrap_or_default()
            .contains("Part of"),
        "{api:?}"
    );
    let a = run_for(&stack, "Orders table").unwrap();
    let b = run_for(&stack, "Orders API").unwrap();
    assert!(b.created_ms > a.created_ms, "the API waited for the schema");
    // The relation exists once in Linear.
    let blockers: Vec<_> = api.blockers().iter().map(|b| b.id.clone()).collect();
    assert_eq!(blockers, vec![schema.id.clone()]);
    // One planning run plus one run per sub-issue.
    assert_eq!(stack.codegen.control().runs().len(), 4);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestration_spend_limit_asks_before_starting_more() {
    // Each child holds $0.08 while it runs and spends about $0.05; the
    // orchestration may commit $0.12: one child at a time, and after the
    // first the spend leaves no room for another hold.
    let stack = spawn(StackOptions {
        max_cost_per_task: 0.08,
        ..StackOptions::default()
            .time_scale(20.0)
            .patch(serde_json::json!({"orchestration": {"maxCost": 0.12}}))
    })
    .await;
    let e = epic(
        &stack,
        &[
            (
                "Alpha part",
                "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            ),
            (
                "Bravo part",
                "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            ),
            (
                "Charlie part",
                "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            ),
        ],
        &[],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    let ask = eventually(
        T,
        "the spend question",
        || {
            bodies(&session(&stack, &parent), "elicitation")
                .into_iter()
                .find(|b| b.contains("orchestration.maxCost"))
        },
        || describe(&stack, &parent),
    )
    .await;
    assert!(ask.contains("$0.1200"), "{ask}");
    assert_eq!(stack.codegen.control().runs().len(), 1, "one child ran");
    stack
        .linear
        .control()
        .prompt(&parent, "Continue the orchestration", false)
        .unwrap();
    let (kind, body) = final_activity(&stack, &parent, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &parent));
    assert!(body.contains("All 3 sub-issues"), "{body}");
    assert_eq!(stack.codegen.control().runs().len(), 3);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_random_moments_duplicate_no_delegation_run_or_summary() {
    let mut stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let script = "[sim outcome=COMPLETE prs=1 duration=20s logs=2]";
    let e = epic(
        &stack,
        &[
            ("Part A", script),
            ("Part B", script),
            ("Part C", script),
            ("Part D", script),
            ("Part E", script),
            ("Part F", script),
        ],
        // A before B and C; B and C before D; E and F free.
        &[(0, 1), (0, 2), (1, 3), (2, 3)],
    );
    let parent = stack.linear.control().delegate(&e.parent, None).unwrap();
    // A fixed pseudo-random sequence of moments, so a failure reproduces
    // (`CYRUS_CRASH_SEED` picks another).
    let mut seed: u64 = std::env::var("CYRUS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0f0c);
    let mut crashes = 0;
    while crashes < 8 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = 100 + (seed >> 33) % 900;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if !responses(&stack, &parent).is_empty() {
            break;
        }
        // Killed without a shutdown wherever its loops and steps are; a
        // fresh worker takes over once the dead one's claims have expired.
        let dead = stack.replace_worker().await.unwrap();
        let owners = dead.context().lease_owners();
        drop(dead);
        let store = stack.worker.context().store.clone();
        for owner in &owners {
            store.release_lease(owner).await.unwrap();
        }
        crashes += 1;
    }
    let (kind, body) = final_activity(&stack, &parent, Duration::from_secs(120)).await;
    assert_eq!(
        kind,
        "response",
        "after {crashes} crashes: {}",
        describe(&stack, &parent)
    );
    assert!(body.contains("All 6 sub-issues"), "{body}");
    assert!(body.contains("Nothing was skipped"), "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (id, name) in e.ids.iter().zip(&e.identifiers) {
        assert_eq!(sessions_on(&stack, id).len(), 1, "{name} delegated once");
    }
    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 6, "one Codegen run per sub-issue: {runs:#?}");
    assert_eq!(responses(&stack, &parent).len(), 1, "one summary");
    let d = run_for(&stack, "Part D").unwrap();
    for blocker in ["Part B", "Part C"] {
        let b = run_for(&stack, blocker).unwrap();
        assert!(d.created_ms >= b.created_ms + 20_000, "D after {blocker}");
    }
    assert!(
        crashes >= 3,
        "the orchestration outlived only {crashes} crashes"
    );
    stack.shutdown().await;
}
