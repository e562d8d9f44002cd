//! Webhook bodies, shaped like Linear's `*WebhookPayload` types
//! (`linear-agent-api.md` §3–§4). `webhookTimestamp` is added per attempt
//! by the sender.

use chrono::Utc;
use serde_json::{Value, json};

use super::model::{Activity, Comment, Issue, Session, User};
use super::world::{Outgoing, World};

fn priority_label(p: u8) -> &'static str {
    match p {
        1 => "Urgent",
        2 => "High",
        3 => "Medium",
        4 => "Low",
        _ => "No priority",
    }
}

impl World {
    pub(crate) fn issue_url(&self, issue: &Issue) -> String {
        let slug: String = issue
            .title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        format!(
            "https://linear.app/{}/issue/{}/{slug}",
            self.identity.url_key, issue.identifier
        )
    }

    pub(crate) fn user_url(&self, user: &User) -> String {
        let handle = user.name.to_lowercase().replace(' ', "");
        format!(
            "https://linear.app/{}/profiles/{handle}",
            self.identity.url_key
        )
    }

    pub(crate) fn user_payload(&self, id: Option<&str>) -> Value {
        match id.and_then(|id| self.user(id)) {
            Some(u) => json!({
                "id": u.id, "name": u.name, "email": u.email,
                "avatarUrl": null, "url": self.user_url(u),
            }),
            None => Value::Null,
        }
    }

    fn team_payload(&self, team_id: &str) -> Value {
        match self.team(team_id) {
            Some(t) => json!({"id": t.id, "key": t.key, "name": t.name}),
            None => Value::Null,
        }
    }

    /// `IssueWebhookPayload` (the fields agents read).
    pub(crate) fn issue_payload(&self, issue: &Issue) -> Value {
        let state = self
            .state(&issue.state_id)
            .map(|s| json!({"id": s.id, "name": s.name, "type": s.state_type, "color": s.color}));
        let labels: Vec<Value> = issue
            .label_ids
            .iter()
            .filter_map(|id| self.label(id))
            .map(|l| json!({"id": l.id, "name": l.name, "color": l.color, "parentId": l.parent_id}))
            .collect();
        let state_type = self.state(&issue.state_id).map(|s| s.state_type.as_str());
        let at = |ty: &str| {
            if state_type == Some(ty) {
                json!(issue.updated_at)
            } else {
                Value::Null
            }
        };
        json!({
            "id": issue.id,
            "identifier": issue.identifier,
            "number": issue.number,
            "title": issue.title,
            "description": issue.description,
            "url": self.issue_url(issue),
            "priority": issue.priority,
            "priorityLabel": priority_label(issue.priority),
            "teamId": issue.team_id,
            "team": self.team_payload(&issue.team_id),
            "stateId": issue.state_id,
            "state": state,
            "labelIds": issue.label_ids,
            "labels": labels,
            "assigneeId": issue.assignee_id,
            "assignee": self.user_payload(issue.assignee_id.as_deref()),
            "delegateId": issue.delegate_id,
            "delegate": self.user_payload(issue.delegate_id.as_deref()),
            "parentId": issue.parent_id,
            "projectId": issue.project_id,
            "project": issue.project_id.as_deref().and_then(|p| self.project(p)).map(|p| json!({"id": p.id, "name": p.name})),
            "creatorId": issue.creator_id,
            "subscriberIds": [],
            "previousIdentifiers": [],
            "reactionData": [],
            "startedAt": at("started"),
            "completedAt": at("completed"),
            "canceledAt": at("canceled"),
            "createdAt": issue.created_at,
            "updatedAt": issue.updated_at,
            "archivedAt": null,
        })
    }

    fn issue_summary(&self, issue_id: Option<&str>) -> Value {
        match issue_id.and_then(|id| self.issue(id)) {
            Some(i) => json!({
                "id": i.id, "identifier": i.identifier, "title": i.title,
                "description": i.description, "url": self.issue_url(i),
                "teamId": i.team_id, "team": self.team_payload(&i.team_id),
            }),
            None => Value::Null,
        }
    }

