//! Shared helpers: start a stack, wait for what a person would see in Linear,
//! and print the whole session when an expectation fails.

use cyrus_sandbox::linear::SessionView;
use cyrus_stack::{Stack, StackOptions};
use std::time::{Duration, Instant};

pub async fn spawn(opts: StackOptions) -> Stack {
    let _ = tracing_subscriber_init();
    Stack::start(opts).await.expect("stack starts")
}

fn tracing_subscriber_init() -> Option<()> {
    None
}

/// Polls `check` until it returns `Some`, or panics after `timeout` showing
/// `describe()` (e.g. the session's activities).
pub async fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for a check that awaits (a store read, say): polls
/// `check` until it answers `Ok`, or panics after `timeout` showing what its
/// last `Err` said it saw.
pub async fn eventually_async<T>(
    timeout: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let seen = match check().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}\n{seen}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn session(stack: &Stack, id: &str) -> SessionView {
    stack.linear.control().session(id).expect("session exists")
}

pub fn kinds(view: &SessionView) -> Vec<String> {
    view.activities
        .iter()
        .map(|a| a.kind().to_string())
        .collect()
}

pub fn bodies(view: &SessionView, kind: &str) -> Vec<String> {
    view.activities
        .iter()
        .filter(|a| a.kind() == kind)
        .map(|a| {
            a.content
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub fn describe(stack: &Stack, id: &str) -> String {
    match stack.linear.control().session(id) {
        Some(view) => format!(
            "session {id}: status {:?}\n{}",
            view.status,
            serde_json::to_string_pretty(&view.activities).unwrap_or_default()
        ),
        None => format!("session {id} not found"),
    }
}

/// Waits for the session's final `response` or `error`; returns its kind and body.
pub async fn final_activity(stack: &Stack, id: &str, timeout: Duration) -> (String, String) {
    eventually(
        timeout,
        "a final response or error",
        || {
            let view = stack.linear.control().session(id)?;
            view.activities
                .iter()
                .rev()
                .find(|a| a.kind() == "response" || a.kind() == "error")
                .map(|a| {
                    (
                        a.kind().to_string(),
                        a.content
                            .get("body")
                            .and_then(|b| b.as_str())
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
        },
        || describe(stack, id),
    )
    .await
}

/// A stack whose `repositories` are replaced (`"ORG"` stands for the
/// simulator's organization id).
pub async fn spawn_with_repos(repositories: serde_json::Value) -> Stack {
    let org = cyrus_sandbox::linear::LinearSimOptions::default().organization_id;
    let text = repositories
        .to_string()
        .replace("\"ORG\"", &format!("\"{org}\""));
    let patch: serde_json::Value = serde_json::from_str(&text).unwrap();
    spawn(StackOptions {
        config_patch: Some(patch),
        ..Default::default()
    })
    .await
}

/// Waits until the stack's first Codegen run exists.
pub async fn first_run_started(stack: &Stack, session_id: &str) {
    eventually(
        Duration::from_secs(30),
        "the run to start",
        || (stack.codegen.control().runs().len() == 1).then_some(()),
        || describe(stack, session_id),
    )
    .await;
}

/// Our own Linear client, pointed at the stack's simulator (to act as a
/// user through GraphQL where the control API has no shortcut).
pub fn linear_client(stack: &Stack) -> cyrus_linear::LinearClient {
    cyrus_linear::LinearClient::new(cyrus_linear::LinearClientConfig::new(
        stack.linear.url().parse().expect("simulator URL"),
        cyrus_linear::Credentials::ApiKey(stack.linear.api_key().to_string().into()),
    ))
    .expect("client builds")
}

/// Every row of `store`'s outbox, in id order. The store has no listing of
/// the outbox; its ids count up from 1, so they are read one by one until
/// twenty in a row are missing (ids an insert that found its row already
/// there used up leave gaps).
pub async fn outbox_rows(store: &cyrus_store::Store) -> Vec<cyrus_store::Activity> {
    let (mut rows, mut id, mut misses) = (Vec::new(), 1, 0);
    while misses < 20 {
        match store.get_activity(id).await {
            Ok(Some(a)) => {
                misses = 0;
                rows.push(a);
            }
            Ok(None) => misses += 1,
            Err(err) => panic!("reading outbox row {id}: {err}"),
        }
        id += 1;
    }
    rows
}
