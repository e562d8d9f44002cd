//! Whether the MCP servers a repository names (`repositories[].mcpServers`)
//! are usable at Codegen. Codegen offers MCP servers as OAuth providers
//! (`GET /v1/mcp-providers`); an organization *uses* one through an
//! integration of the same name (`GET …/integrations`), which is active or
//! not. Some tools the agent gets are plain integrations with no MCP
//! provider (GitHub is an app installation), so an integration alone also
//! counts as offered.

use crate::model::{Integration, Integrations, McpProvider};
use serde::Serialize;

/// What Codegen offers the organization: both lists, read together.
#[derive(Clone, Debug, PartialEq)]
pub struct McpCatalog {
    pub providers: Vec<McpProvider>,
    pub integrations: Integrations,
}

/// Where one named MCP server stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum McpAvailability {
    /// The organization's integration of that name is active.
    Active,
    /// The organization connected it, but the integration is inactive.
    Inactive,
    /// Codegen offers it as an MCP provider; the organization has not
    /// connected it.
    NotConnected,
    /// Codegen offers no MCP provider and the organization has no
    /// integration by that name.
    NotOffered,
}

impl McpAvailability {
    pub fn is_usable(self) -> bool {
        self == McpAvailability::Active
    }

    /// Short words for tables and sentences.
    pub fn describe(self) -> &'static str {
        match self {
            McpAvailability::Active => "active",
            McpAvailability::Inactive => "inactive",
            McpAvailability::NotConnected => "not connected",
            McpAvailability::NotOffered => "not offered by Codegen",
        }
    }
}

/// Names match ignoring case and punctuation, so `Monday.com`, `monday_com`
/// and `mondaycom` are one server.
pub fn same_name(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let (a, b) = (key(a), key(b));
    !a.is_empty() && a == b
}

impl McpCatalog {
    pub fn provider(&self, server: &str) -> Option<&McpProvider> {
        self.providers
            .iter()
            .find(|p| p.is_mcp && same_name(&p.name, server))
    }

    /// The integration of that name; with several (two GitHub
    /// installations), an active one first.
    pub fn integration(&self, server: &str) -> Option<&Integration> {
        let mut matching = self
            .integrations
            .integrations
            .iter()
            .filter(|i| same_name(&i.integration_type, server));
        let first = matching.next()?;
        Some(if first.active {
            first
        } else {
            matching.find(|i| i.active).unwrap_or(first)
        })
    }

    pub fn availability(&self, server: &str) -> McpAvailability {
        match self.integration(server) {
            Some(i) if i.active => McpAvailability::Active,
            Some(_) => McpAvailability::Inactive,
            None if self.provider(server).is_some() => McpAvailability::NotConnected,
            None => McpAvailability::NotOffered,
        }
    }

    /// The servers among `servers` that a run could not use, in the given
    /// order, each once.
    pub fn unusable<'a>(
        &self,
        servers: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(String, McpAvailability)> {
        let mut out: Vec<(String, McpAvailability)> = Vec::new();
        for server in servers {
            let availability = self.availability(server);
            if !availability.is_usable() && !out.iter().any(|(s, _)| same_name(s, server)) {
                out.push((server.clone(), availability));
            }
        }
        out
    }

    /// Every name Codegen knows (MCP providers, then integrations), each
    /// once, in Codegen's order.
    pub fn offered(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let names = self
            .providers
            .iter()
            .filter(|p| p.is_mcp)
            .map(|p| p.name.as_str())
            .chain(
                self.integrations
                    .integrations
                    .iter()
                    .map(|i| i.integration_type.as_str()),
            );
        for name in names {
            if !out.iter().any(|o| same_name(o, name)) {
                out.push(name.to_owned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> McpCatalog {
        let provider = |id, name: &str| McpProvider {
            id,
            name: name.to_owned(),
            issuer: format!("https://{name}.example"),
            authorization_endpoint: format!("https://{name}.example/a"),
            token_endpoint: format!("https://{name}.example/t"),
            is_mcp: true,
            default_scopes: None,
            meta: None,
        };
        let integration = |kind: &str, active| Integration {
            integration_type: kind.to_owned(),
            active,
            token_id: None,
            installation_id: None,
            metadata: None,
        };
        McpCatalog {
            providers: vec![
                provider(1, "Linear"),
                provider(2, "notion"),
                provider(3, "Monday.com"),
            ],
            integrations: Integrations {
                organization_id: 42,
                organization_name: "Acme".into(),
                total_active_integrations: 2,
                integrations: vec![
                    integration("github", false),
                    integration("github", true),
                    integration("linear", false),
                    integration("sentry", true),
                ],
            },
        }
    }

    #[test]
    fn each_kind_of_availability() {
        let c = catalog();
        assert_eq!(c.availability("GitHub"), McpAvailability::Active);
        assert_eq!(c.availability("sentry"), McpAvailability::Active);
        assert_eq!(c.availability("linear"), McpAvailability::Inactive);
        assert_eq!(c.availability("notion"), McpAvailability::NotConnected);
        assert_eq!(c.availability("monday_com"), McpAvailability::NotConnected);
        assert_eq!(c.availability("jira"), McpAvailability::NotOffered);
        assert_eq!(c.availability(""), McpAvailability::NotOffered);
    }

    #[test]
    fn unusable_keeps_order_and_drops_duplicates() {
        let c = catalog();
        let servers: Vec<String> = ["jira", "github", "linear", "Jira", "notion"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            c.unusable(&servers),
            vec![
                ("jira".to_owned(), McpAvailability::NotOffered),
                ("linear".to_owned(), McpAvailability::Inactive),
                ("notion".to_owned(), McpAvailability::NotConnected),
            ]
        );
    }

    #[test]
    fn offered_lists_each_name_once() {
        assert_eq!(
            catalog().offered(),
            vec!["Linear", "notion", "Monday.com", "github", "sentry"]
        );
    }
}