    /// `CommentWebhookPayload`.
    pub(crate) fn comment_payload(&self, c: &Comment) -> Value {
        json!({
            "id": c.id,
            "body": c.body,
            "issueId": c.issue_id,
            "issue": self.issue_summary(Some(&c.issue_id)),
            "parentId": c.parent_id,
            "userId": c.user_id,
            "user": self.user_payload(c.user_id.as_deref()),
            "botActor": null,
            "editedAt": null,
            "resolvedAt": null,
            "quotedText": null,
            "reactionData": [],
            "createdAt": c.created_at,
            "updatedAt": c.updated_at,
            "archivedAt": null,
        })
    }

    /// The data-change envelope (`EntityWebhookPayload`).
    pub(crate) fn entity_event(
        &self,
        action: &str,
        entity: &str,
        data: Value,
        updated_from: Option<Value>,
        actor_id: Option<&str>,
    ) -> Outgoing {
        let url = data.get("url").cloned().unwrap_or(Value::Null);
        let actor = match actor_id.and_then(|id| self.user(id)) {
            Some(u) if u.app => json!({"id": u.id, "type": "oauth_client", "name": u.name}),
            Some(u) => json!({
                "id": u.id, "type": "user", "name": u.name, "email": u.email,
                "avatarUrl": null, "url": self.user_url(u),
            }),
            None => Value::Null,
        };
        let mut body = json!({
            "action": action,
            "type": entity,
            "createdAt": Utc::now(),
            "organizationId": self.identity.organization_id,
            "webhookId": self.identity.webhook_id,
            "url": url,
            "actor": actor,
            "data": data,
        });
        if let Some(from) = updated_from {
            body["updatedFrom"] = from;
        }
        Outgoing {
            event: entity.to_string(),
            body,
        }
    }

    fn session_payload(&self, s: &Session) -> Value {
        let status = self.session_status(&s.id, Utc::now());
        let comment = s.comment_id.as_deref().and_then(|c| self.comment(c)).map(
            |c| json!({"id": c.id, "body": c.body, "issueId": c.issue_id, "userId": c.user_id}),
        );
        json!({
            "id": s.id,
            "type": "commentThread",
            "status": status.as_str(),
            "appUserId": self.identity.agent_user_id,
            "organizationId": self.identity.organization_id,
            "creatorId": s.creator_id,
            "creator": self.user_payload(s.creator_id.as_deref()),
            "issueId": s.issue_id,
            "issue": self.issue_summary(s.issue_id.as_deref()),
            "commentId": s.comment_id,
            "comment": comment,
            "sourceCommentId": null,
            "sourceMetadata": null,
            "externalUrls": s.external_urls,
            "summary": null,
            "url": null,
            "startedAt": s.started_at,
            "endedAt": s.ended_at,
            "archivedAt": null,
            "createdAt": s.created_at,
            "updatedAt": s.updated_at,
        })
    }

    /// The `promptContext` of a `created` event: Linear's XML-like summary.
    fn prompt_context(&self, s: &Session) -> Value {
        let Some(issue) = s.issue_id.as_deref().and_then(|id| self.issue(id)) else {
            return Value::Null;
        };
        let esc = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut out = format!(
            "<issue identifier=\"{}\">\n<title>{}</title>\n",
            issue.identifier,
            esc(&issue.title)
        );
        if let Some(d) = &issue.description {
            out += &format!("<description>{}</description>\n", esc(d));
        }
        if let Some(team) = self.team(&issue.team_id) {
            out += &format!("<team name=\"{}\"/>\n", esc(&team.name));
        }
        for l in issue.label_ids.iter().filter_map(|id| self.label(id)) {
            out += &format!("<label>{}</label>\n", esc(&l.name));
        }
        if let Some(p) = issue.parent_id.as_deref().and_then(|p| self.issue(p)) {
            out += &format!(
                "<parent-issue identifier=\"{}\">{}</parent-issue>\n",
                p.identifier,
                esc(&p.title)
            );
        }
        if let Some(p) = issue.project_id.as_deref().and_then(|p| self.project(p)) {
            out += &format!("<project name=\"{}\"/>\n", esc(&p.name));
        }
        out += "</issue>";
        if let Some(c) = s.comment_id.as_deref().and_then(|c| self.comment(c))
            && c.user_id.is_some()
        {
            {
                out += &format!(
                    "\n\n<primary-directive-thread comment-id=\"{}\">\n<comment author=\"{}\">{}</comment>\n</primary-directive-thread>",
                    c.id,
                    c.user_id
                        .as_deref()
                        .and_then(|u| self.user(u))
                        .map_or("", |u| u.name.as_str()),
                    esc(&c.body)
                );
            }
        }
        Value::String(out)
    }

