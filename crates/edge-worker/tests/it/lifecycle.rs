//! The task lifecycle through real HTTP: delegate in Linear → Codegen run →
//! answer in Linear.

use crate::harness::*;
use cyrus_stack::StackOptions;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_issue_gets_ack_progress_pr_and_final_response() {
    let stack = spawn(StackOptions::default().time_scale(20.0)).await;
    let (_issue, session_id) = stack
        .delegate_issue(
            "Add a health endpoint",
            "Please add /health. [sim outcome=COMPLETE prs=1 duration=40s logs=8]",
            &["Feature"],
        )
        .unwrap();

    // The acknowledgement is the first activity, and fast.
    let first = eventually(
        T,
        "an acknowledgement",
        || session(&stack, &session_id).activities.first().cloned(),
        || describe(&stack, &session_id),
    )
    .await;
    assert_eq!(first.kind(), "thought", "{}", describe(&stack, &session_id));

    let (kind, body) = final_activity(&stack, &session_id, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
    assert!(
        body.contains("https://github.com/acme/web/pull/"),
        "PR link in the answer: {body}"
    );
    assert!(
        body.contains("estimated cost"),
        "cost in the answer: {body}"
    );

    let view = session(&stack, &session_id);
    let urls: Vec<_> = view.external_urls.iter().map(|u| u.url.clone()).collect();
    assert!(
        urls.iter().any(|u| u.contains("/pull/")),
        "PR in externalUrls: {urls:?}"
    );
    assert!(
        urls.iter().any(|u| u.contains("codegen.com/agent/trace")),
        "trace in externalUrls: {urls:?}"
    );

    // Exactly one Codegen run, for the web repository, with the routing's model.
    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_run_posts_an_error_saying_what_to_do() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (_issue, s) = stack
        .delegate_issue(
            "Fix login",
            "Flaky. [sim outcome=OUT_OF_TOKENS duration=30s]",
            &["Bug"],
        )
        .unwrap();
    let (kind, body) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "error", "{}", describe(&stack, &s));
    assert!(body.contains("ran out of tokens"), "{body}");
    assert!(
        body.contains("Reply here"),
        "says what the user can do: {body}"
    );
    // Routed as a debugger task by the Bug label.
    let thoughts = bodies(&session(&stack, &s), "thought");
    assert!(
        thoughts.iter().any(|t| t.contains("debugger")),
        "{thoughts:?}"
    );
    stack.shutdown().await;
}

