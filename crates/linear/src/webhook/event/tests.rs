use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;

const ORG: &str = "0b6c2a54-3f0e-4c1e-9a55-7f1d2e8c9a01";
const APP: &str = "5d2f7b1e-8c4a-4f3b-9e6d-2a1c0b9e8f7d";
const DANA: &str = "3b8d0f4a-6e2c-4a1b-b7d9-1f5e3c7a9b2d";
const CLIENT: &str = "9f3e1c7a5b2d4e6f8a0b1c2d3e4f5a6b";

fn delivery(payload: Value) -> VerifiedDelivery {
    VerifiedDelivery {
        delivery_id: "d-1".into(),
        organization_id: ORG.into(),
        event_type: payload["type"].as_str().unwrap_or_default().into(),
        action: payload["action"].as_str().unwrap_or_default().into(),
        sent_at: DateTime::<Utc>::from_timestamp_millis(1_772_460_311_613).unwrap(),
        payload,
    }
}

fn issue() -> Value {
    json!({
        "id": "c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e",
        "identifier": "ENG-142",
        "title": "Login test is flaky on CI",
        "description": "`auth/login.spec.ts` times out in about 1 of 5 CI runs.",
        "url": "https://linear.app/acme/issue/ENG-142/login-test-is-flaky-on-ci",
        "teamId": "f1e2d3c4-b5a6-4978-8a6b-5c4d3e2f1a0b",
        "team": { "id": "f1e2d3c4-b5a6-4978-8a6b-5c4d3e2f1a0b", "key": "ENG", "name": "Engineering" }
    })
}

fn session(status: &str, creator: &str, comment: Value) -> Value {
    json!({
        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "type": "commentThread",
        "status": status,
        "appUserId": APP,
        "organizationId": ORG,
        "creatorId": creator,
        "creator": { "id": creator, "name": "Dana Reyes", "email": "dana@acme.dev", "avatarUrl": null,
                     "url": "https://linear.app/acme/profiles/dana" },
        "issueId": "c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e",
        "issue": issue(),
        "commentId": "a9b8c7d6-e5f4-4a3b-8c2d-1e0f9a8b7c6d",
        "comment": comment,
        "externalUrls": [],
        "sourceMetadata": { "unknown": "field" },
        "summary": null, "url": null, "startedAt": null, "endedAt": null, "archivedAt": null,
        "createdAt": "2026-03-02T14:05:10.977Z", "updatedAt": "2026-03-02T14:05:10.977Z"
    })
}

fn created(creator: &str, comment: Value) -> Value {
    json!({
        "type": "AgentSessionEvent",
        "action": "created",
        "createdAt": "2026-03-02T14:05:11.482Z",
        "organizationId": ORG,
        "oauthClientId": CLIENT,
        "appUserId": APP,
        "webhookId": "e4a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
        "webhookTimestamp": 1772460311613_i64,
        "agentSession": session("pending", creator, comment),
        "guidance": [{
            "body": "Open pull requests against `main` and run `cargo test` first.",
            "origin": { "type": "Team", "team": { "id": "f1e2d3c4-b5a6-4978-8a6b-5c4d3e2f1a0b", "key": "ENG",
                        "name": "Engineering", "displayName": "Engineering", "parentId": null } }
        }],
        "promptContext": "<issue identifier=\"ENG-142\"><title>Login test is flaky on CI</title><label>Bug</label></issue>"
    })
}

fn placeholder_comment() -> Value {
    json!({ "id": "a9b8c7d6-e5f4-4a3b-8c2d-1e0f9a8b7c6d",
            "body": "This thread is for an agent session with codegen-bridge.",
            "issueId": "c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e", "userId": null })
}

fn prompted(activity: Value) -> Value {
    json!({
        "type": "AgentSessionEvent",
        "action": "prompted",
        "createdAt": "2026-03-02T14:31:40.391Z",
        "organizationId": ORG,
        "oauthClientId": CLIENT,
        "appUserId": APP,
        "webhookId": "e4a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
        "webhookTimestamp": 1772461900502_i64,
        "agentSession": session("active", DANA, Value::Null),
        "agentActivity": activity
    })
}

