//! The simulated workspace's entities, as plain data.
//!
//! Field names follow Linear's SDL so the GraphQL layer can expose them
//! without translation tables. The control API returns clones of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workspace member (a human, or the agent's app user).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    /// True for the agent's app user (`actor=app`).
    pub app: bool,
    /// A workspace guest (`User.guest`).
    #[serde(default)]
    pub guest: bool,
    /// Ids of the teams the user is a member of; `None`: every team.
    #[serde(default)]
    pub team_ids: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub key: String,
    pub name: String,
    /// Number given to the team's next issue (`ENG-<n>`).
    pub next_issue_number: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowState {
    pub id: String,
    pub team_id: String,
    pub name: String,
    /// One of `triage`, `backlog`, `unstarted`, `started`, `completed`,
    /// `canceled`, `duplicate`.
    #[serde(rename = "type")]
    pub state_type: String,
    pub position: f64,
    pub color: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub name: String,
    pub color: String,
    /// `None` for a workspace label.
    pub team_id: Option<String>,
    /// The label group this label belongs to.
    pub parent_id: Option<String>,
    pub is_group: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: String,
    pub team_id: String,
    pub number: u32,
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    pub priority: u8,
    pub state_id: String,
    pub label_ids: Vec<String>,
    pub parent_id: Option<String>,
    pub project_id: Option<String>,
    pub assignee_id: Option<String>,
    pub delegate_id: Option<String>,
    pub creator_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub issue_id: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub url: String,
    pub source_type: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: String,
    pub issue_id: String,
    pub body: String,
    /// The comment this one replies to; `None` at top level.
    pub parent_id: Option<String>,
    /// `None` for Linear's authorless agent-session root comment.
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    pub id: String,
    /// "A blocks B": this is A.
    pub issue_id: String,
    /// "A blocks B": this is B, which sees the relation in `inverseRelations`.
    pub related_issue_id: String,
    /// `blocks`, `duplicate`, `related` or `similar`.
    #[serde(rename = "type")]
    pub relation_type: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalUrl {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub issue_id: Option<String>,
    /// The thread's root comment: Linear's authorless "This thread is for an
    /// agent session…" on delegation, the user's comment on a mention.
    pub comment_id: Option<String>,
    pub creator_id: Option<String>,
    pub external_urls: Vec<ExternalUrl>,
    /// Stored as sent: Linear's example sends an array although the SDL says
    /// JSONObject, so both are kept verbatim.
    pub plan: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// When the agent first answered (an activity or an external-URL update);
    /// decides the "did not respond" flag.
    pub first_agent_signal_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: String,
    pub session_id: String,
    /// `{type, body}` / `{type, action, parameter, result}` as received.
    pub content: Value,
    pub ephemeral: bool,
    pub signal: Option<String>,
    pub signal_metadata: Option<Value>,
    pub user_id: String,
    pub source_comment_id: Option<String>,
    /// An ephemeral activity is hidden once the agent's next one arrives.
    pub superseded: bool,
    pub created_at: DateTime<Utc>,
}

impl Activity {
    /// `content.type`: `thought`, `action`, `elicitation`, `response`,
    /// `error` or (users only) `prompt`.
    pub fn kind(&self) -> &str {
        self.content
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}
