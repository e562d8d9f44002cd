//! The API endpoints the simulator serves, for counting, rate limiting and
//! fault targeting.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    CreateRun,
    GetRun,
    ListRuns,
    ResumeRun,
    StopRun,
    BanRun,
    UnbanRun,
    RemoveFromPr,
    Logs,
    UsersMe,
    OrgUsers,
    OrgUser,
    Organizations,
    Repos,
    Integrations,
    McpProviders,
}

/// Which sliding window an endpoint draws from (codegen-api.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Create,
    Standard,
    Logs,
}

impl Endpoint {
    pub fn bucket(self) -> Option<Bucket> {
        match self {
            Endpoint::CreateRun => Some(Bucket::Create),
            Endpoint::Logs => Some(Bucket::Logs),
            Endpoint::McpProviders => None,
            _ => Some(Bucket::Standard),
        }
    }

    /// Maps an axum route template and method to the endpoint.
    pub fn from_route(method: &http::Method, route: &str) -> Option<Endpoint> {
        use http::Method;
        let post = *method == Method::POST;
        Some(match route {
            "/v1/organizations/{org_id}/agent/run" if post => Endpoint::CreateRun,
            "/v1/organizations/{org_id}/agent/run/{agent_run_id}" => Endpoint::GetRun,
            "/v1/organizations/{org_id}/agent/runs" => Endpoint::ListRuns,
            "/v1/organizations/{org_id}/agent/run/resume" => Endpoint::ResumeRun,
            "/v1/beta/organizations/{org_id}/agent/run/stop" => Endpoint::StopRun,
            "/v1/organizations/{org_id}/agent/run/ban" => Endpoint::BanRun,
            "/v1/organizations/{org_id}/agent/run/unban" => Endpoint::UnbanRun,
            "/v1/organizations/{org_id}/agent/run/remove-from-pr" => Endpoint::RemoveFromPr,
            "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs"
            | "/v1/organizations/{org_id}/agent/run/{agent_run_id}/logs" => Endpoint::Logs,
            "/v1/users/me" => Endpoint::UsersMe,
            "/v1/organizations/{org_id}/users" => Endpoint::OrgUsers,
            "/v1/organizations/{org_id}/users/{user_id}" => Endpoint::OrgUser,
            "/v1/organizations" => Endpoint::Organizations,
            "/v1/organizations/{org_id}/repos" => Endpoint::Repos,
            "/v1/organizations/{org_id}/integrations" => Endpoint::Integrations,
            "/v1/mcp-providers" => Endpoint::McpProviders,
            _ => return None,
        })
    }
}