#[test]
fn parses_created_from_a_delegation() {
    let event = parse_event(&delivery(created(DANA, placeholder_comment()))).unwrap();
    let WebhookEvent::SessionCreated(e) = &event else {
        panic!("expected SessionCreated, got {event:?}")
    };
    assert_eq!(e.session.id, "7c9e6679-7425-40de-944b-e07fc1f90ae7");
    assert_eq!(e.app_user_id, APP);
    assert_eq!(event.oauth_client_id(), Some(CLIENT));
    let issue = e.session.issue.as_ref().unwrap();
    assert_eq!(issue.identifier.as_deref(), Some("ENG-142"));
    assert_eq!(issue.title.as_deref(), Some("Login test is flaky on CI"));
    assert_eq!(issue.team.as_ref().unwrap().key.as_deref(), Some("ENG"));
    assert!(
        issue
            .description
            .as_deref()
            .unwrap()
            .contains("login.spec.ts")
    );
    assert_eq!(
        e.session.creator.as_ref().unwrap().name.as_deref(),
        Some("Dana Reyes")
    );
    assert_eq!(e.guidance.len(), 1);
    assert_eq!(
        e.guidance[0]
            .origin
            .as_ref()
            .unwrap()
            .team
            .as_ref()
            .unwrap()
            .key
            .as_deref(),
        Some("ENG")
    );
    assert!(
        e.prompt_context
            .as_deref()
            .unwrap()
            .contains("<label>Bug</label>")
    );
    assert!(!e.is_self_triggered());
    // The authorless placeholder is not a request.
    assert_eq!(e.mention_text(), None);
    assert_eq!(
        event.semantic_key().as_deref(),
        Some("session-created:7c9e6679-7425-40de-944b-e07fc1f90ae7")
    );
}

#[test]
fn created_from_a_mention_exposes_the_comment_and_detects_self_trigger() {
    let comment = json!({ "id": "c-1", "body": "@codegen please fix the flake", "userId": DANA });
    let WebhookEvent::SessionCreated(e) = parse_event(&delivery(created(DANA, comment))).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.mention_text(), Some("@codegen please fix the flake"));

    let WebhookEvent::SessionCreated(own) =
        parse_event(&delivery(created(APP, placeholder_comment()))).unwrap()
    else {
        panic!()
    };
    assert!(own.is_self_triggered());
}

#[test]
fn prompted_reads_content_body_and_keys_on_activity_id() {
    let event = parse_event(&delivery(prompted(json!({
        "id": "4e7f1a2b-9c3d-4e5f-a6b7-c8d9e0f1a2b3",
        "agentSessionId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "content": { "type": "prompt", "body": "Please also cover the logout test." },
        "signal": null,
        "userId": DANA,
        "user": { "id": DANA, "name": "Dana Reyes", "email": "dana@acme.dev", "url": "u" },
        "createdAt": "2026-03-02T14:31:40.251Z", "updatedAt": "2026-03-02T14:31:40.251Z"
    }))))
    .unwrap();
    let WebhookEvent::SessionPrompted(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.message, "Please also cover the logout test.");
    assert_eq!(e.oauth_client_id.as_deref(), Some(CLIENT));
    assert!(!e.stop);
    assert_eq!(e.user.as_ref().unwrap().id, DANA);
    assert_eq!(
        event.semantic_key().as_deref(),
        Some("session-prompted:4e7f1a2b-9c3d-4e5f-a6b7-c8d9e0f1a2b3")
    );
}

#[test]
fn prompted_falls_back_to_legacy_body_and_detects_stop() {
    let WebhookEvent::SessionPrompted(e) = parse_event(&delivery(prompted(json!({
        "id": "a-2", "body": "legacy text", "signal": "stop"
    }))))
    .unwrap() else {
        panic!()
    };
    assert_eq!(e.message, "legacy text");
    assert!(e.stop);
    assert_eq!(e.signal.as_deref(), Some("stop"));
}

