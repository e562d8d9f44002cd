//! Model experiments through the real worker: sticky arms decide the model
//! and say so, an explicit model stays outside, and a completed issue is
//! recorded as the experiment's late outcome.

use crate::harness::*;
use cyrus_stack::StackOptions;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arms_pick_the_model_stickily_and_outcomes_are_recorded() {
    let patch = json!({"experiments": [{
        "name": "sonnet-vs-gpt",
        "arms": [{"name": "A", "model": "claude-3-5-sonnet"}, {"name": "B", "model": "gpt-5"}]
    }]});
    let stack = spawn(
        StackOptions {
            config_patch: Some(patch),
            ..Default::default()
        }
        .time_scale(30.0),
    )
    .await;
    let mut sessions = Vec::new();
    for i in 0..6 {
        let (issue, session) = stack
            .delegate_issue(
                &format!("Task {i}"),
                "Do it. [sim outcome=COMPLETE duration=20s logs=2]",
                &["Feature"],
            )
            .unwrap();
        sessions.push((issue, session));
    }
    let (tagged_issue, tagged) = stack
        .delegate_issue(
            "Pinned model",
            "Use this one. [model=claude-3-opus] [sim outcome=COMPLETE duration=20s]",
            &["Feature"],
        )
        .unwrap();
    for (_, s) in &sessions {
        final_activity(&stack, s, T).await;
    }
    final_activity(&stack, &tagged, T).await;

    let store = stack.store().await.unwrap();
    let rows = store.experiment_tasks("sonnet-vs-gpt").await.unwrap();
    assert_eq!(rows.len(), 6, "the explicit model is outside: {rows:#?}");
    assert!(rows.iter().all(|r| r.assignment.issue_id != tagged_issue));
    let runs = stack.codegen.control().runs();
    for (issue, session_id) in &sessions {
        let row = rows
            .iter()
            .find(|r| &r.assignment.issue_id == issue)
            .unwrap();
        let task = row.task.as_ref().unwrap();
        let run = runs
            .iter()
            .find(|r| Some(r.id) == task.codegen_run_id)
            .expect("the task's run");
        assert_eq!(run.model.as_deref(), Some(row.assignment.model.as_str()));
        let thoughts = bodies(&session(&stack, session_id), "thought");
        let line = format!("(experiment sonnet-vs-gpt, arm {})", row.assignment.arm);
        assert!(thoughts.iter().any(|t| t.contains(&line)), "{thoughts:?}");
    }
    let thoughts = bodies(&session(&stack, &tagged), "thought");
    assert!(
        thoughts
            .iter()
            .any(|t| t.contains("outside experiment sonnet-vs-gpt")),
        "{thoughts:?}"
    );

    // A person completes the first issue in Linear: a late outcome.
    let (first_issue, _) = &sessions[0];
    stack
        .linear
        .control()
        .set_state(first_issue, "Done")
        .unwrap();
    eventually_async(T, "the completion recorded", async || {
        let rows = store.experiment_tasks("sonnet-vs-gpt").await.unwrap();
        let row = rows
            .iter()
            .find(|r| &r.assignment.issue_id == first_issue)
            .unwrap();
        match row.completed_at {
            Some(_) => Ok(()),
            None => Err(format!("{row:#?}")),
        }
    })
    .await;
    let others = store.experiment_tasks("sonnet-vs-gpt").await.unwrap();
    assert_eq!(
        others.iter().filter(|r| r.completed_at.is_some()).count(),
        1
    );
    stack.shutdown().await;
}
