//! Linear workspaces connected through the OAuth app (`actor=app`), as
//! `cyrus linear connect` does it: no token or id in the configuration, the
//! token lifecycle (expiry, rotation, a dead refresh token, revocation) and
//! several workspaces.

use crate::harness::*;
use cyrus_sandbox::linear::{NewOrganization, NewTeam};
use cyrus_stack::{Stack, StackOptions};
use cyrus_store::{InstallationStatus, Store};
use secrecy::ExposeSecret;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

async fn oauth_stack() -> Stack {
    spawn(StackOptions::default().time_scale(20.0).oauth()).await
}

async fn status_of(store: &Store, workspace: &str) -> InstallationStatus {
    store
        .list_installation_infos()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.workspace_id == workspace)
        .map(|i| i.status)
        .expect("the installation exists")
}

/// Every activity of the session was written by `user` (the agent of the
/// session's workspace), and there is exactly one final answer.
fn assert_answered_by(stack: &Stack, session_id: &str, user: &str) {
    let view = session(stack, session_id);
    assert!(
        view.activities.iter().all(|a| a.user_id == user),
        "every activity by {user}\n{}",
        describe(stack, session_id)
    );
    let finals = view
        .activities
        .iter()
        .filter(|a| a.kind() == "response" || a.kind() == "error")
        .count();
    assert_eq!(
        finals,
        1,
        "one final answer\n{}",
        describe(stack, session_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_workspace_is_answered_with_its_stored_token_and_learned_agent() {
    let stack = oauth_stack().await;
    let linear = &stack.config_json["linear"];
    assert!(
        linear.get("workspaces").is_none() && linear.get("agentUserId").is_none(),
        "no token or id in the configuration: {linear}"
    );

    let info = stack.connect_workspace(None).await.unwrap();
    assert_eq!(info.workspace_id, stack.linear.organization_id());
    assert_eq!(info.app_user_id, stack.linear.agent_user_id());
    assert_eq!(info.status, InstallationStatus::Active);

    let (_issue, session_id) = stack
        .delegate_issue(
            "Add a health endpoint",
            "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            &["Feature"],
        )
        .unwrap();
    let (kind, _) = final_activity(&stack, &session_id, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
    assert_answered_by(&stack, &session_id, stack.linear.agent_user_id());

    // The database file holds the tokens encrypted only.
    let store = stack.store().await.unwrap();
    let installation = store
        .get_installation(&info.workspace_id)
        .await
        .unwrap()
        .unwrap();
    let mut secrets = vec![installation.tokens.access_token.expose_secret().to_string()];
    if let Some(refresh) = &installation.tokens.refresh_token {
        secrets.push(refresh.expose_secret().to_string());
    }
    let path = stack
        .store_url
        .strip_prefix("sqlite://")
        .expect("a SQLite stack")
        .to_string();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains(&info.workspace_name),
        "the probe reads the data"
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a token in plain text");
    }
    // A change of the agent's team access is recorded and shown.
    let design = stack
        .linear
        .control()
        .create_team(NewTeam {
            key: "DES".into(),
            name: "Design".into(),
            ..Default::default()
        })
        .unwrap();
    stack
        .linear
        .control()
        .change_team_access(std::slice::from_ref(&design.id), &[], false)
        .unwrap();
    let changes = eventually(
        T,
        "the permission change to be recorded",
        || {
            block_on(store.list_permission_changes(Some(&info.workspace_id), 5))
                .ok()
                .filter(|c| !c.is_empty())
        },
        String::new,
    )
    .await;
    assert_eq!(changes[0].added_team_ids, std::slice::from_ref(&design.id));
    // The dashboard's JSON shows the workspace and the change, never a token.
    let status = reqwest::get(format!("{}/api/status", stack.worker_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains(&info.workspace_name), "{status}");
    assert!(status.contains(&design.id), "{status}");
    for secret in &secrets {
        assert!(
            !status.contains(secret.as_str()),
            "a token on the dashboard"
        );
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_is_requested_again_when_it_expires() {
    let stack = oauth_stack().await;
    let loaded =
        cyrus_core::config::parse(&stack.config_json.to_string(), &Default::default()).unwrap();
    let app = cyrus_edge_worker::install::OAuthApp::from_config(&loaded.config).unwrap();
    let store = stack.store().await.unwrap();
    let api = url::Url::parse(&loaded.config.linear.api_url).unwrap();
    let connected = cyrus_edge_worker::install::client_credentials(
        &store,
        &app,
        &api,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .unwrap();
    assert_eq!(connected.workspace_id, stack.linear.organization_id());
    let client = eventually(
        T,
        "the worker to load the installation",
        || {
            // The periodic evaluation is where a running worker picks up
            // installations made by another process.
            block_on(cyrus_edge_worker::alert_watch::evaluate(
                stack.worker.context(),
                chrono::Utc::now().timestamp_millis(),
            ));
            stack
                .worker
                .context()
                .linear
                .client(stack.linear.organization_id())
        },
        String::new,
    )
    .await;
    client.identity().await.unwrap();
    // Thirty-one simulated days: the app token has expired at Linear.
    stack.linear.control().reset_token_stats();
    stack
        .linear
        .control()
        .advance(Duration::from_secs(31 * 24 * 3600));
    let (_issue, session_id) = stack
        .delegate_issue(
            "Tidy the changelog",
            "[sim outcome=COMPLETE prs=1 duration=10s logs=2]",
            &["Feature"],
        )
        .unwrap();
    let (kind, _) = final_activity(&stack, &session_id, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
    let stats = stack.linear.control().token_stats();
    assert_eq!(stats.client_credentials.calls, 1, "{stats:?}");
    assert_eq!(stats.refresh_token.calls, 0, "{stats:?}");
    assert_eq!(
        status_of(&store, stack.linear.organization_id()).await,
        InstallationStatus::Active
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_across_an_access_token_expiry_finishes_without_an_error() {
    let stack = oauth_stack().await;
    stack.connect_workspace(None).await.unwrap();
    let (_issue, session_id) = stack
        .delegate_issue(
            "Refactor the billing module",
            "[sim outcome=COMPLETE prs=1 duration=120s logs=12]",
            &["Feature"],
        )
        .unwrap();
    first_run_started(&stack, &session_id).await;
    // A simulated day passes mid-run: the access token expires at Linear.
    stack
        .linear
        .control()
        .advance(Duration::from_secs(25 * 3600));
    let (kind, body) = final_activity(&stack, &session_id, T).await;
    assert_eq!(
        kind,
        "response",
        "{body}\n{}",
        describe(&stack, &session_id)
    );
    let kinds = kinds(&session(&stack, &session_id));
    assert!(!kinds.iter().any(|k| k == "error"), "{kinds:?}");
    let stats = stack.linear.control().token_stats();
    assert!(
        stats.refresh_token.calls >= 1 && stats.refresh_token.invalid_grant == 0,
        "the token was refreshed once it expired: {stats:?}"
    );
    let store = stack.store().await.unwrap();
    assert_eq!(
        status_of(&store, stack.linear.organization_id()).await,
        InstallationStatus::Active
    );
    stack.shutdown().await;
}

/// Kills the workspace's refresh tokens and lets its access token expire.
fn break_the_installation(stack: &Stack) {
    let org = stack.linear.organization_id().to_string();
    let control = stack.linear.control();
    control.kill_refresh_tokens(&org).unwrap();
    control.advance(Duration::from_secs(25 * 3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_refresh_token_makes_tasks_wait_until_the_workspace_is_reconnected() {
    let stack = oauth_stack().await;
    let org = stack.linear.organization_id().to_string();
    stack.connect_workspace(None).await.unwrap();
    break_the_installation(&stack);

    let (_issue, session_id) = stack
        .delegate_issue(
            "Fix the login redirect",
            "[sim outcome=COMPLETE prs=1 duration=10s logs=2]",
            &["Bug"],
        )
        .unwrap();
    let store = stack.store().await.unwrap();
    eventually(
        T,
        "the installation to need reconnecting",
        || (block_on(status_of(&store, &org)) == InstallationStatus::NeedsReconnect).then_some(()),
        || describe(&stack, &session_id),
    )
    .await;
    let evaluation = cyrus_edge_worker::alert_watch::evaluate(
        stack.worker.context(),
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    let key = format!("linear_reconnect:{org}");
    let alerts = store.active_alerts().await.unwrap();
    assert!(
        alerts.iter().any(|a| a.key == key),
        "a reconnect alert: {alerts:?} ({evaluation:?})"
    );
    // The task waits: no run, nothing failed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.codegen.control().runs().is_empty());
    let task = store
        .get_task_by_session(&session_id)
        .await
        .unwrap()
        .expect("the task exists");
    assert!(task.is_active(), "{task:?}");
    assert_eq!(task.state, "received", "{task:?}");

    // An admin reconnects: the task goes on and is answered once.
    stack.connect_workspace(None).await.unwrap();
    let (kind, _) = final_activity(&stack, &session_id, Duration::from_secs(90)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
    assert_answered_by(&stack, &session_id, stack.linear.agent_user_id());
    assert_eq!(stack.codegen.control().runs().len(), 1);
    let view = session(&stack, &session_id);
    assert_eq!(
        view.activities.first().map(|a| a.kind().to_string()),
        Some("thought".to_string()),
        "the acknowledgement still comes first\n{}",
        describe(&stack, &session_id)
    );
    cyrus_edge_worker::alert_watch::evaluate(
        stack.worker.context(),
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    let alerts = store.active_alerts().await.unwrap();
    assert!(!alerts.iter().any(|a| a.key == key), "cleared: {alerts:?}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_app_makes_tasks_wait_until_it_is_installed_again() {
    let stack = oauth_stack().await;
    let org = stack.linear.organization_id().to_string();
    stack.connect_workspace(None).await.unwrap();
    let (_issue, session_id) = stack
        .delegate_issue(
            "Write the migration guide",
            "[sim outcome=COMPLETE prs=1 duration=60s logs=4]",
            &["Feature"],
        )
        .unwrap();
    first_run_started(&stack, &session_id).await;
    let store = stack.store().await.unwrap();
    stack
        .linear
        .control()
        .revoke_installation(&org, None)
        .unwrap();
    eventually(
        T,
        "the installation to be revoked",
        || (block_on(status_of(&store, &org)) == InstallationStatus::Revoked).then_some(()),
        || describe(&stack, &session_id),
    )
    .await;
    let key = format!("linear_reconnect:{org}");
    assert!(
        store
            .active_alerts()
            .await
            .unwrap()
            .iter()
            .any(|a| a.key == key),
        "the revoked webhook raises the alert at once"
    );
    // Installed again: the run's answer arrives, once, with no error.
    stack.connect_workspace(None).await.unwrap();
    let (kind, _) = final_activity(&stack, &session_id, Duration::from_secs(90)).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
    assert_answered_by(&stack, &session_id, stack.linear.agent_user_id());
    assert_eq!(stack.codegen.control().runs().len(), 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workspaces_are_each_answered_with_their_own_token_and_agent() {
    let stack = oauth_stack().await;
    let first = stack.connect_workspace(None).await.unwrap();
    let second_org = stack
        .linear
        .control()
        .add_organization(NewOrganization {
            name: "Second Corp".into(),
            ..Default::default()
        })
        .unwrap();
    let second = stack.connect_workspace(Some(&second_org.id)).await.unwrap();
    assert_ne!(first.app_user_id, second.app_user_id);
    assert_eq!(second.workspace_id, second_org.id);

    let other = stack.linear.control().organization(&second_org.id).unwrap();
    let team = other
        .create_team(NewTeam {
            key: "ENG".into(),
            name: "Engineering".into(),
            ..Default::default()
        })
        .unwrap();
    let issue = other
        .create_issue(cyrus_sandbox::linear::NewIssue {
            team_id: Some(team.id),
            title: "Second workspace's issue".into(),
            description: Some("[sim outcome=COMPLETE prs=1 duration=10s logs=2]".into()),
            ..Default::default()
        })
        .unwrap();
    let second_session = other.delegate(&issue.id, None).unwrap();
    let (_issue, first_session) = stack
        .delegate_issue(
            "First workspace's issue",
            "[sim outcome=COMPLETE prs=1 duration=10s logs=2]",
            &["Feature"],
        )
        .unwrap();

    let (kind, _) = final_activity(&stack, &first_session, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &first_session));
    assert_answered_by(&stack, &first_session, &first.app_user_id);
    let view = eventually(
        T,
        "the second workspace's answer",
        || {
            let view = other.session(&second_session)?;
            view.activities
                .iter()
                .any(|a| a.kind() == "response")
                .then_some(view)
        },
        || format!("{:#?}", other.session(&second_session)),
    )
    .await;
    assert!(
        view.activities
            .iter()
            .all(|a| a.user_id == second.app_user_id),
        "{view:#?}"
    );
    stack.shutdown().await;
}

/// Runs a store read to completion from a synchronous closure.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_refresh_a_shared_installation_exactly_once() {
    let Some(store) = cyrus_stack::StoreLocation::fresh_postgres().await.unwrap() else {
        return;
    };
    let stack = spawn(
        StackOptions::default()
            .time_scale(20.0)
            .oauth()
            .store(store),
    )
    .await;
    stack.connect_workspace(None).await.unwrap();
    // Two more replicas on the same store and key, started after the
    // install so each loads it.
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = stack.config_json.clone();
        config["server"]["listen"] = serde_json::json!(listener.local_addr().unwrap().to_string());
        replicas.push(
            cyrus_stack::start_worker_with_keys(&config, &stack.store_url, &stack.keys, listener)
                .await
                .unwrap(),
        );
    }
    // Every replica holds the access token (a call each), then it expires
    // for everyone at once and every replica calls Linear at once.
    let org = stack.linear.organization_id().to_string();
    let clients: Vec<_> = std::iter::once(&stack.worker)
        .chain(replicas.iter())
        .map(|w| {
            w.context()
                .linear
                .client(&org)
                .expect("the installation's client")
        })
        .collect();
    for client in &clients {
        client.identity().await.unwrap();
    }
    stack.linear.control().reset_token_stats();
    stack
        .linear
        .control()
        .advance(Duration::from_secs(25 * 3600));
    let calls = clients.iter().map(|c| c.identity());
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap().organization_id, org);
    }
    let mut sessions = Vec::new();
    for i in 0..6 {
        let (_issue, session_id) = stack
            .delegate_issue(
                &format!("Replica race {i}"),
                "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
                &["Feature"],
            )
            .unwrap();
        sessions.push(session_id);
    }
    for session_id in &sessions {
        let (kind, _) = final_activity(&stack, session_id, Duration::from_secs(60)).await;
        assert_eq!(kind, "response", "{}", describe(&stack, session_id));
        assert_answered_by(&stack, session_id, stack.linear.agent_user_id());
    }
    let stats = stack.linear.control().token_stats();
    assert_eq!(
        stats.refresh_token.calls, 1,
        "exactly one refresh: {stats:?}"
    );
    assert_eq!(stats.refresh_token.invalid_grant, 0, "{stats:?}");
    for replica in replicas {
        replica.shutdown().await;
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_near_expiry_in_one_worker_refresh_once() {
    let stack = oauth_stack().await;
    let info = stack.connect_workspace(None).await.unwrap();
    // The stored access token is said to expire in a minute: every call
    // from now on wants to refresh ahead of it.
    let store = stack.store().await.unwrap();
    let installed = store
        .get_installation(&info.workspace_id)
        .await
        .unwrap()
        .unwrap();
    let mut tokens = installed.tokens.clone();
    tokens.access_expires_at = chrono::Utc::now().timestamp_millis() + 60_000;
    store
        .connect_installation(
            &cyrus_store::NewInstallation {
                workspace_id: info.workspace_id.clone(),
                workspace_name: info.workspace_name.clone(),
                url_key: info.url_key.clone(),
                app_user_id: info.app_user_id.clone(),
                app_user_name: info.app_user_name.clone(),
                oauth_client_id: info.oauth_client_id.clone(),
                scopes: info.scopes.clone(),
                grant: info.grant,
                tokens,
            },
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .unwrap();
    stack.linear.control().reset_token_stats();
    let client = stack
        .worker
        .context()
        .linear
        .client(&info.workspace_id)
        .expect("the installation's client");
    let calls = (0..8).map(|_| client.identity());
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap().organization_id, info.workspace_id);
    }
    let stats = stack.linear.control().token_stats();
    assert_eq!(
        stats.refresh_token.calls, 1,
        "one refresh ahead of expiry: {stats:?}"
    );
    assert_eq!(stats.refresh_token.invalid_grant, 0, "{stats:?}");
    assert_eq!(
        status_of(&store, &info.workspace_id).await,
        InstallationStatus::Active
    );
    stack.shutdown().await;
}
