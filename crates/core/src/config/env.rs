//! Environment variables that override the file. The parser receives them as
//! a map so it stays pure; the CLI passes the real process environment.
//!
//! A variable set to an empty string counts as unset.

/// Path of the configuration file (used by the CLI's path resolution).
pub const CONFIG: &str = "CYRUS_CONFIG";
/// Overrides `codegen.apiToken`.
pub const CODEGEN_API_TOKEN: &str = "CYRUS_CODEGEN_API_TOKEN";
/// Overrides `codegen.orgId`.
pub const CODEGEN_ORG_ID: &str = "CYRUS_CODEGEN_ORG_ID";
/// Overrides `codegen.baseUrl`.
pub const CODEGEN_BASE_URL: &str = "CYRUS_CODEGEN_BASE_URL";
/// Linear token for repositories and workspaces that set none of their own.
pub const LINEAR_TOKEN: &str = "CYRUS_LINEAR_TOKEN";
/// Overrides `linear.webhookSecret`.
pub const LINEAR_WEBHOOK_SECRET: &str = "CYRUS_LINEAR_WEBHOOK_SECRET";
/// Overrides `linear.agentUserId`.
pub const LINEAR_AGENT_USER_ID: &str = "CYRUS_LINEAR_AGENT_USER_ID";
/// Overrides `linear.apiUrl`.
pub const LINEAR_API_URL: &str = "CYRUS_LINEAR_API_URL";
/// Overrides `linear.oauth.clientId`.
pub const LINEAR_CLIENT_ID: &str = "CYRUS_LINEAR_CLIENT_ID";
/// Overrides `linear.oauth.clientSecret`.
pub const LINEAR_CLIENT_SECRET: &str = "CYRUS_LINEAR_CLIENT_SECRET";
/// Overrides `server.listen`.
pub const LISTEN: &str = "CYRUS_LISTEN";
/// Overrides `server.publicUrl`.
pub const PUBLIC_URL: &str = "CYRUS_PUBLIC_URL";
/// Overrides `server.dashboardToken`.
pub const DASHBOARD_TOKEN: &str = "CYRUS_DASHBOARD_TOKEN";
/// Overrides `store.url`.
pub const STORE_URL: &str = "CYRUS_STORE_URL";
/// Overrides `alerts.webhookUrl`.
pub const ALERTS_WEBHOOK_URL: &str = "CYRUS_ALERTS_WEBHOOK_URL";

/// Variables that replace one string setting: (variable, JSON path).
/// `CYRUS_LINEAR_TOKEN` is a fallback, not an override, and is handled apart.
pub const OVERRIDES: &[(&str, &str)] = &[
    (CODEGEN_API_TOKEN, "codegen.apiToken"),
    (CODEGEN_ORG_ID, "codegen.orgId"),
    (CODEGEN_BASE_URL, "codegen.baseUrl"),
    (LINEAR_WEBHOOK_SECRET, "linear.webhookSecret"),
    (LINEAR_AGENT_USER_ID, "linear.agentUserId"),
    (LINEAR_API_URL, "linear.apiUrl"),
    (LINEAR_CLIENT_ID, "linear.oauth.clientId"),
    (LINEAR_CLIENT_SECRET, "linear.oauth.clientSecret"),
    (LISTEN, "server.listen"),
    (PUBLIC_URL, "server.publicUrl"),
    (DASHBOARD_TOKEN, "server.dashboardToken"),
    (STORE_URL, "store.url"),
    (ALERTS_WEBHOOK_URL, "alerts.webhookUrl"),
];