/// A stack with one delegated issue whose run paused to ask the user; its
/// session has the elicitation.
async fn paused_session() -> (cyrus_stack::Stack, String) {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (_issue, s) = stack
        .delegate_issue(
            "Pick a colour",
            "Ask first. [sim outcome=PAUSED duration=30s]",
            &[],
        )
        .unwrap();
    eventually(
        T,
        "an elicitation",
        || {
            session(&stack, &s)
                .activities
                .iter()
                .any(|a| a.kind() == "elicitation")
                .then_some(())
        },
        || describe(&stack, &s),
    )
    .await;
    (stack, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_run_asks_the_user_and_resumes_with_the_answer() {
    let (stack, s) = paused_session().await;
    // Script what the resumed run does, then answer.
    let run_id = stack.codegen.control().runs()[0].id;
    stack.codegen.control().script_run(
        run_id,
        cyrus_sandbox::codegen::RunScript {
            outcome: Some("COMPLETE".into()),
            ..Default::default()
        },
    );
    stack
        .linear
        .control()
        .prompt(&s, "Blue, please.", false)
        .unwrap();
    let (kind, _) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 1, "resumed, not re-created: {runs:#?}");
    assert!(
        runs[0]
            .follow_ups
            .iter()
            .any(|f| f.contains("Blue, please.")),
        "{runs:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_whose_answer_is_lost_is_not_sent_twice() {
    let (stack, s) = paused_session().await;
    let run_id = stack.codegen.control().runs()[0].id;
    // The resumed run takes a while (600 simulated s = 20 s here), so it is
    // still going when the worker looks again after the lost answer.
    stack.codegen.control().script_run(
        run_id,
        cyrus_sandbox::codegen::RunScript {
            outcome: Some("COMPLETE".into()),
            duration: Some(Duration::from_secs(600)),
            ..Default::default()
        },
    );
    stack.codegen.control().lose_next_answer(
        1,
        Some(cyrus_sandbox::codegen::Endpoint::ResumeRun),
        cyrus_sandbox::codegen::AnswerLoss::BadGateway,
    );
    stack
        .linear
        .control()
        .prompt(&s, "Blue, please.", false)
        .unwrap();
    let (kind, _) = final_activity(&stack, &s, Duration::from_secs(60)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert_eq!(stack.codegen.control().stats().answers_lost, 1);
    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let sent = runs[0]
        .follow_ups
        .iter()
        .filter(|f| f.contains("Blue, please."))
        .count();
    assert_eq!(sent, 1, "the follow-up reached the run once: {runs:#?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelegating_stops_the_run() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, s) = stack
        .delegate_issue("Long job", "[sim never_finish]", &[])
        .unwrap();
    first_run_started(&stack, &s).await;
    stack.linear.control().undelegate(&issue).unwrap();
    let (kind, body) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert!(body.contains("unassigned"), "{body}");
    eventually(
        T,
        "the Codegen run to be cancelled",
        || (stack.codegen.control().runs()[0].status == "CANCELLED").then_some(()),
        || format!("{:#?}", stack.codegen.control().runs()),
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_moved_to_done_stops_the_run() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, s) = stack
        .delegate_issue("Long job", "[sim never_finish]", &[])
        .unwrap();
    first_run_started(&stack, &s).await;
    stack.linear.control().set_state(&issue, "Done").unwrap();
    let (kind, body) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert!(body.contains("stopped"), "{body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_issue_asks_which_repository_and_uses_the_answer() {
    let patch = serde_json::json!({"repositories": [
        {"id": "web", "name": "web", "linearWorkspaceId": "ORG", "codegenRepoId": 7, "routingLabels": ["frontend"]},
        {"id": "api", "name": "api", "linearWorkspaceId": "ORG", "codegenRepoId": 8, "routingLabels": ["backend"]}
    ]});
    let stack = spawn_with_repos(patch).await;
    let (_issue, s) = stack
        .delegate_issue("Something", "No hints here. [sim duration=20s]", &[])
        .unwrap();
    let ask = eventually(
        T,
        "a select elicitation",
        || {
            session(&stack, &s)
                .activities
                .iter()
                .find(|a| a.kind() == "elicitation")
                .cloned()
        },
        || describe(&stack, &s),
    )
    .await;
    assert_eq!(ask.signal.as_deref(), Some("select"), "{ask:#?}");
    stack
        .linear
        .control()
        .prompt(&s, "nonsense", false)
        .unwrap();
    eventually(
        T,
        "a second question",
        || {
            (session(&stack, &s)
                .activities
                .iter()
                .filter(|a| a.kind() == "elicitation")
                .count()
                == 2)
                .then_some(())
        },
        || describe(&stack, &s),
    )
    .await;
    stack.linear.control().prompt(&s, "api", false).unwrap();
    let (kind, _) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].repo_id, Some(8), "ran in the chosen repository");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_over_the_per_task_cost_cap_is_stopped_and_reported() {
    let stack = spawn(StackOptions {
        max_cost_per_task: 0.06,
        ..StackOptions::default().time_scale(30.0)
    })
    .await;
    let (_issue, s) = stack
        .delegate_issue("Big job", "[sim never_finish logs=400]", &[])
        .unwrap();
    let (kind, body) = final_activity(&stack, &s, Duration::from_secs(60)).await;
    assert_eq!(kind, "error", "{}", describe(&stack, &s));
    assert!(body.contains("maxCostPerTask"), "{body}");
    eventually(
        T,
        "the run to be stopped",
        || (stack.codegen.control().runs()[0].status == "CANCELLED").then_some(()),
        || format!("{:#?}", stack.codegen.control().runs()),
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codegen_plan_limit_fails_the_task_with_the_reason() {
    let stack = spawn(StackOptions::default()).await;
    stack.codegen.control().set_run_allowance(Some(0));
    let (_issue, s) = stack.delegate_issue("Anything", "", &[]).unwrap();
    let (kind, body) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "error", "{}", describe(&stack, &s));
    assert!(body.contains("402") && body.contains("plan"), "{body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_finishes_the_run_without_creating_another() {
    let mut stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (_issue, s) = stack
        .delegate_issue("Survive a restart", "[sim duration=120s prs=1]", &[])
        .unwrap();
    first_run_started(&stack, &s).await;
    stack.restart_worker().await.unwrap();
    let (kind, _) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert_eq!(stack.codegen.control().runs().len(), 1, "no second run");
    let finals = session(&stack, &s)
        .activities
        .iter()
        .filter(|a| a.kind() == "response")
        .count();
    assert_eq!(finals, 1, "one final response: {}", describe(&stack, &s));
    assert_eq!(
        kinds(&session(&stack, &s)).first().map(String::as_str),
        Some("thought")
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_stops_a_run_whose_unassignment_webhook_was_lost() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, s) = stack
        .delegate_issue("Long job", "[sim never_finish]", &[])
        .unwrap();
    first_run_started(&stack, &s).await;
    // Linear's webhooks stop arriving (nothing listens there).
    stack
        .linear
        .control()
        .set_webhook_url(Some("http://127.0.0.1:9/webhooks/linear".into()));
    stack.linear.control().undelegate(&issue).unwrap();
    let stopped = cyrus_edge_worker::reconcile::pass(stack.worker.context())
        .await
        .unwrap();
    assert_eq!(stopped, 1);
    let (kind, body) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert!(body.contains("no longer delegated"), "{body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_queued_while_linear_fails_survive_a_restart() {
    use cyrus_sandbox::linear::{Fault, FaultKind};
    let mut stack = spawn(StackOptions::default().time_scale(30.0)).await;
    // Linear rejects every activity write for now.
    stack.linear.control().inject_fault(
        Fault::new(FaultKind::ServerError { status: 503 })
            .times(1_000)
            .on("AgentActivityCreate"),
    );
    let (_issue, s) = stack
        .delegate_issue("Outbox", "[sim duration=20s]", &[])
        .unwrap();
    let store = stack.worker.context().store.clone();
    let start = std::time::Instant::now();
    while store.activity_counts(&s).await.unwrap().pending == 0 {
        assert!(start.elapsed() < T, "the acknowledgement was never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        session(&stack, &s).activities.is_empty(),
        "nothing reached Linear yet"
    );
    stack.restart_worker().await.unwrap();
    stack.linear.control().clear_faults();
    let (kind, _) = final_activity(&stack, &s, Duration::from_secs(60)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    let view = session(&stack, &s);
    assert!(
        bodies(&view, "thought")
            .iter()
            .any(|b| b.starts_with("On it")),
        "the queued ack was delivered: {}",
        describe(&stack, &s)
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_during_a_live_run_becomes_a_follow_up_not_a_second_run() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, first) = stack
        .delegate_issue("One run per issue", "[sim duration=60s]", &[])
        .unwrap();
    first_run_started(&stack, &first).await;
    let second = stack
        .linear
        .control()
        .mention(&issue, "@cyrus please also update the changelog", None)
        .unwrap();
    assert_ne!(first, second);
    let (kind, body) = final_activity(&stack, &second, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &second));
    assert!(body.contains("already working"), "{body}");
    // The first session finishes, then resumes its run with the message.
    eventually(
        T,
        "the follow-up to reach the run",
        || {
            stack.codegen.control().runs()[0]
                .follow_ups
                .iter()
                .any(|f| f.contains("changelog"))
                .then_some(())
        },
        || describe(&stack, &first),
    )
    .await;
    assert_eq!(stack.codegen.control().runs().len(), 1, "no second run");
    stack.shutdown().await;
}

/// A delegation and a mention of one issue arriving together: new
/// sessions are stored in shared batches, so without the issue held from
/// the "live task?" read to the task's write both would start a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_on_one_issue_at_once_start_one_run() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, first) = stack
        .delegate_issue("Two at once", "[sim duration=60s]", &[])
        .unwrap();
    let second = stack
        .linear
        .control()
        .mention(&issue, "@cyrus please also update the changelog", None)
        .unwrap();
    let (_, a) = final_activity(&stack, &first, T).await;
    let (_, b) = final_activity(&stack, &second, T).await;
    let merged = [&a, &b]
        .iter()
        .filter(|body| body.contains("already working"))
        .count();
    assert_eq!(
        merged,
        1,
        "one session joins the other's run:\n{}\n{}",
        describe(&stack, &first),
        describe(&stack, &second)
    );
    assert_eq!(stack.codegen.control().runs().len(), 1, "no second run");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_issue_waits_and_starts_when_its_blocker_is_done() {
    use cyrus_sandbox::linear::NewIssue;
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let control = stack.linear.control();
    let new = |title: &str| NewIssue {
        team_id: Some(stack.team_id.clone()),
        title: title.into(),
        description: Some("[sim duration=20s]".into()),
        ..Default::default()
    };
    let blocker = control.create_issue(new("Migrate the schema")).unwrap();
    let blocked = control.create_issue(new("Use the new schema")).unwrap();
    let linear = linear_client(&stack);
    linear
        .create_issue_relation(
            &blocker.id,
            &blocked.id,
            cyrus_linear::client::RelationType::Blocks,
        )
        .await
        .unwrap();
    let s = control.delegate(&blocked.id, None).unwrap();
    eventually(
        T,
        "the blocked notice",
        || {
            bodies(&session(&stack, &s), "thought")
                .iter()
                .any(|b| b.starts_with("Blocked by"))
                .then_some(())
        },
        || describe(&stack, &s),
    )
    .await;
    assert!(
        stack.codegen.control().runs().is_empty(),
        "no run while blocked"
    );
    control.set_state(&blocker.id, "Done").unwrap();
    let (kind, _) = final_activity(&stack, &s, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &s));
    assert_eq!(stack.codegen.control().runs().len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_edit_during_a_run_reaches_the_run_as_a_follow_up() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (issue, s) = stack
        .delegate_issue("Old title", "[sim duration=60s]", &[])
        .unwrap();
    first_run_started(&stack, &s).await;
    let linear = linear_client(&stack);
    linear
        .execute(
            cyrus_linear::operations::ISSUE_UPDATE,
            serde_json::json!({"id": issue, "input": {"title": "New title"}}),
        )
        .await
        .unwrap();
    eventually(
        T,
        "the edit to reach the run",
        || {
            stack.codegen.control().runs()[0]
                .follow_ups
                .iter()
                .any(|f| f.contains("New title"))
                .then_some(())
        },
        || describe(&stack, &s),
    )
    .await;
    assert_eq!(
        stack.codegen.control().runs().len(),
        1,
        "resumed, not a second run"
    );
    stack.shutdown().await;
}
