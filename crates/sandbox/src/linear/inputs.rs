//! What the control API accepts to build a scenario (also JSON bodies of the
//! `/_control/...` HTTP routes). Every field but the obvious one is optional.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewUser {
    pub id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    /// A workspace guest.
    pub guest: bool,
    /// Keys (or ids) of the teams the user belongs to; `None`: every team.
    pub teams: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewState {
    pub id: Option<String>,
    pub name: String,
    /// `triage`, `backlog`, `unstarted`, `started`, `completed`, `canceled`,
    /// `duplicate`.
    #[serde(rename = "type")]
    pub state_type: String,
    pub position: Option<f64>,
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewTeam {
    pub id: Option<String>,
    pub key: String,
    pub name: String,
    /// Empty: Linear's defaults (Backlog, Todo, In Progress, In Review,
    /// Done, Canceled, Duplicate).
    pub states: Vec<NewState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewLabel {
    pub id: Option<String>,
    pub name: String,
    pub color: Option<String>,
    pub team_id: Option<String>,
    pub parent_id: Option<String>,
    pub is_group: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewAttachment {
    pub title: String,
    pub subtitle: Option<String>,
    /// An image URL, a PR link, …
    pub url: String,
    pub source_type: Option<String>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewComment {
    pub body: String,
    /// Author; `None`: the default human user.
    pub user_id: Option<String>,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewIssue {
    pub id: Option<String>,
    /// `None`: the first team.
    pub team_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub priority: Option<u8>,
    /// `None`: the team's first backlog state.
    pub state_id: Option<String>,
    pub label_ids: Vec<String>,
    /// UUID or identifier: makes a sub-issue.
    pub parent_id: Option<String>,
    /// A project id; `project_name` creates one on the fly instead.
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub assignee_id: Option<String>,
    /// The agent user's id delegates at once (sends `created`).
    pub delegate_id: Option<String>,
    /// `None`: the default human user.
    pub creator_id: Option<String>,
    pub attachments: Vec<NewAttachment>,
    pub comments: Vec<NewComment>,
}

/// A partial issue update (GraphQL `IssueUpdateInput` and the control API).
/// Double options: outer `None` = leave, `Some(None)` = clear.
#[derive(Debug, Clone, Default)]
pub struct IssueChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub priority: Option<u8>,
    pub state_id: Option<String>,
    pub delegate_id: Option<Option<String>>,
    pub assignee_id: Option<Option<String>>,
    pub parent_id: Option<Option<String>>,
    pub label_ids: Option<Vec<String>>,
    pub added_label_ids: Vec<String>,
    pub removed_label_ids: Vec<String>,
}
