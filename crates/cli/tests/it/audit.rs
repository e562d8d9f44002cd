//! `cyrus audit`: the decisions in the store, filtered, as stable JSON.

use crate::operator::{config, run, sim};
use cyrus_store::{AuditEntry, AuditKind, Store};
use serde_json::json;

/// 2026-11-30T10:00:00Z.
const BASE: i64 = 1_796_032_800_000;

fn entry(n: i64, kind: AuditKind, issue: &str, actor: &str, reason: &str) -> AuditEntry {
    AuditEntry {
        dedupe_key: format!("k{n}"),
        at: BASE + n * 60_000,
        kind,
        organization_id: Some("org-1".into()),
        issue_id: Some(format!("id-{issue}")),
        issue_identifier: Some(issue.into()),
        task_id: Some(format!("task-{issue}")),
        actor: Some(actor.into()),
        reason: reason.into(),
        detail: (kind == AuditKind::Routed).then(
            || json!({"taskType": "debugger", "repository": "web", "model": "claude-3-5-sonnet"}),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_json_lists_decisions_with_who_and_why() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    let path = path.to_str().unwrap().to_owned();
    let store = Store::connect(&store_url).await.unwrap();
    for e in [
        entry(
            0,
            AuditKind::AccessRefused,
            "ENG-1",
            "gus@partner.io",
            "workspace guests may not use the agent",
        ),
        entry(
            1,
            AuditKind::AccessAllowed,
            "ENG-2",
            "mia@acme.dev",
            "member of team ENG",
        ),
        entry(
            2,
            AuditKind::Routed,
            "ENG-2",
            "cyrus",
            "Entering 'debugger' mode because of the 'Bug' label",
        ),
        entry(
            3,
            AuditKind::BudgetHeld,
            "ENG-2",
            "cyrus",
            "held $2.00 of today's budget for the run",
        ),
        entry(
            4,
            AuditKind::Stopped,
            "ENG-2",
            "mia@acme.dev",
            "You asked me to stop.",
        ),
    ] {
        store.record_audit(&e).await.unwrap();
    }
    store.close().await;

    let out = run(
        home.path(),
        &[
            "audit",
            "--config",
            &path,
            "--since",
            "2026-11-01",
            "--json",
        ],
        &[],
    )
    .await;
    out.assert_code(0);
    insta::assert_snapshot!("audit_json", out.stdout);

    let one = run(
        home.path(),
        &[
            "audit",
            "--config",
            &path,
            "--since",
            "2026-11-01",
            "--issue",
            "ENG-1",
            "--json",
        ],
        &[],
    )
    .await;
    one.assert_code(0);
    let v = one.json();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(v["entries"][0]["kind"], "access_refused");

    let text = run(
        home.path(),
        &[
            "audit",
            "--config",
            &path,
            "--since",
            "2026-11-01",
            "--kind",
            "stopped",
        ],
        &[("NO_COLOR", "1")],
    )
    .await;
    text.assert_code(0)
        .assert_stdout_contains("You asked me to stop.")
        .assert_stdout_contains("mia@acme.dev")
        .assert_nowhere("guests");

    let bad = run(
        home.path(),
        &["audit", "--config", &path, "--kind", "nope"],
        &[],
    )
    .await;
    assert_eq!(bad.code, Some(2), "{bad}");
    assert!(
        bad.stderr.contains("access_refused"),
        "lists the kinds: {bad}"
    );
    sim.shutdown().await;
}