#[test]
fn prompted_without_activity_is_a_parse_error() {
    let mut p = prompted(Value::Null);
    p.as_object_mut().unwrap().remove("agentActivity");
    let err = parse_event(&delivery(p)).unwrap_err();
    assert_eq!(err.action, "prompted");
    assert!(err.message.contains("agentActivity"), "{err}");
}

fn issue_update(data_extra: Value, updated_from: Value) -> Value {
    let mut data = json!({
        "id": "c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e", "identifier": "ENG-142", "number": 142,
        "title": "Login test is flaky on CI", "priority": 2, "priorityLabel": "High",
        "teamId": "f1e2d3c4-b5a6-4978-8a6b-5c4d3e2f1a0b",
        "stateId": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d",
        "state": { "id": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "name": "Canceled", "type": "canceled", "color": "#95a2b3" },
        "labelIds": ["8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"],
        "labels": [{ "id": "8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b", "name": "Bug", "color": "#eb5757", "parentId": null }],
        "delegateId": null, "parentId": null, "subscriberIds": [],
        "createdAt": "2026-03-01T09:12:44.530Z", "updatedAt": "2026-03-02T15:10:02.101Z"
    });
    for (k, v) in data_extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({
        "action": "update", "type": "Issue", "createdAt": "2026-03-02T15:10:02.244Z",
        "organizationId": ORG, "webhookId": "17b2c3d4", "webhookTimestamp": 1772464202377_i64,
        "url": "https://linear.app/acme/issue/ENG-142",
        "actor": { "id": DANA, "type": "user", "name": "Dana Reyes" },
        "data": data,
        "updatedFrom": updated_from
    })
}

#[test]
fn issue_update_detects_cancel_and_undelegation() {
    let event = parse_event(&delivery(issue_update(
        json!({}),
        json!({ "stateId": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a", "delegateId": APP,
                "canceledAt": null, "updatedAt": "2026-03-02T14:05:13.120Z" }),
    )))
    .unwrap();
    let WebhookEvent::IssueUpdated(e) = &event else {
        panic!("{event:?}")
    };
    assert!(e.state_changed());
    assert_eq!(
        e.previous_state_id(),
        Some("2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a")
    );
    assert!(e.became_terminal());
    assert!(e.delegate_removed(APP));
    assert!(!e.delegate_removed(DANA));
    assert!(!e.title_changed());
    assert_eq!(e.issue.labels[0].name.as_deref(), Some("Bug"));
    assert_eq!(
        event.semantic_key().as_deref(),
        Some("Issue:c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e:2026-03-02T15:10:02.101Z")
    );
}

#[test]
fn issue_update_title_edit_is_not_terminal_nor_undelegation() {
    let WebhookEvent::IssueUpdated(e) = parse_event(&delivery(issue_update(
        json!({ "delegateId": APP, "state": { "id": "s", "name": "In Progress", "type": "started" } }),
        json!({ "title": "Old title", "description": null }),
    )))
    .unwrap() else {
        panic!()
    };
    assert!(e.title_changed());
    assert!(e.description_changed());
    assert!(!e.state_changed());
    assert!(!e.became_terminal());
    assert!(!e.delegate_removed(APP));
}

#[test]
fn issue_remove_comment_and_notifications() {
    let mut removed = issue_update(json!({}), Value::Null);
    removed["action"] = json!("remove");
    assert_eq!(
        parse_event(&delivery(removed)).unwrap(),
        WebhookEvent::IssueRemoved {
            organization_id: ORG.into(),
            issue_id: "c2f4e6a8-1b3d-4f5a-9c7e-0d2b4f6a8c1e".into()
        }
    );

    let comment = json!({
        "action": "create", "type": "Comment", "organizationId": ORG, "webhookTimestamp": 1,
        "data": { "id": "cm-1", "body": "Looks good", "issueId": "i-1", "parentId": "cm-0",
                  "userId": DANA, "updatedAt": "2026-03-02T15:00:00.000Z" }
    });
    let WebhookEvent::Comment(c) = parse_event(&delivery(comment)).unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.action.as_str(), c.comment.body.as_deref()),
        ("create", Some("Looks good"))
    );
    assert_eq!(c.comment.parent_id.as_deref(), Some("cm-0"));

    let notification = json!({
        "type": "AppUserNotification", "action": "issueUnassignedFromYou", "organizationId": ORG,
        "appUserId": APP, "oauthClientId": CLIENT, "webhookTimestamp": 1,
        "notification": { "id": "n-1", "type": "issueUnassignedFromYou", "issueId": "i-9" }
    });
    let WebhookEvent::AppUserNotification(n) = parse_event(&delivery(notification)).unwrap() else {
        panic!()
    };
    assert!(n.is_actionable());
    assert_eq!(n.issue_id(), Some("i-9"));
    assert_eq!(n.app_user_id.as_deref(), Some(APP));
    assert_eq!(n.oauth_client_id.as_deref(), Some(CLIENT));
}

