//! Typed inputs and results of the operations in [`crate::operations`].
//! Results are lenient (optional fields, unknown fields ignored) because the
//! agent API is a developer preview and changes without notice.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Relay-style connection: only `nodes` and `pageInfo` are read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection<T> {
    #[serde(default = "Vec::new")]
    pub nodes: Vec<T>,
    #[serde(default)]
    pub page_info: Option<PageInfo>,
}

impl<T> Default for Connection<T> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            page_info: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    #[serde(default)]
    pub end_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowState {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `triage`, `backlog`, `unstarted`, `started`, `completed`, `canceled`, `duplicate`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub position: Option<f64>,
    #[serde(default)]
    pub color: Option<String>,
}

impl WorkflowState {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind.as_deref(),
            Some("completed" | "canceled" | "duplicate")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub is_group: Option<bool>,
    /// The label group this label belongs to.
    #[serde(default)]
    pub parent: Option<NamedRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateKind {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueSummary {
    pub id: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub state: Option<StateKind>,
}

impl IssueSummary {
    /// A blocker is open while its state is not completed/canceled/duplicate.
    pub fn is_open(&self) -> bool {
        !matches!(
            self.state.as_ref().and_then(|s| s.kind.as_deref()),
            Some("completed" | "canceled" | "duplicate")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    pub id: String,
    /// `blocks`, `duplicate`, `related`, `similar`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub related_issue: Option<IssueSummary>,
    #[serde(default)]
    pub issue: Option<IssueSummary>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub subtitle: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub user: Option<NamedRef>,
    #[serde(default)]
    pub bot_actor: Option<NamedRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegate {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// The result of `IssueStatus`: what reconciliation checks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueStatus {
    pub id: String,
    #[serde(default)]
    pub state: Option<WorkflowState>,
    #[serde(default)]
    pub delegate: Option<Delegate>,
}

/// The result of `IssueForAgent`: everything a run needs about its issue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueDetails {
    pub id: String,
    pub identifier: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub branch_name: Option<String>,
    #[serde(default)]
    pub state: Option<WorkflowState>,
    #[serde(default)]
    pub team: Option<Team>,
    #[serde(default)]
    pub project: Option<Project>,
    #[serde(default)]
    pub assignee: Option<NamedRef>,
    #[serde(default)]
    pub delegate: Option<Delegate>,
    #[serde(default)]
    pub parent: Option<IssueSummary>,
    #[serde(default)]
    pub children: Connection<IssueSummary>,
    #[serde(default)]
    pub labels: Connection<Label>,
    #[serde(default)]
    pub attachments: Connection<Attachment>,
    #[serde(default)]
    pub comments: Connection<Comment>,
    #[serde(default)]
    pub relations: Connection<Relation>,
    #[serde(default)]
    pub inverse_relations: Connection<Relation>,
}

impl IssueDetails {
    /// Issues blocking this one that are still open (`inverseRelations` of
    /// type `blocks`; the node's `issue` is the blocker).
    pub fn open_blockers(&self) -> Vec<&IssueSummary> {
        self.inverse_relations
            .nodes
            .iter()
            .filter(|r| r.kind == "blocks")
            .filter_map(|r| r.issue.as_ref())
            .filter(|i| i.is_open())
            .collect()
    }

    pub fn label_names(&self) -> Vec<&str> {
        self.labels.nodes.iter().map(|l| l.name.as_str()).collect()
    }
}

/// The result of `IssueChildren`: an epic's sub-issues.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueChildren {
    pub id: String,
    #[serde(default)]
    pub children: Connection<ChildIssue>,
}

/// One sub-issue as orchestration sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildIssue {
    pub id: String,
    pub identifier: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub sort_order: Option<f64>,
    #[serde(default)]
    pub state: Option<WorkflowState>,
    #[serde(default)]
    pub delegate: Option<NamedRef>,
    #[serde(default)]
    pub inverse_relations: Connection<Relation>,
}

impl ChildIssue {
    /// Issues that block this one (`blocks` inverse relations), open or not.
    pub fn blockers(&self) -> Vec<&IssueSummary> {
        self.inverse_relations
            .nodes
            .iter()
            .filter(|r| r.kind == "blocks")
            .filter_map(|r| r.issue.as_ref())
            .collect()
    }
}

/// The result of `TeamWorkflow`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamWorkflow {
    pub id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub states: Connection<WorkflowState>,
    #[serde(default)]
    pub labels: Connection<Label>,
}

impl TeamWorkflow {
    /// The `started` state with the lowest position (where work moves to).
    pub fn first_started_state(&self) -> Option<&WorkflowState> {
        self.states
            .nodes
            .iter()
            .filter(|s| s.kind.as_deref() == Some("started"))
            .min_by(|a, b| {
                a.position
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.position.unwrap_or(f64::MAX))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url_key: Option<String>,
}

/// The result of `Viewer`: our app user (equals `appUserId` in webhooks).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Viewer {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app: Option<bool>,
    #[serde(default)]
    pub organization: Option<Organization>,
}

/// The result of `Identity`: who an installation's token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The app user (equals `appUserId` in webhooks).
    pub app_user_id: String,
    pub app_user_name: String,
    /// The workspace (equals `organizationId` in webhooks).
    pub organization_id: String,
    pub organization_name: String,
    /// The workspace's URL slug (`linear.app/<url_key>`).
    pub url_key: String,
}

/// A link shown on the agent session (Codegen run, pull requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalUrl {
    pub label: String,
    pub url: String,
}

/// One plan step; the plan is always sent whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    pub content: String,
    /// `pending`, `inProgress`, `completed` or `canceled`.
    pub status: String,
}

