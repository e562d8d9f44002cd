//! What `doctor`, `codegen setup` and `mcp list` say about the MCP servers
//! the repositories name (`repositories[].mcpServers`), given what Codegen
//! offers ([`McpCatalog`]): which are unusable, and what to do about each.

use cyrus_codegen_executor::mcp::same_name;
use cyrus_codegen_executor::{McpAvailability, McpCatalog};
use cyrus_core::config::RepositoryConfig;

/// One repository's MCP servers that a run could not use.
pub struct RepositoryFinding {
    /// The repository's id.
    pub repository: String,
    /// Its position in `repositories`, for the JSON path in fixes.
    pub index: usize,
    pub unusable: Vec<(String, McpAvailability)>,
    /// Every server it names (for the "all active" line).
    pub named: Vec<String>,
}

impl RepositoryFinding {
    /// One line: "linear (inactive), jira (not offered by Codegen)".
    pub fn summary(&self) -> String {
        self.unusable
            .iter()
            .map(|(s, a)| format!("{s} ({})", a.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What to do, one sentence per unusable server.
    pub fn fixes(&self, catalog: &McpCatalog) -> String {
        self.unusable
            .iter()
            .map(|(server, availability)| fix(server, *availability, self.index, catalog))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A finding for every repository that names at least one MCP server, in
/// configuration order.
pub fn findings(repositories: &[RepositoryConfig], catalog: &McpCatalog) -> Vec<RepositoryFinding> {
    repositories
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.mcp_servers.is_empty())
        .map(|(index, r)| RepositoryFinding {
            repository: r.id.clone(),
            index,
            unusable: catalog.unusable(&r.mcp_servers),
            named: r.mcp_servers.clone(),
        })
        .collect()
}

/// The repositories (ids) that name `server`.
pub fn used_by(repositories: &[RepositoryConfig], server: &str) -> Vec<String> {
    repositories
        .iter()
        .filter(|r| r.mcp_servers.iter().any(|s| same_name(s, server)))
        .map(|r| r.id.clone())
        .collect()
}

fn fix(server: &str, availability: McpAvailability, index: usize, catalog: &McpCatalog) -> String {
    let path = format!("repositories[{index}].mcpServers");
    let mut text = match availability {
        McpAvailability::Active => return String::new(),
        McpAvailability::Inactive => format!(
            "`{server}`: the organization's {server} integration is inactive; reconnect it in Codegen's integration settings, or remove it from {path}."
        ),
        McpAvailability::NotConnected => format!(
            "`{server}`: Codegen offers it, but the organization has not connected it; connect {server} in Codegen's integration settings, or remove it from {path}."
        ),
        McpAvailability::NotOffered => {
            let offered = catalog.offered();
            format!(
                "`{server}`: Codegen offers no MCP server or integration by that name (offered: {}); fix the name in {path} or remove it.",
                if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                }
            )
        }
    };
    if same_name(server, "linear") && availability != McpAvailability::NotOffered {
        text.push_str(
            " Note: an active Codegen Linear integration also lets Codegen's own Linear bot react to the \
             issues Cyrus works on; Cyrus already puts the issue into the prompt, so removing `linear` is \
             usually the better fix.",
        );
    }
    text
}
