//! Typed webhook events.
//!
//! Parsing is lenient on purpose: real deliveries omit nullable fields and add
//! fields the SDL does not list, so every optional field is an `Option` and
//! unknown fields are ignored. Event types we do not act on become
//! [`WebhookEvent::Unknown`] rather than errors, so they are still recorded.

use serde::Deserialize;
use serde_json::Value;

use super::verify::VerifiedDelivery;

/// A user as embedded in webhook payloads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamRef {
    pub id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// A workflow state as webhooks carry it: the same entity, and type, the
/// client reads (fields a webhook omits are `None`).
pub use crate::client::types::WorkflowState as StateRef;

/// The issue as carried by agent-session and issue webhooks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIssue {
    pub id: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub team: Option<TeamRef>,
    #[serde(default)]
    pub state_id: Option<String>,
    #[serde(default)]
    pub state: Option<StateRef>,
    #[serde(default)]
    pub labels: Vec<LabelRef>,
    #[serde(default)]
    pub label_ids: Vec<String>,
    #[serde(default)]
    pub delegate_id: Option<String>,
    #[serde(default)]
    pub assignee_id: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    /// 0 none, 1 urgent … 4 low.
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub creator_id: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookComment {
    pub id: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub issue_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A guidance rule; the nearest team's rule wins over the organization's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuidanceRule {
    pub body: String,
    #[serde(default)]
    pub origin: Option<GuidanceOrigin>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuidanceOrigin {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub team: Option<TeamRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSession {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub issue_id: Option<String>,
    #[serde(default)]
    pub issue: Option<WebhookIssue>,
    #[serde(default)]
    pub comment_id: Option<String>,
    /// The thread's root comment (for a delegation, Linear's authorless
    /// "This thread is for an agent session…" placeholder).
    #[serde(default)]
    pub comment: Option<WebhookComment>,
    #[serde(default)]
    pub creator_id: Option<String>,
    #[serde(default)]
    pub creator: Option<WebhookUser>,
    #[serde(default)]
    pub url: Option<String>,
}

/// `AgentSessionEvent` / `created`: we were delegated an issue or @mentioned.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCreated {
    pub organization_id: String,
    /// The OAuth app the session is for; with `organization_id` it names
    /// the installation.
    pub oauth_client_id: Option<String>,
    pub app_user_id: String,
    pub session: AgentSession,
    pub prompt_context: Option<String>,
    pub guidance: Vec<GuidanceRule>,
    pub previous_comments: Vec<WebhookComment>,
}

impl SessionCreated {
    /// Sessions our own app started must be ignored (self-trigger loops).
    pub fn is_self_triggered(&self) -> bool {
        self.session.creator_id.as_deref() == Some(self.app_user_id.as_str())
    }

    /// The request text of an @mention: the root comment body, unless it is
    /// Linear's authorless delegation placeholder (no `userId`).
    pub fn mention_text(&self) -> Option<&str> {
        let comment = self.session.comment.as_ref()?;
        comment.user_id.as_ref()?;
        comment.body.as_deref().filter(|b| !b.trim().is_empty())
    }
}

/// `AgentSessionEvent` / `prompted`: a user wrote into an existing session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPrompted {
    pub organization_id: String,
    pub oauth_client_id: Option<String>,
    pub app_user_id: String,
    pub session: AgentSession,
    /// `agentActivity.id`: the dedupe key for prompts.
    pub activity_id: String,
    /// From `agentActivity.content.body`, falling back to `agentActivity.body`.
    pub message: String,
    /// `agentActivity.signal == "stop"`: halt the run.
    pub stop: bool,
    pub signal: Option<String>,
    pub user: Option<WebhookUser>,
}

/// `Issue` / `create`.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueCreated {
    pub organization_id: String,
    pub issue: WebhookIssue,
}

/// `Issue` / `update`, with the previous values of what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueUpdated {
    pub organization_id: String,
    pub issue: WebhookIssue,
    /// `updatedFrom`: previous values of changed fields (`null` = was unset).
    pub updated_from: serde_json::Map<String, Value>,
}

