//! Alert lifecycle: raised once per condition, cleared when it ends, and
//! both POSTed to `alerts.webhookUrl` (received here by a local server).

use crate::harness::{describe, eventually, final_activity, spawn};
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use cyrus_edge_worker::alert_watch::{self, FAILURE_RATE_KEY, FAILURE_WINDOW_MS};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<String>>>;

/// A Slack-compatible receiver on a free port; returns its URL and what it got.
async fn receiver() -> (String, Received) {
    let got: Received = Default::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Received>, Json(body): Json<Value>| async move {
                    let text = body["text"]
                        .as_str()
                        .unwrap_or("<no text field>")
                        .to_string();
                    got.lock().unwrap().push(text);
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

fn about(got: &Received, needle: &str) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|t| t.contains(needle))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_failure_rate_is_raised_once_then_resolved_and_posted() {
    let (hook, got) = receiver().await;
    let stack = spawn(cyrus_stack::StackOptions {
        config_patch: Some(json!({"alerts": {"webhookUrl": hook}})),
        ..cyrus_stack::StackOptions::default().time_scale(60.0)
    })
    .await;
    let ctx = stack.worker.context().clone();
    let mut sessions = Vec::new();
    for i in 0..5 {
        let (_, s) = stack
            .delegate_issue(
                &format!("Flaky {i}"),
                "[sim outcome=FAILED duration=30s logs=1]",
                &[],
            )
            .unwrap();
        sessions.push(s);
    }
    for s in &sessions {
        let (kind, _) = final_activity(&stack, s, Duration::from_secs(90)).await;
        assert_eq!(kind, "error", "{}", describe(&stack, s));
    }
    // Tasks end in the store just after their final activity is queued.
    let mut now = ctx.now_ms();
    let mut first = alert_watch::Evaluation::default();
    for _ in 0..100 {
        now = ctx.now_ms();
        first = alert_watch::evaluate(&ctx, now).await;
        if first.raised.iter().any(|k| k == FAILURE_RATE_KEY)
            || ctx
                .store
                .active_alerts()
                .await
                .unwrap()
                .iter()
                .any(|a| a.key == FAILURE_RATE_KEY)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let active = ctx.store.active_alerts().await.unwrap();
    let alert = active
        .iter()
        .find(|a| a.key == FAILURE_RATE_KEY)
        .unwrap_or_else(|| {
            panic!("no failure-rate alert; active: {active:?}; evaluation: {first:?}")
        });
    assert!(alert.message.contains("5 of 5"), "{alert:?}");
    assert_eq!(
        about(&got, "failure rate is high").len(),
        1,
        "{:?}",
        got.lock().unwrap()
    );

    // Evaluating again (the worker's own loop may also run) notifies nothing new.
    let again = alert_watch::evaluate(&ctx, now).await;
    assert!(
        !again.raised.contains(&FAILURE_RATE_KEY.to_string()),
        "{again:?}"
    );
    assert_eq!(
        about(&got, "failure rate is high").len(),
        1,
        "{:?}",
        got.lock().unwrap()
    );

    // Two hours later the failures are out of the window: cleared, resolved.
    let later = alert_watch::evaluate(&ctx, now + 2 * FAILURE_WINDOW_MS).await;
    assert_eq!(
        later.cleared,
        vec![FAILURE_RATE_KEY.to_string()],
        "{later:?}"
    );
    assert!(
        !ctx.store
            .active_alerts()
            .await
            .unwrap()
            .iter()
            .any(|a| a.key == FAILURE_RATE_KEY)
    );
    let resolved = about(&got, "resolved: Task failure rate is back to normal");
    assert_eq!(resolved.len(), 1, "{:?}", got.lock().unwrap());
    assert!(
        resolved[0].starts_with(":white_check_mark:"),
        "{resolved:?}"
    );

    // The dashboard shows active alerts (none for this one any more).
    let status: Value = reqwest::get(format!("{}/api/status", stack.worker_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !status["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == FAILURE_RATE_KEY),
        "{status:#}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_and_402_alerts_clear_when_their_condition_ends() {
    let (hook, got) = receiver().await;
    let stack = spawn(cyrus_stack::StackOptions {
        config_patch: Some(json!({"alerts": {"webhookUrl": hook}})),
        ..cyrus_stack::StackOptions::default().time_scale(60.0)
    })
    .await;
    let ctx = stack.worker.context().clone();
    let raised_at = ctx.now_ms() - 60_000;
    // A 402 raised a minute ago, before any run started: it stays raised.
    assert!(
        ctx.store
            .raise_alert(
                "codegen_402",
                "Codegen's plan allowance is used up",
                raised_at
            )
            .await
            .unwrap()
    );
    alert_watch::evaluate(&ctx, ctx.now_ms()).await;
    let page = reqwest::get(stack.worker_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Alerts (1)") && page.contains("plan allowance"),
        "{page}"
    );

    // A dead-letter alert for a task that no longer exists (e.g. purged)
    // ends at the next evaluation (ours, or the worker's own loop).
    assert!(
        ctx.store
            .raise_alert(
                "dead_letter:gone",
                "Task for ENG-9 was dead-lettered",
                raised_at
            )
            .await
            .unwrap()
    );
    alert_watch::evaluate(&ctx, ctx.now_ms()).await;
    let active = ctx.store.active_alerts().await.unwrap();
    assert!(
        !active.iter().any(|a| a.key == "dead_letter:gone"),
        "{active:?}"
    );
    let wait = Duration::from_secs(10);
    let show = || format!("{:?}", got.lock().unwrap());
    eventually(
        wait,
        "the dead-letter resolution",
        || (about(&got, "resolved: Task for ENG-9").len() == 1).then_some(()),
        show,
    )
    .await;

    // A run starts: Codegen accepts creates again, so the 402 alert ends.
    let (_, session) = stack
        .delegate_issue("Works again", "[sim outcome=COMPLETE duration=30s]", &[])
        .unwrap();
    final_activity(&stack, &session, Duration::from_secs(60)).await;
    alert_watch::evaluate(&ctx, ctx.now_ms()).await;
    let left = ctx.store.active_alerts().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    eventually(
        wait,
        "the 402 resolution",
        || (about(&got, "resolved: Codegen's plan").len() == 1).then_some(()),
        show,
    )
    .await;
    // Each condition was announced as resolved exactly once.
    assert_eq!(
        about(&got, "resolved: Task for ENG-9").len(),
        1,
        "{}",
        show()
    );
    stack.shutdown().await;
}
