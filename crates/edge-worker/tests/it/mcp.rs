//! A repository's `mcpServers` checked against Codegen at run time: the
//! routing thought names what Codegen cannot provide, the run still goes
//! ahead, and Codegen's catalog is read once for many tasks.

use crate::harness::*;
use cyrus_sandbox::codegen::{Endpoint, SimOptions};
use cyrus_stack::StackOptions;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The routing thought: the one naming the repository it routed to.
fn routing_thought(stack: &cyrus_stack::Stack, session_id: &str) -> String {
    bodies(&session(stack, session_id), "thought")
        .into_iter()
        .find(|t| t.contains("Model:"))
        .unwrap_or_else(|| panic!("no routing thought\n{}", describe(stack, session_id)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_thought_names_an_inactive_integration_and_the_run_goes_ahead() {
    let org = cyrus_sandbox::linear::LinearSimOptions::default().organization_id;
    let stack = spawn(
        StackOptions {
            codegen: SimOptions {
                integrations: vec![("github".into(), true), ("sentry".into(), false)],
                ..SimOptions::default()
            },
            config_patch: Some(json!({"repositories": [
                {"id": "web", "name": "web", "linearWorkspaceId": org, "codegenRepoId": 7,
                 "teamKeys": ["ENG"], "mcpServers": ["github", "sentry", "jira"]},
                {"id": "api", "name": "api", "linearWorkspaceId": org, "codegenRepoId": 8,
                 "routingLabels": ["backend"]}
            ]})),
            ..StackOptions::default()
        }
        .time_scale(30.0),
    )
    .await;

    let (_, web) = stack
        .delegate_issue(
            "Add a health endpoint",
            "Please add /health. [sim outcome=COMPLETE prs=1 duration=30s]",
            &[],
        )
        .unwrap();
    let (kind, _) = final_activity(&stack, &web, T).await;
    assert_eq!(
        kind,
        "response",
        "the run went ahead\n{}",
        describe(&stack, &web)
    );
    let thought = routing_thought(&stack, &web);
    assert!(
        thought.contains("MCP servers Codegen cannot provide right now: sentry (inactive), jira (not offered by Codegen)"),
        "{thought}"
    );
    assert!(!thought.contains("github ("), "github is active: {thought}");

    // A repository that names no MCP server gets no such sentence.
    let (_, api) = stack
        .delegate_issue(
            "Speed up the query",
            "Slow. [sim outcome=COMPLETE duration=30s]",
            &["backend"],
        )
        .unwrap();
    final_activity(&stack, &api, T).await;
    let thought = routing_thought(&stack, &api);
    assert!(thought.contains("api"), "routed to api: {thought}");
    assert!(!thought.contains("MCP"), "{thought}");

    // A second task on web is told again, from the cached catalog: Codegen
    // was asked once.
    let (_, again) = stack
        .delegate_issue(
            "Add a metrics endpoint",
            "Please add /metrics. [sim outcome=COMPLETE duration=30s]",
            &[],
        )
        .unwrap();
    final_activity(&stack, &again, T).await;
    assert!(
        routing_thought(&stack, &again).contains("sentry (inactive)"),
        "{}",
        describe(&stack, &again)
    );
    let ctl = stack.codegen.control();
    assert_eq!(ctl.request_count(Endpoint::Integrations), 1);
    assert_eq!(ctl.request_count(Endpoint::McpProviders), 1);
    stack.shutdown().await;
}
