//! The task lifecycle through real HTTP: delegate in Linear → Codegen run →
//! answer in Linear.

use crate::harness::*;
use cyrus_edge_worker::stack::StackOptions;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_issue_gets_ack_progress_pr_and_final_response() {
    let stack = spawn(StackOptions {
        time_scale: 20.0,
        ..Default::default()
    })
    .await;
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
