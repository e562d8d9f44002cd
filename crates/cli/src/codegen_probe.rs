//! Live checks against Codegen shared by `setup`, `status` and `doctor`:
//! one client built the same way everywhere (few retries, short timeout, so
//! an operator command answers in seconds) and error texts that name the
//! setting to fix.

use cyrus_codegen_executor::model::{Integrations, McpProvider, Repo, User};
use cyrus_codegen_executor::{
    ClientConfig, CodegenClient, CodegenError, McpCatalog, PageRequest, RetryPolicy,
};
use cyrus_core::config::RepositoryConfig;
use secrecy::SecretString;
use std::time::Duration;

/// Per-request timeout for operator commands.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn client(base_url: &str, org_id: i64, token: SecretString) -> Result<CodegenClient, String> {
    let config = ClientConfig {
        request_timeout: TIMEOUT,
        retry: RetryPolicy {
            max_retries: 1,
            max_total_wait: Duration::from_secs(5),
            ..RetryPolicy::default()
        },
        ..ClientConfig::new(base_url, org_id, token)
    };
    CodegenClient::new(config).map_err(|e| format!("{e} (check `codegen.baseUrl`)"))
}

/// Everything setup learns about the organization.
pub struct OrgFacts {
    pub user: User,
    pub org_name: String,
    pub repos: Vec<Repo>,
    pub integrations: Integrations,
    /// `Err`: why they could not be read (setup goes on without the check).
    pub mcp_providers: Result<Vec<McpProvider>, String>,
}

impl OrgFacts {
    /// Problems the operator should know about but that do not block setup.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.integrations.codegen_linear_active() {
            out.push(
                "Codegen's own Linear integration is ACTIVE for this organization: Codegen's Linear bot \
                 would react to the same issue assignments as Cyrus and work them twice. Disable it in \
                 Codegen's integration settings (Cyrus talks to Linear itself)."
                    .to_owned(),
            );
        }
        let github_active = self
            .integrations
            .integrations
            .iter()
            .any(|i| i.active && i.integration_type.eq_ignore_ascii_case("github"));
        if !github_active {
            out.push(
                "Codegen's GitHub integration is not active: runs cannot clone repositories or open \
                 pull requests. Connect GitHub in Codegen's integration settings."
                    .to_owned(),
            );
        }
        if self.repos.is_empty() {
            out.push(
                "the organization has no repositories in Codegen: every run would fail with \
                 \"No repos found\". Add repositories in Codegen first."
                    .to_owned(),
            );
        }
        out
    }

    /// One warning per repository whose `mcpServers` Codegen cannot serve.
    pub fn mcp_warnings(&self, repositories: &[RepositoryConfig]) -> Vec<String> {
        let providers = match &self.mcp_providers {
            Ok(p) => p.clone(),
            Err(e) if repositories.iter().any(|r| !r.mcp_servers.is_empty()) => {
                return vec![format!(
                    "cannot check the repositories' `mcpServers`: {e}; `cyrus doctor` checks them again"
                )];
            }
            Err(_) => return Vec::new(),
        };
        let catalog = McpCatalog {
            providers,
            integrations: self.integrations.clone(),
        };
        crate::mcp_servers::findings(repositories, &catalog)
            .into_iter()
            .filter(|f| !f.unusable.is_empty())
            .map(|f| {
                format!(
                    "repository `{}` names MCP servers its runs cannot use: {}. {}",
                    f.repository,
                    f.summary(),
                    f.fixes(&catalog)
                )
            })
            .collect()
    }
}

/// Checks the token (`users/me`), that the org id is one of the user's
/// organizations, and reads repositories, integrations and MCP providers.
pub async fn inspect(client: &CodegenClient) -> Result<OrgFacts, String> {
    let user = client.me().await.map_err(explain)?;
    let orgs = client
        .organizations(PageRequest::default())
        .await
        .map_err(explain)?;
    let org_id = client.org_id();
    let Some(org) = orgs.items.iter().find(|o| o.id == org_id) else {
        let known = orgs
            .items
            .iter()
            .map(|o| format!("{} ({})", o.id, o.name))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "organization {org_id} is not one of this token's organizations ({}); fix `codegen.orgId` (--org-id)",
            if known.is_empty() { "none" } else { &known }
        ));
    };
    let repos = client.all_repos().await.map_err(explain)?;
    let integrations = client.integrations().await.map_err(explain)?;
    let mcp_providers = client.mcp_providers().await.map_err(explain);
    Ok(OrgFacts {
        user,
        org_name: org.name.clone(),
        repos,
        integrations,
        mcp_providers,
    })
}

/// The error as a sentence that says what to change.
pub fn explain(e: CodegenError) -> String {
    match &e {
        CodegenError::Unauthorized { .. } => "Codegen rejected the API token (HTTP 401). Fix `codegen.apiToken` \
             (or CYRUS_CODEGEN_API_TOKEN; setup: --token-env VAR); create a token in Codegen's settings"
            .to_owned(),
        CodegenError::Transport { .. } => {
            format!("{e}. Check `codegen.baseUrl` (--codegen-url) and the network")
        }
        _ => e.to_string(),
    }
}
