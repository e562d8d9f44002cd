//! The builder's choices reach the simulators, the store and the worker's
//! configuration, on SQLite and on PostgreSQL.

use cyrus_sandbox::codegen::{Endpoint, Faults, ForcedFailure};
use cyrus_sandbox::linear::{Fault, FaultKind};
use cyrus_stack::{Stack, StackOptions, StoreLocation, sqlite_url};
use cyrus_store::{Store, TaskFilter};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A GraphQL operation the worker never sends, so a fault aimed at it is
/// only spent by this test.
const PROBE: &str = "query StackProbe { viewer { id } }";

async fn probe(stack: &Stack) -> Value {
    reqwest::Client::new()
        .post(stack.linear.url())
        .header("authorization", stack.linear.api_key())
        .json(&json!({"query": PROBE}))
        .send()
        .await
        .expect("the Linear simulator answers")
        .json()
        .await
        .expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_reach_the_simulators_the_store_and_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept.db");
    let codegen_faults = Faults {
        // The worker never bans a run: only this test could spend the rule.
        fail_next: vec![ForcedFailure {
            status: 503,
            count: 1,
            endpoint: Some(Endpoint::BanRun),
        }],
        ..Faults::default()
    };
    let mut opts = StackOptions {
        max_concurrent_runs: 3,
        max_cost_per_day: 12.5,
        codegen_faults: codegen_faults.clone(),
        linear_faults: vec![Fault {
            operation: Some("StackProbe".into()),
            ..Fault::new(FaultKind::RateLimited)
        }],
        ..StackOptions::default()
            .time_scale(600.0)
            .store(StoreLocation::SqliteFile(path.clone()))
            .patch(json!({"codegen": {"pollIntervalSecs": 7}}))
            .patch(json!({"codegen": {"defaultModel": "claude-3-5-sonnet"}}))
    };
    opts.linear.rate_limits.requests_per_window = 1_234;
    let stack = Stack::start(opts).await.expect("the stack starts");

    assert_eq!(stack.store_url, sqlite_url(&path));
    assert!(path.exists(), "the store is the given SQLite file");
    let codegen = &stack.config_json["codegen"];
    assert_eq!(codegen["pollIntervalSecs"], 7, "both patches merged");
    assert_eq!(codegen["defaultModel"], "claude-3-5-sonnet");
    assert_eq!(codegen["maxConcurrentRuns"], 3);
    assert_eq!(codegen["maxCostPerDay"], 12.5);
    assert_eq!(codegen["baseUrl"], stack.codegen.url());
    assert_eq!(stack.codegen.control().faults(), codegen_faults);

    let limited = probe(&stack).await;
    assert_eq!(
        limited["errors"][0]["extensions"]["code"], "RATELIMITED",
        "{limited}"
    );
    let message = limited["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Only 1234 requests"), "{message}");
    let answered = probe(&stack).await;
    assert!(answered.get("errors").is_none(), "{answered}");

    let before = stack.codegen.control().now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let simulated = stack.codegen.control().now() - before;
    assert!(
        simulated >= Duration::from_secs(60),
        "×600 clock: {simulated:?} in 200 ms"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_on_postgres_answers_a_delegated_issue() {
    let Some(store) = StoreLocation::fresh_postgres().await.unwrap() else {
        return;
    };
    let stack = Stack::start(StackOptions::default().time_scale(60.0).store(store))
        .await
        .expect("the stack starts on PostgreSQL");
    let (_, session) = stack
        .delegate_issue(
            "Add a health endpoint",
            "[sim outcome=COMPLETE prs=1 duration=60s]",
            &["Feature"],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        let view = stack.linear.control().session(&session).unwrap();
        if let Some(a) = view.activities.iter().find(|a| a.kind() == "response") {
            break a.content["body"].as_str().unwrap_or_default().to_string();
        }
        assert!(Instant::now() < deadline, "no response: {view:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(response.contains("/pull/"), "{response}");
    let store = Store::connect(&stack.store_url).await.unwrap();
    let tasks = store.list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(tasks.len(), 1, "the task is in PostgreSQL: {tasks:?}");
    store.close().await;
    stack.shutdown().await;
}
