//! Every endpoint, happy path, against the simulator.

use crate::support::{Harness, frozen, start};
use cyrus_codegen_executor::model::ResumeRun;
use cyrus_codegen_executor::progress::{LogFollower, ProgressEvent, PullRequestTracker};
use cyrus_codegen_executor::{AgentType, CreateRun, ListRuns, PageRequest, RunStatus};
use cyrus_core::cost::PriceTable;
use serde_json::json;
use std::time::Duration;

fn create(prompt: &str) -> CreateRun {
    CreateRun {
        prompt: prompt.to_string(),
        repo_id: Some(7),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_get_and_list_runs() {
    let h = start(frozen()).await;
    let input = CreateRun {
        prompt: "Fix the flaky login test".into(),
        repo_id: Some(7),
        model: Some("claude-sonnet".into()),
        agent_type: Some(AgentType::ClaudeCode),
        metadata: Some(
            json!({"linear_session_id": "s-1", "issue": "ENG-142"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        images: Some(vec!["data:image/png;base64,iVBORw0KGgo=".into()]),
    };
    let run = h
        .client
        .create_run(&input)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.dump()));
    assert_eq!(run.organization_id, h.sim.org_id());
    assert!(run.status().is_in_progress(), "{run:?}");
    assert_eq!(run.metadata.as_ref().unwrap()["issue"], "ENG-142");

    let record = h
        .sim
        .control()
        .run(run.id)
        .expect("simulator recorded the run");
    assert_eq!(record.prompt, input.prompt);
    assert_eq!(record.repo_id, Some(7));
    assert_eq!(record.model.as_deref(), Some("claude-sonnet"));
    assert_eq!(record.agent_type.as_deref(), Some("claude_code"));

    let got = h.client.get_run(run.id).await.unwrap();
    assert_eq!(got.id, run.id);
    assert_eq!(
        got.web_url.as_deref(),
        Some(format!("https://codegen.com/agent/trace/{}", run.id).as_str())
    );

    let second = h.client.create_run(&create("second")).await.unwrap();
    let page = h
        .client
        .list_runs(&ListRuns {
            page: PageRequest { skip: 0, limit: 1 },
            source_type: Some("API".into()),
            user_id: None,
        })
        .await
        .unwrap();
    assert_eq!(page.total, 2, "{page:?}");
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![second.id],
        "newest first"
    );
    let page2 = h
        .client
        .list_runs(&ListRuns {
            page: PageRequest { skip: 1, limit: 1 },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.items[0].id, run.id);
}

#[tokio::test]
async fn paused_run_resumes_and_stop_cancels() {
    let h = start(frozen()).await;
    let run = h
        .client
        .create_run(&create("[sim outcome=PAUSED duration=10s] ask me"))
        .await
        .unwrap();
    h.sim.control().advance(Duration::from_secs(11));
    let paused = h.client.get_run(run.id).await.unwrap();
    assert!(paused.status().needs_input(), "{paused:?}\n{}", h.dump());

    let resumed = h
        .client
        .resume_run(&ResumeRun {
            agent_run_id: run.id,
            prompt: "use option B".into(),
            images: None,
        })
        .await
        .unwrap();
    assert!(resumed.status().is_in_progress(), "{resumed:?}");
    assert_eq!(
        h.sim.control().run(run.id).unwrap().follow_ups,
        vec!["use option B".to_string()]
    );

    let stopped = h
        .client
        .stop_run(run.id)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.dump()));
    assert_eq!(stopped.map(|r| r.status()), Some(RunStatus::Cancelled));
    assert_eq!(
        h.client.get_run(run.id).await.unwrap().status(),
        RunStatus::Cancelled
    );
}

#[tokio::test]
async fn ban_unban_and_remove_from_pr() {
    let h = start(frozen()).await;
    let run = h
        .client
        .create_run(&create("[sim prs=1 duration=5s] pr"))
        .await
        .unwrap();
    h.client.ban_run(run.id).await.unwrap();
    assert!(h.sim.control().run(run.id).unwrap().banned, "{}", h.dump());
    h.client.unban_run(run.id).await.unwrap();
    assert!(!h.sim.control().run(run.id).unwrap().banned);
    h.client.remove_from_pr(run.id).await.unwrap();
    assert!(h.sim.control().run(run.id).unwrap().banned);
}

#[tokio::test]
async fn logs_are_read_incrementally_into_events_and_cost() {
    let h = start(frozen()).await;
    let run = h
        .client
        .create_run(&create("[sim duration=100s logs=30 prs=1] work"))
        .await
        .unwrap();
    let mut follower = LogFollower::new(run.id, None);

    h.sim.control().advance(Duration::from_secs(50));
    let first = follower.poll(&h.client, 5).await.unwrap();
    let after_first = follower.cursor();
    assert!(
        after_first > 0 && after_first < 31,
        "cursor {after_first}, events {first:?}\n{}",
        h.dump()
    );
    let logs_calls = h
        .sim
        .control()
        .request_count(cyrus_sandbox::codegen::Endpoint::Logs);

    h.sim.control().advance(Duration::from_secs(60));
    let rest = follower.poll(&h.client, 5).await.unwrap();
    assert!(follower.cursor() > after_first);
    assert!(
        rest.iter()
            .any(|e| matches!(e, ProgressEvent::FinalAnswer(_))),
        "no final answer in {rest:?}"
    );
    assert!(
        first
            .iter()
            .chain(&rest)
            .any(|e| matches!(e, ProgressEvent::ToolCall { .. }))
    );
    // One call per poll: never re-reading what was consumed.
    assert_eq!(
        h.sim
            .control()
            .request_count(cyrus_sandbox::codegen::Endpoint::Logs),
        logs_calls + 1
    );
    let again = follower.poll(&h.client, 5).await.unwrap();
    assert!(again.is_empty(), "re-read {again:?}");

    let tokens = follower.tokens();
    assert!(
        tokens.input_tokens > 0 && tokens.output_tokens > 0,
        "{tokens:?}"
    );
    let cost = follower.cost(&PriceTable::default());
    assert!(cost.to_string().contains("estimate"));

    let done = h.client.get_run(run.id).await.unwrap();
    assert!(done.status().is_success(), "{done:?}");
    let mut prs = PullRequestTracker::default();
    let new = prs.new_pull_requests(&done);
    assert_eq!(new.len(), 1, "{done:?}");
    assert!(
        new[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://github.com/")
    );
}

#[tokio::test]
async fn account_endpoints() {
    let h: Harness = start(frozen()).await;
    let me = h.client.me().await.unwrap();
    assert!(me.id > 0 && !me.github_username.is_empty(), "{me:?}");
    let orgs = h
        .client
        .organizations(PageRequest::default())
        .await
        .unwrap();
    assert!(
        orgs.items.iter().any(|o| o.id == h.sim.org_id()),
        "{orgs:?}"
    );
    let repos = h.client.all_repos().await.unwrap();
    let names: Vec<_> = repos.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"acme/web"));
    let integrations = h.client.integrations().await.unwrap();
    assert!(!integrations.codegen_linear_active(), "{integrations:?}");
    h.sim.control().set_integration("linear", true);
    assert!(
        h.client
            .integrations()
            .await
            .unwrap()
            .codegen_linear_active()
    );
    let providers = h.client.mcp_providers().await.unwrap();
    assert!(
        providers.iter().all(|p| !p.name.is_empty()),
        "{providers:?}"
    );
}

