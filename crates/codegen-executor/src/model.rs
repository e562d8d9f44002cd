//! Request and response bodies, from `codegen-openapi.json`. Only `id` and
//! `organization_id` are required on runs; everything else may be missing or
//! `null`, and unknown fields are ignored (Codegen adds fields over time).

use crate::status::RunStatus;
use crate::timestamp;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST …/agent/run`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CreateRun {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<AgentType>,
    /// Correlation ids (Linear session, issue); echoed back on every read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Base64 `data:` URIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    Codegen,
    ClaudeCode,
}

/// Body of `POST …/agent/run/resume`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ResumeRun {
    pub agent_run_id: i64,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// `AgentRunResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct AgentRun {
    pub id: i64,
    pub organization_id: i64,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default, deserialize_with = "timestamp::lenient")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub web_url: Option<String>,
    /// Final answer text.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub github_pull_requests: Option<Vec<PullRequest>>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

impl AgentRun {
    /// Status, treating a missing one as unknown (keep polling).
    pub fn status(&self) -> RunStatus {
        self.status
            .clone()
            .unwrap_or_else(|| RunStatus::Unknown(String::new()))
    }

    pub fn pull_requests(&self) -> &[PullRequest] {
        self.github_pull_requests.as_deref().unwrap_or(&[])
    }
}

/// `GithubPullRequestResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequest {
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "timestamp::lenient")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub head_branch_name: Option<String>,
}

/// Every list endpoint's page: `{items,total,page,size,pages}`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub size: u64,
    pub pages: u64,
}

/// `skip`/`limit` for list calls; `limit` is clamped to 1..=100 by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub skip: u64,
    pub limit: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            skip: 0,
            limit: 100,
        }
    }
}

/// Filters for `GET …/agent/runs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListRuns {
    pub page: PageRequest,
    /// e.g. `API` for runs we started.
    pub source_type: Option<String>,
    pub user_id: Option<i64>,
}

/// `AgentRunWithLogsResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RunLogs {
    pub id: i64,
    pub organization_id: i64,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
    pub logs: Vec<LogEntry>,
    #[serde(default)]
    pub total_logs: Option<u64>,
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub pages: Option<u64>,
}

/// `AgentRunLogResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LogEntry {
    pub agent_run_id: i64,
    #[serde(default, deserialize_with = "timestamp::lenient")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub thought: Option<String>,
    /// Object or string.
    #[serde(default)]
    pub observation: Option<Value>,
    #[serde(default)]
    pub tool_input: Option<Value>,
    #[serde(default)]
    pub tool_output: Option<Value>,
}

/// `UserResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub github_user_id: String,
    pub github_username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// `OrganizationResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub settings: Option<OrganizationSettings>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct OrganizationSettings {
    #[serde(default = "yes")]
    pub enable_pr_creation: bool,
    #[serde(default = "yes")]
    pub enable_rules_detection: bool,
}

fn yes() -> bool {
    true
}

/// `RepoResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Repo {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    /// `owner/name`: what our repo routing maps to `repo_id`.
    pub full_name: String,
    #[serde(default)]
    pub github_id: Option<String>,
    #[serde(default)]
    pub setup_status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub language: Option<String>,
}

/// `OrganizationIntegrationsResponse`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Integrations {
    pub organization_id: i64,
    pub organization_name: String,
    pub total_active_integrations: u64,
    pub integrations: Vec<Integration>,
}

impl Integrations {
    /// Codegen's *own* Linear integration would react to the same issue
    /// assignments as Cyrus; setup warns when it is active.
    pub fn codegen_linear_active(&self) -> bool {
        self.integrations
            .iter()
            .any(|i| i.active && i.integration_type.eq_ignore_ascii_case("linear"))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Integration {
    pub integration_type: String,
    pub active: bool,
    #[serde(default)]
    pub token_id: Option<i64>,
    #[serde(default)]
    pub installation_id: Option<i64>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `OAuthProviderResponse` (from `/v1/mcp-providers`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct McpProvider {
    pub id: i64,
    pub name: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub is_mcp: bool,
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub meta: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_parses_documented_example_and_ignores_unknown_fields() {
        let run: AgentRun = serde_json::from_str(
            r#"{"id": 1001, "organization_id": 42, "status": "ACTIVE", "created_at": "2025-10-01T12:00:00.123456",
             "web_url": "https://codegen.com/agent/trace/1001", "result": null, "summary": null, "source_type": "API",
             "github_pull_requests": [{"id": 5, "created_at": "2025-10-01 12:00:00", "url": "https://github.com/acme/web/pull/12"}],
             "metadata": {"issue": "ENG-142"}, "model": "something-new"}"#,
        )
        .unwrap();
        assert_eq!(run.status(), RunStatus::Active);
        assert!(run.created_at.is_some());
        assert_eq!(
            run.pull_requests()[0].url.as_deref(),
            Some("https://github.com/acme/web/pull/12")
        );
        assert_eq!(run.metadata.unwrap()["issue"], "ENG-142");
    }

    #[test]
    fn minimal_run_parses() {
        let run: AgentRun = serde_json::from_str(r#"{"id": 1, "organization_id": 2}"#).unwrap();
        assert!(run.status.is_none() && run.pull_requests().is_empty());
        assert!(run.status().should_poll());
    }

    #[test]
    fn create_body_omits_unset_fields() {
        let body = CreateRun {
            prompt: "p".into(),
            repo_id: Some(7),
            agent_type: Some(AgentType::ClaudeCode),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"prompt": "p", "repo_id": 7, "agent_type": "claude_code"})
        );
    }
}