impl IssueUpdated {
    fn changed(&self, field: &str) -> bool {
        self.updated_from.contains_key(field)
    }
    pub fn state_changed(&self) -> bool {
        self.changed("stateId")
    }
    /// The previous state id, when the state changed.
    pub fn previous_state_id(&self) -> Option<&str> {
        self.updated_from.get("stateId").and_then(|v| v.as_str())
    }
    /// Moved into `completed`, `canceled` or `duplicate` in this edit.
    pub fn became_terminal(&self) -> bool {
        self.state_changed() && self.issue.state.as_ref().is_some_and(StateRef::is_terminal)
    }
    /// `app_user_id` was the delegate before this edit and is not any more.
    pub fn delegate_removed(&self, app_user_id: &str) -> bool {
        self.updated_from.get("delegateId").and_then(|v| v.as_str()) == Some(app_user_id)
            && self.issue.delegate_id.as_deref() != Some(app_user_id)
    }
    pub fn title_changed(&self) -> bool {
        self.changed("title")
    }
    pub fn description_changed(&self) -> bool {
        self.changed("description")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommentEvent {
    pub organization_id: String,
    /// `create`, `update` or `remove`.
    pub action: String,
    pub comment: WebhookComment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppUserNotification {
    pub organization_id: String,
    pub oauth_client_id: Option<String>,
    pub app_user_id: Option<String>,
    /// e.g. `issueUnassignedFromYou`, `issueStatusChanged`.
    pub action: String,
    pub notification: Value,
}

impl AppUserNotification {
    /// Only these notifications carry information the session events do not.
    pub fn is_actionable(&self) -> bool {
        matches!(
            self.action.as_str(),
            "issueUnassignedFromYou" | "issueStatusChanged"
        )
    }
    /// The issue the notification is about, when it names one.
    pub fn issue_id(&self) -> Option<&str> {
        self.notification
            .get("issueId")
            .or_else(|| self.notification.get("issue").and_then(|i| i.get("id")))
            .and_then(|v| v.as_str())
    }
}

/// `PermissionChange` / `teamAccessChanged`: the teams our app user can see
/// changed (an admin added or removed it from teams).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionChanged {
    #[serde(skip)]
    pub organization_id: String,
    #[serde(default)]
    pub oauth_client_id: Option<String>,
    #[serde(default)]
    pub app_user_id: Option<String>,
    /// `teamAccessChanged` is the only action Linear documents.
    #[serde(skip)]
    pub action: String,
    #[serde(default)]
    pub can_access_all_public_teams: Option<bool>,
    #[serde(default)]
    pub added_team_ids: Vec<String>,
    #[serde(default)]
    pub removed_team_ids: Vec<String>,
}

/// Every webhook we understand, plus a catch-all.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    SessionCreated(Box<SessionCreated>),
    SessionPrompted(Box<SessionPrompted>),
    /// `Issue` / `create`: a new issue (proactive triage looks at it).
    IssueCreated(Box<IssueCreated>),
    IssueUpdated(Box<IssueUpdated>),
    IssueRemoved {
        organization_id: String,
        issue_id: String,
    },
    Comment(Box<CommentEvent>),
    AppUserNotification(Box<AppUserNotification>),
    /// `OAuthApp` / `revoked`: drop that workspace's tokens.
    OAuthRevoked {
        organization_id: String,
        oauth_client_id: Option<String>,
    },
    PermissionChanged(Box<PermissionChanged>),
    /// Anything else; recorded, never an error.
    Unknown {
        event_type: String,
        action: String,
    },
}

impl WebhookEvent {
    /// A dedupe key derived from meaning, complementing `Linear-Delivery`
    /// (Linear does not say whether retries reuse the delivery id).
    pub fn semantic_key(&self) -> Option<String> {
        match self {
            Self::SessionCreated(e) => Some(format!("session-created:{}", e.session.id)),
            Self::SessionPrompted(e) => Some(format!("session-prompted:{}", e.activity_id)),
            Self::IssueUpdated(e) => e
                .issue
                .updated_at
                .as_ref()
                .map(|at| format!("Issue:{}:{at}", e.issue.id)),
            Self::Comment(e) => e
                .comment
                .updated_at
                .as_ref()
                .map(|at| format!("Comment:{}:{}:{at}", e.action, e.comment.id)),
            Self::IssueRemoved { issue_id, .. } => Some(format!("Issue:remove:{issue_id}")),
            Self::IssueCreated(e) => Some(format!("Issue:create:{}", e.issue.id)),
            Self::AppUserNotification(_)
            | Self::OAuthRevoked { .. }
            | Self::PermissionChanged(_)
            | Self::Unknown { .. } => None,
        }
    }

