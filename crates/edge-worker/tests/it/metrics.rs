//! `/metrics` after a real run, and the semantics of `/healthz` and `/readyz`.

use crate::harness::{describe, final_activity, spawn};
use cyrus_stack::StackOptions;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_tasks_latencies_api_calls_spend_and_headroom() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let (_, session) = stack
        .delegate_issue(
            "Add /health",
            "[sim outcome=COMPLETE prs=1 duration=30s logs=4]",
            &[],
        )
        .unwrap();
    let (kind, _) = final_activity(&stack, &session, Duration::from_secs(60)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session));

    let r = reqwest::get(format!("{}/metrics", stack.worker_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let org = stack.linear.organization_id();
    for needle in [
        "cyrus_tasks{state=\"completed\"}".to_string(),
        "cyrus_tasks{state=\"queued\"}".to_string(),
        "cyrus_run_duration_seconds_bucket{".to_string(),
        "cyrus_time_to_ack_seconds_count".to_string(),
        "cyrus_time_to_start_seconds_count".to_string(),
        "codegen_api_calls_total{endpoint=\"create_run\",status=\"2".to_string(),
        "linear_api_calls_total{".to_string(),
        "cyrus_webhook_deliveries_total{outcome=\"accepted\"}".to_string(),
        "cyrus_spend_today_micro_dollars".to_string(),
        "codegen_rate_headroom{class=\"create\"}".to_string(),
        "codegen_rate_headroom{class=\"read\"}".to_string(),
        "codegen_rate_headroom{class=\"logs\"}".to_string(),
        format!("linear_rate_headroom{{organization=\"{org}\"}}"),
        "codegen_rate_limit_wait_seconds".to_string(),
    ] {
        assert!(text.contains(&needle), "/metrics lacks {needle}:\n{text}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_store_and_healthz_only_the_process() {
    let stack = spawn(StackOptions::default()).await;
    let base = stack.worker_url();
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body:#}");
    assert_eq!(body["store"]["migrations_applied"], true, "{body:#}");

    stack.worker.context().store.close().await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], false, "{body:#}");
    assert_eq!(body["store"]["reachable"], false, "{body:#}");
    assert!(body["store"]["error"].is_string(), "{body:#}");

    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the process is still up");
    stack.shutdown().await;
}