    fn activity_payload(&self, a: &Activity) -> Value {
        json!({
            "id": a.id,
            "agentSessionId": a.session_id,
            "content": a.content,
            "signal": a.signal,
            "signalMetadata": a.signal_metadata,
            "sourceCommentId": a.source_comment_id,
            "userId": a.user_id,
            "user": self.user_payload(Some(&a.user_id)),
            "archivedAt": null,
            "createdAt": a.created_at,
            "updatedAt": a.created_at,
        })
    }

    /// `AgentSessionEvent` `created` / `prompted`.
    pub(crate) fn session_event(
        &self,
        action: &str,
        s: &Session,
        activity: Option<&Activity>,
    ) -> Outgoing {
        let mut body = json!({
            "type": "AgentSessionEvent",
            "action": action,
            "createdAt": Utc::now(),
            "organizationId": self.identity.organization_id,
            "oauthClientId": self.identity.oauth_client_id,
            "appUserId": self.identity.agent_user_id,
            "webhookId": self.identity.webhook_id,
            "agentSession": self.session_payload(s),
        });
        if action == "created" {
            body["promptContext"] = self.prompt_context(s);
            body["guidance"] = json!([]);
            body["previousComments"] = json!([]);
        }
        if let Some(a) = activity {
            body["agentActivity"] = self.activity_payload(a);
        }
        Outgoing {
            event: "AgentSessionEvent".into(),
            body,
        }
    }

    /// `AppUserNotification`, e.g. `issueUnassignedFromYou`.
    pub(crate) fn notification(&self, action: &str, issue: &Issue, actor_id: &str) -> Outgoing {
        let body = json!({
            "type": "AppUserNotification",
            "action": action,
            "createdAt": Utc::now(),
            "organizationId": self.identity.organization_id,
            "oauthClientId": self.identity.oauth_client_id,
            "appUserId": self.identity.agent_user_id,
            "webhookId": self.identity.webhook_id,
            "notification": {
                "id": uuid::Uuid::new_v4().to_string(),
                "type": action,
                "userId": self.identity.agent_user_id,
                "actorId": actor_id,
                "actor": self.user_payload(Some(actor_id)),
                "issueId": issue.id,
                "issue": self.issue_summary(Some(&issue.id)),
                "createdAt": Utc::now(),
                "updatedAt": Utc::now(),
                "archivedAt": null,
            },
        });
        Outgoing {
            event: "AppUserNotification".into(),
            body,
        }
    }

    /// `OAuthApp` `revoked` (`OAuthAppWebhookPayload`): the app was
    /// uninstalled from this organization.
    pub(crate) fn oauth_app_revoked(&self, client_id: &str) -> Outgoing {
        Outgoing {
            event: "OAuthApp".into(),
            body: json!({
                "type": "OAuthApp",
                "action": "revoked",
                "createdAt": Utc::now(),
                "organizationId": self.identity.organization_id,
                "oauthClientId": client_id,
                "webhookId": self.identity.webhook_id,
            }),
        }
    }

    /// `PermissionChange` `teamAccessChanged`
    /// (`AppUserTeamAccessChangedWebhookPayload`). That `type` repeats the
    /// `Linear-Event` name is inferred from the other events.
    pub(crate) fn team_access_changed(
        &self,
        added: &[String],
        removed: &[String],
        all_public: bool,
    ) -> Outgoing {
        Outgoing {
            event: "PermissionChange".into(),
            body: json!({
                "type": "PermissionChange",
                "action": "teamAccessChanged",
                "createdAt": Utc::now(),
                "organizationId": self.identity.organization_id,
                "oauthClientId": self.identity.oauth_client_id,
                "appUserId": self.identity.agent_user_id,
                "canAccessAllPublicTeams": all_public,
                "addedTeamIds": added,
                "removedTeamIds": removed,
                "webhookId": self.identity.webhook_id,
            }),
        }
    }
}