/// `AgentSessionUpdateInput`: fields left `None` are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    /// Replaces the whole list (each URL unique).
    pub external_urls: Option<Vec<ExternalUrl>>,
    pub plan: Option<Vec<PlanStep>>,
}

impl SessionUpdate {
    pub(crate) fn to_input(&self) -> Value {
        let mut input = json!({});
        if let Some(urls) = &self.external_urls {
            input["externalUrls"] = json!(urls);
        }
        if let Some(plan) = &self.plan {
            // The SDL says JSONObject, but Linear's own example sends the
            // checklist as an array; we follow the documented example (the
            // project's working assumption for open question #2).
            input["plan"] = json!(plan);
        }
        input
    }
}

/// `IssueUpdateInput`: fields left `None` are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueUpdate {
    pub state_id: Option<String>,
    /// `Some(None)` clears the delegate.
    pub delegate_id: Option<Option<String>>,
    pub added_label_ids: Vec<String>,
    pub removed_label_ids: Vec<String>,
}

impl IssueUpdate {
    pub(crate) fn to_input(&self) -> Value {
        let mut input = json!({});
        if let Some(state) = &self.state_id {
            input["stateId"] = json!(state);
        }
        if let Some(delegate) = &self.delegate_id {
            input["delegateId"] = json!(delegate);
        }
        if !self.added_label_ids.is_empty() {
            input["addedLabelIds"] = json!(self.added_label_ids);
        }
        if !self.removed_label_ids.is_empty() {
            input["removedLabelIds"] = json!(self.removed_label_ids);
        }
        input
    }
}

/// `IssueCreateInput` (sub-issues via `parent_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueCreate {
    pub team_id: String,
    pub title: String,
    pub description: Option<String>,
    pub parent_id: Option<String>,
    pub delegate_id: Option<String>,
    pub state_id: Option<String>,
    pub label_ids: Vec<String>,
}

impl IssueCreate {
    pub(crate) fn to_input(&self) -> Value {
        let mut input = json!({"teamId": self.team_id, "title": self.title});
        let mut set = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                input[k] = json!(v);
            }
        };
        set("description", &self.description);
        set("parentId", &self.parent_id);
        set("delegateId", &self.delegate_id);
        set("stateId", &self.state_id);
        if !self.label_ids.is_empty() {
            input["labelIds"] = json!(self.label_ids);
        }
        input
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedIssue {
    pub id: String,
    pub identifier: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedComment {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// `IssueRelationType`. "A blocks B" is `{issue: A, related: B, Blocks}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationType {
    Blocks,
    Duplicate,
    Related,
    Similar,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Duplicate => "duplicate",
            Self::Related => "related",
            Self::Similar => "similar",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_details_parse_and_derive_blockers() {
        let v = json!({
            "id": "i", "identifier": "ENG-1", "title": "T", "description": null,
            "state": {"id": "s", "name": "Todo", "type": "unstarted", "position": 1.0},
            "labels": {"nodes": [{"id": "l", "name": "Bug", "color": "#f00", "parent": {"id": "g", "name": "Type"}}]},
            "inverseRelations": {"nodes": [
                {"id": "r1", "type": "blocks", "issue": {"id": "b1", "identifier": "ENG-0", "state": {"type": "started"}}},
                {"id": "r2", "type": "blocks", "issue": {"id": "b2", "state": {"type": "completed"}}},
                {"id": "r3", "type": "related", "issue": {"id": "b3", "state": {"type": "started"}}}
            ]},
            "comments": {"nodes": [], "pageInfo": {"hasNextPage": false, "endCursor": null}},
            "somethingNew": 1
        });
        let d: IssueDetails = serde_json::from_value(v).unwrap();
        assert_eq!(d.label_names(), vec!["Bug"]);
        let blockers: Vec<_> = d.open_blockers().iter().map(|i| i.id.as_str()).collect();
        assert_eq!(blockers, vec!["b1"]);
        assert!(d.children.nodes.is_empty());
    }

    #[test]
    fn first_started_state_is_lowest_position() {
        let t: TeamWorkflow = serde_json::from_value(json!({"id": "t", "states": {"nodes": [
            {"id": "a", "type": "started", "position": 3.0},
            {"id": "b", "type": "backlog", "position": 0.0},
            {"id": "c", "type": "started", "position": 2.0}
        ]}}))
        .unwrap();
        assert_eq!(t.first_started_state().unwrap().id, "c");
    }

    #[test]
    fn inputs_only_carry_what_was_set() {
        let u = IssueUpdate {
            delegate_id: Some(None),
            ..Default::default()
        };
        assert_eq!(u.to_input(), json!({"delegateId": null}));
        let s = SessionUpdate {
            external_urls: Some(vec![ExternalUrl {
                label: "Codegen run".into(),
                url: "https://x/1".into(),
            }]),
            plan: None,
        };
        assert_eq!(
            s.to_input(),
            json!({"externalUrls": [{"label": "Codegen run", "url": "https://x/1"}]})
        );
        let p = SessionUpdate {
            external_urls: None,
            plan: Some(vec![PlanStep {
                content: "Reproduce".into(),
                status: "inProgress".into(),
            }]),
        };
        assert_eq!(
            p.to_input(),
            json!({"plan": [{"content": "Reproduce", "status": "inProgress"}]})
        );
        let c = IssueCreate {
            team_id: "t".into(),
            title: "Sub".into(),
            parent_id: Some("ENG-1".into()),
            ..Default::default()
        };
        assert_eq!(
            c.to_input(),
            json!({"teamId": "t", "title": "Sub", "parentId": "ENG-1"})
        );
    }
}

/// A person as the access policy sees them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccess {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    /// `None` (not in the answer) is treated as a guest by the policy.
    #[serde(default)]
    pub guest: Option<bool>,
    /// `None` is treated as deactivated.
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub teams: Connection<Team>,
}
