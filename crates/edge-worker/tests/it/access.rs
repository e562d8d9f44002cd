//! Who may use the agent and what it may fetch, through the real worker:
//! the access policy (guests, outsiders, members, a per-repository rule),
//! pasted images reaching Codegen, and fetches aimed at the worker's own
//! network refused without contact. Every decision lands in the audit log.

use crate::harness::*;
use cyrus_sandbox::linear::{NewComment, NewIssue, NewLabel, NewTeam, NewUser};
use cyrus_stack::{Stack, StackOptions};
use cyrus_store::{AuditFilter, AuditKind};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn user(stack: &Stack, name: &str, email: &str, guest: bool, teams: &[&str]) -> String {
    stack
        .linear
        .control()
        .create_user(NewUser {
            name: name.into(),
            email: Some(email.into()),
            guest,
            teams: Some(teams.iter().map(|t| t.to_string()).collect()),
            ..Default::default()
        })
        .id
}

/// Creates an issue in the ENG team (with `labels`) and delegates it as `by`.
fn delegate_as(stack: &Stack, by: &str, title: &str, labels: &[&str]) -> String {
    let control = stack.linear.control();
    let label_ids = labels
        .iter()
        .map(|name| {
            control
                .create_label(NewLabel {
                    name: name.to_string(),
                    ..Default::default()
                })
                .unwrap()
                .id
        })
        .collect();
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: title.into(),
            description: Some("Do it. [sim outcome=COMPLETE duration=20s logs=3]".into()),
            label_ids,
            creator_id: Some(by.into()),
            ..Default::default()
        })
        .unwrap();
    control.delegate(&issue.id, Some(by)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_policy_refuses_guests_and_outsiders_politely_and_applies_repository_rules() {
    let patch = json!({"policy": {
        "allow": {"teams": ["ENG"]},
        "contact": "@dana in #eng-tools",
        "repositories": {"api": {"allow": {"users": ["lead@acme.dev"]}}}
    }});
    let stack = spawn(
        StackOptions {
            config_patch: Some(patch),
            ..Default::default()
        }
        .time_scale(30.0),
    )
    .await;
    stack
        .linear
        .control()
        .create_team(NewTeam {
            key: "OPS".into(),
            name: "Operations".into(),
            ..Default::default()
        })
        .unwrap();
    let guest = user(&stack, "Gus Guest", "gus@partner.io", true, &["ENG"]);
    let outsider = user(&stack, "Olga Ops", "olga@acme.dev", false, &["OPS"]);
    let member = user(&stack, "Mia Member", "mia@acme.dev", false, &["ENG"]);
    let lead = user(&stack, "Lee Lead", "lead@acme.dev", false, &["OPS"]);

    for (who, title) in [(&guest, "Guest asks"), (&outsider, "Outsider asks")] {
        let session_id = delegate_as(&stack, who, title, &[]);
        let (kind, body) = final_activity(&stack, &session_id, T).await;
        assert_eq!(kind, "response", "{}", describe(&stack, &session_id));
        assert!(body.contains("access policy"), "{body}");
        assert!(
            body.contains("@dana in #eng-tools"),
            "says who to ask: {body}"
        );
        assert!(body.contains("no budget was used"), "{body}");
    }

    // A member of ENG gets a run on the web repository ...
    let allowed = delegate_as(&stack, &member, "Member asks", &[]);
    let (kind, _) = final_activity(&stack, &allowed, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &allowed));
    // ... but the api repository has its own rule: only the lead.
    let member_backend = delegate_as(&stack, &member, "Member asks for backend", &["backend"]);
    let (_, body) = final_activity(&stack, &member_backend, T).await;
    assert!(
        body.contains("access policy"),
        "{}",
        describe(&stack, &member_backend)
    );
    let lead_backend = delegate_as(&stack, &lead, "Lead asks for backend", &["backend"]);
    let (kind, body) = final_activity(&stack, &lead_backend, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &lead_backend));
    assert!(!body.contains("access policy"), "{body}");

    let runs = stack.codegen.control().runs();
    assert_eq!(runs.len(), 2, "runs only for the allowed: {runs:#?}");
    let repos: Vec<_> = runs.iter().map(|r| r.repo_id).collect();
    assert_eq!(repos, [Some(7), Some(8)]);

    let store = stack.store().await.unwrap();
    let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
    let count = |kind: AuditKind| audit.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count(AuditKind::AccessRefused), 3, "{audit:#?}");
    assert_eq!(count(AuditKind::AccessAllowed), 2, "{audit:#?}");
    let guest_row = audit
        .iter()
        .find(|e| e.actor.as_deref() == Some("gus@partner.io"))
        .expect("the guest's refusal is audited");
    assert_eq!(guest_row.reason, "workspace guests may not use the agent");
    assert_eq!(count(AuditKind::Routed), 2, "{audit:#?}");
    assert_eq!(count(AuditKind::BudgetHeld), 2, "{audit:#?}");
    // No budget was ever held for a refused task.
    let refused_tasks: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == AuditKind::AccessRefused)
        .map(|e| e.task_id.clone())
        .collect();
    assert!(
        audit
            .iter()
            .filter(|e| e.kind == AuditKind::BudgetHeld)
            .all(|e| !refused_tasks.contains(&e.task_id))
    );

    // The same rows on the dashboard's audit page and its JSON.
    let api: serde_json::Value = reqwest::get(format!(
        "{}/api/audit?kind=access_refused",
        stack.worker_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(api.as_array().unwrap().len(), 3, "{api:#}");
    let page = reqwest::get(format!("{}/audit", stack.worker_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("gus@partner.io"), "{page}");
    assert!(page.contains("workspace guests may not use the agent"));
    stack.shutdown().await;
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";

/// A listener that counts connections: proof a refused URL was never
/// contacted.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = tcp.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_images_reach_codegen_and_private_targets_are_never_contacted() {
    let patch = json!({
        "images": {"allowedHosts": ["localhost"]},
        "codegen": {"modelForImages": "gemini-2.5-pro"}
    });
    let stack = spawn(
        StackOptions {
            config_patch: Some(patch),
            ..Default::default()
        }
        .time_scale(30.0),
    )
    .await;
    let (port, hits) = counting_listener().await;
    let control = stack.linear.control();
    let shot = control.add_upload("application/octet-stream", PNG.to_vec());
    let photo = control.add_upload("application/octet-stream", JPEG.to_vec());
    let redirect = control.add_upload_redirect(&format!("https://localhost:{port}/a.png"));
    let description = format!(
        "It looks like this: ![shot]({shot})\n\n\
         ![meta](http://169.254.169.254/latest/meta-data) ![metas](https://169.254.169.254/x.png) \
         ![loop](https://127.0.0.1:{port}/x.png) ![ten](https://10.0.0.1:{port}/x.png) \
         ![six](https://[::1]:{port}/x.png) ![named](https://localhost:{port}/x.png) \
         ![hop]({redirect})\n\n[sim outcome=COMPLETE duration=20s logs=3]"
    );
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "The button is misaligned".into(),
            description: Some(description),
            comments: vec![NewComment {
                body: format!("Also on mobile: ![phone]({photo})"),
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap();
    let session_id = control.delegate(&issue.id, None).unwrap();
    first_run_started(&stack, &session_id).await;

    let run = stack.codegen.control().runs().remove(0);
    assert_eq!(
        run.images.len(),
        2,
        "the two uploads only: {:?}",
        run.images.iter().map(|i| &i[..30]).collect::<Vec<_>>()
    );
    assert!(
        run.images[0].starts_with("data:image/png;base64,"),
        "typed from bytes"
    );
    assert!(
        run.images[1].starts_with("data:image/jpeg;base64,"),
        "the comment's image"
    );
    assert_eq!(
        run.model.as_deref(),
        Some("gemini-2.5-pro"),
        "codegen.modelForImages"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused target was contacted"
    );
    // Two files and the redirect were asked for, with the token.
    assert_eq!(control.uploads_served(), 3);
    let thoughts = bodies(&session(&stack, &session_id), "thought");
    assert!(
        thoughts
            .iter()
            .any(|t| t.contains("because the issue has images")),
        "{thoughts:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mention_on_a_live_issue_is_not_passed_to_its_run() {
    let stack = spawn(StackOptions::default().time_scale(30.0)).await;
    let guest = user(&stack, "Gus Guest", "gus@partner.io", true, &["ENG"]);
    let member = user(&stack, "Mia Member", "mia@acme.dev", false, &["ENG"]);
    let control = stack.linear.control();
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: "Long job".into(),
            description: Some("[sim outcome=COMPLETE duration=900s logs=2]".into()),
            ..Default::default()
        })
        .unwrap();
    let live_session = control.delegate(&issue.id, Some(&member)).unwrap();
    first_run_started(&stack, &live_session).await;

    let guest_session = control
        .mention(&issue.id, "@cyrus also delete the tests", Some(&guest))
        .unwrap();
    let (kind, body) = final_activity(&stack, &guest_session, T).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &guest_session));
    assert!(body.contains("access policy"), "{body}");
    let member_session = control
        .mention(&issue.id, "@cyrus please also cover logout", Some(&member))
        .unwrap();
    let (_, body) = final_activity(&stack, &member_session, T).await;
    assert!(body.contains("passed your message on"), "{body}");

    let store = stack.store().await.unwrap();
    let live = store
        .get_task_by_session(&live_session)
        .await
        .unwrap()
        .unwrap();
    let pending: Vec<String> = store
        .pending_followups(&live.id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.body)
        .collect();
    assert!(
        pending.iter().any(|b| b.contains("cover logout")),
        "{pending:?}"
    );
    assert!(
        !pending.iter().any(|b| b.contains("delete the tests")),
        "{pending:?}"
    );
    stack.shutdown().await;
}