#[test]
fn unknown_types_are_not_errors() {
    let event = parse_event(&delivery(json!({
        "type": "Project", "action": "create", "organizationId": ORG
    })))
    .unwrap();
    assert_eq!(
        event,
        WebhookEvent::Unknown {
            event_type: "Project".into(),
            action: "create".into()
        }
    );
    assert_eq!(event.semantic_key(), None);
    assert_eq!(event.oauth_client_id(), None);
}

#[test]
fn oauth_app_revoked_names_the_installation() {
    let payload = json!({
        "type": "OAuthApp", "action": "revoked", "organizationId": ORG, "oauthClientId": CLIENT,
        "createdAt": "2026-03-02T16:00:00.000Z", "webhookId": "w-1", "webhookTimestamp": 1772467200000_i64
    });
    let d = delivery(payload);
    assert_eq!(d.oauth_client_id(), Some(CLIENT));
    let revoked = parse_event(&d).unwrap();
    assert_eq!(
        revoked,
        WebhookEvent::OAuthRevoked {
            organization_id: ORG.into(),
            oauth_client_id: Some(CLIENT.into())
        }
    );
    assert_eq!(revoked.oauth_client_id(), Some(CLIENT));
    assert_eq!(revoked.semantic_key(), None);
}

#[test]
fn permission_change_lists_added_and_removed_teams() {
    let payload = json!({
        "type": "PermissionChange", "action": "teamAccessChanged", "organizationId": ORG,
        "oauthClientId": CLIENT, "appUserId": APP, "canAccessAllPublicTeams": false,
        "addedTeamIds": ["team-design"], "removedTeamIds": ["team-ops", "team-infra"],
        "createdAt": "2026-03-02T16:00:00.000Z", "webhookId": "w-2", "webhookTimestamp": 1772467200000_i64
    });
    let event = parse_event(&delivery(payload)).unwrap();
    let WebhookEvent::PermissionChanged(p) = &event else {
        panic!("expected PermissionChanged, got {event:?}")
    };
    assert_eq!(p.organization_id, ORG);
    assert_eq!(p.action, "teamAccessChanged");
    assert_eq!(p.app_user_id.as_deref(), Some(APP));
    assert_eq!(p.can_access_all_public_teams, Some(false));
    assert_eq!(p.added_team_ids, ["team-design"]);
    assert_eq!(p.removed_team_ids, ["team-ops", "team-infra"]);
    assert_eq!(event.oauth_client_id(), Some(CLIENT));

    // Lenient like the others: missing lists are empty, not an error.
    let sparse = parse_event(&delivery(json!({
        "type": "PermissionChange", "action": "teamAccessChanged", "organizationId": ORG
    })))
    .unwrap();
    let WebhookEvent::PermissionChanged(p) = sparse else {
        panic!()
    };
    assert!(p.added_team_ids.is_empty() && p.removed_team_ids.is_empty());
    assert_eq!(p.oauth_client_id, None);

    // A wrong shape is a parse error, not a silently empty event.
    let bad = parse_event(&delivery(json!({
        "type": "PermissionChange", "action": "teamAccessChanged", "organizationId": ORG,
        "addedTeamIds": "team-design"
    })));
    assert!(bad.is_err());
}