    /// `oauthClientId`, on the events that carry it (agent sessions, app
    /// notifications, `OAuthApp`, `PermissionChange`; not data-change
    /// events). With the organization id it names the installation.
    pub fn oauth_client_id(&self) -> Option<&str> {
        match self {
            Self::SessionCreated(e) => e.oauth_client_id.as_deref(),
            Self::SessionPrompted(e) => e.oauth_client_id.as_deref(),
            Self::AppUserNotification(e) => e.oauth_client_id.as_deref(),
            Self::OAuthRevoked {
                oauth_client_id, ..
            } => oauth_client_id.as_deref(),
            Self::PermissionChanged(e) => e.oauth_client_id.as_deref(),
            Self::IssueCreated(_)
            | Self::IssueUpdated(_)
            | Self::IssueRemoved { .. }
            | Self::Comment(_)
            | Self::Unknown { .. } => None,
        }
    }
}

/// A payload that claimed a known type but lacked required fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type}/{action} payload is malformed: {message}")]
pub struct ParseError {
    pub event_type: String,
    pub action: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionEnvelope {
    #[serde(default)]
    app_user_id: Option<String>,
    #[serde(default)]
    oauth_client_id: Option<String>,
    agent_session: AgentSession,
    #[serde(default)]
    agent_activity: Option<ActivityPayload>,
    #[serde(default)]
    prompt_context: Option<String>,
    #[serde(default)]
    guidance: Option<Vec<GuidanceRule>>,
    #[serde(default)]
    previous_comments: Option<Vec<WebhookComment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityPayload {
    id: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    user: Option<WebhookUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntityEnvelope<T> {
    data: T,
    #[serde(default)]
    updated_from: Option<serde_json::Map<String, Value>>,
}

/// Parses a verified delivery into a typed event.
pub fn parse_event(delivery: &VerifiedDelivery) -> Result<WebhookEvent, ParseError> {
    let event_type = delivery.event_type.as_str();
    let action = delivery.action.as_str();
    let org = delivery.organization_id.clone();
    let err = |e: serde_json::Error| ParseError {
        event_type: event_type.to_owned(),
        action: action.to_owned(),
        message: e.to_string(),
    };
    let payload = &delivery.payload;
    let event = match (event_type, action) {
        ("AgentSessionEvent", "created" | "prompted") => {
            let env = SessionEnvelope::deserialize(payload).map_err(err)?;
            let app_user_id = env.app_user_id.unwrap_or_default();
            if action == "created" {
                WebhookEvent::SessionCreated(Box::new(SessionCreated {
                    organization_id: org,
                    oauth_client_id: env.oauth_client_id,
                    app_user_id,
                    session: env.agent_session,
                    prompt_context: env.prompt_context,
                    guidance: env.guidance.unwrap_or_default(),
                    previous_comments: env.previous_comments.unwrap_or_default(),
                }))
            } else {
                let activity = env.agent_activity.ok_or_else(|| ParseError {
                    event_type: event_type.to_owned(),
                    action: action.to_owned(),
                    message: "prompted event has no agentActivity".into(),
                })?;
                let message = activity
                    .content
                    .as_ref()
                    .and_then(|c| c.get("body"))
                    .and_then(|b| b.as_str())
                    .filter(|b| !b.is_empty())
                    .map(str::to_owned)
                    .or(activity.body)
                    .unwrap_or_default();
                WebhookEvent::SessionPrompted(Box::new(SessionPrompted {
                    organization_id: org,
                    oauth_client_id: env.oauth_client_id,
                    app_user_id,
                    session: env.agent_session,
                    activity_id: activity.id,
                    message,
                    stop: activity.signal.as_deref() == Some("stop"),
                    signal: activity.signal,
                    user: activity.user,
                }))
            }
        }
        ("Issue", "create") => {
            let env = EntityEnvelope::<WebhookIssue>::deserialize(payload).map_err(err)?;
            WebhookEvent::IssueCreated(Box::new(IssueCreated {
                organization_id: org,
                issue: env.data,
            }))
        }
        ("Issue", "update") => {
            let env = EntityEnvelope::<WebhookIssue>::deserialize(payload).map_err(err)?;
            WebhookEvent::IssueUpdated(Box::new(IssueUpdated {
                organization_id: org,
                issue: env.data,
                updated_from: env.updated_from.unwrap_or_default(),
            }))
        }
        ("Issue", "remove") => {
            let env = EntityEnvelope::<WebhookIssue>::deserialize(payload).map_err(err)?;
            WebhookEvent::IssueRemoved {
                organization_id: org,
                issue_id: env.data.id,
            }
        }
        ("Comment", "create" | "update" | "remove") => {
            let env = EntityEnvelope::<WebhookComment>::deserialize(payload).map_err(err)?;
            WebhookEvent::Comment(Box::new(CommentEvent {
                organization_id: org,
                action: action.to_owned(),
                comment: env.data,
            }))
        }
        ("AppUserNotification", _) => {
            WebhookEvent::AppUserNotification(Box::new(AppUserNotification {
                organization_id: org,
                oauth_client_id: text_field(payload, "oauthClientId"),
                app_user_id: text_field(payload, "appUserId"),
                action: action.to_owned(),
                notification: payload.get("notification").cloned().unwrap_or(Value::Null),
            }))
        }
        ("OAuthApp", "revoked") => WebhookEvent::OAuthRevoked {
            organization_id: org,
            oauth_client_id: text_field(payload, "oauthClientId"),
        },
        ("PermissionChange", _) => {
            let mut e = PermissionChanged::deserialize(payload).map_err(err)?;
            e.organization_id = org;
            e.action = action.to_owned();
            WebhookEvent::PermissionChanged(Box::new(e))
        }
        _ => WebhookEvent::Unknown {
            event_type: event_type.to_owned(),
            action: action.to_owned(),
        },
    };
    Ok(event)
}

fn text_field(payload: &Value, key: &str) -> Option<String> {
    payload.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

#[cfg(test)]
mod tests;