#[tokio::test]
async fn mcp_catalog_reads_providers_and_integrations_through_the_retry_path() {
    use cyrus_codegen_executor::McpAvailability;
    use cyrus_sandbox::codegen::{Endpoint, SimMcpProvider};
    let h: Harness = start(frozen()).await;
    let ctl = h.sim.control();
    ctl.set_mcp_providers(vec![
        SimMcpProvider::named("notion"),
        SimMcpProvider::named("sentry"),
    ]);
    ctl.set_integration("sentry", false);
    // A transient failure on each endpoint is retried, not surfaced.
    ctl.fail_next(503, 1, Some(Endpoint::McpProviders));
    ctl.fail_next(502, 1, Some(Endpoint::Integrations));
    let catalog = h
        .client
        .mcp_catalog()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.dump()));
    assert_eq!(ctl.request_count(Endpoint::McpProviders), 2);
    assert_eq!(ctl.request_count(Endpoint::Integrations), 2);
    let names: Vec<_> = catalog.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["notion", "sentry"]);
    assert!(catalog.providers.iter().all(|p| p.is_mcp && p.id > 0));
    assert_eq!(catalog.availability("github"), McpAvailability::Active);
    assert_eq!(catalog.availability("sentry"), McpAvailability::Inactive);
    assert_eq!(
        catalog.availability("notion"),
        McpAvailability::NotConnected
    );
    assert_eq!(catalog.availability("jira"), McpAvailability::NotOffered);
}
