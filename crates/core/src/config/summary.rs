//! A printable view of the configuration with every secret replaced by
//! `[redacted]` (or `null` when unset), so `cyrus config check` output can be
//! pasted into an issue safely. Its JSON form is part of the documented
//! `--json` output: fields are only ever added.

use super::{Config, RateLimits, Verbosity};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

const REDACTED: &str = "[redacted]";

fn mark(secret: Option<&SecretString>) -> Option<&'static str> {
    secret.map(|_| REDACTED)
}

/// Replaces the password in `scheme://user:password@host/...` with
/// `[redacted]`.
pub(crate) fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:{REDACTED}{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSummary {
    pub repositories: Vec<RepositorySummary>,
    pub codegen: CodegenSummary,
    pub linear: LinearSummary,
    pub server: ServerSummary,
    pub store: StoreSummary,
    pub prompt: PromptSummary,
    pub alerts: AlertsSummary,
    pub images: super::ImagesConfig,
    pub policy: super::PolicyConfig,
    pub triage: super::TriageConfig,
    pub audit: super::AuditConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySummary {
    pub id: String,
    pub name: String,
    pub repository_path: Option<String>,
    pub linear_workspace_id: Option<String>,
    pub linear_token: Option<&'static str>,
    pub codegen_repo_id: Option<i64>,
    pub team_keys: Vec<String>,
    pub project_keys: Vec<String>,
    pub routing_labels: Vec<String>,
    pub label_prompts: BTreeMap<String, Vec<String>>,
    pub allowed_tools: Vec<String>,
    pub mcp_servers: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodegenSummary {
    pub enabled: bool,
    pub org_id: i64,
    pub api_token: &'static str,
    pub base_url: String,
    pub agent_type: String,
    /// Micro-dollars (integers), as everywhere in Cyrus.
    pub max_cost_per_task_micros: i64,
    pub max_cost_per_day_micros: i64,
    pub max_concurrent_runs: u32,
    pub default_model: Option<String>,
    pub model_by_task_type: BTreeMap<String, String>,
    pub model_for_images: Option<String>,
    pub priced_models: Vec<String>,
    pub per_run_micros: i64,
    pub rate_limits: RateLimits,
    pub poll_interval_secs: u64,
    pub run_deadline_minutes: u64,
    pub budget_alert_percent: u8,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearSummary {
    pub api_url: String,
    pub webhook_secret: Option<&'static str>,
    pub agent_user_id: Option<String>,
    pub workspaces: Vec<WorkspaceSummary>,
    pub max_activities_per_session_per_minute: u32,
    pub verbosity: Verbosity,
    pub oauth: Option<OAuthSummary>,
    pub uploads_url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthSummary {
    pub client_id: String,
    pub client_secret: &'static str,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub endpoint_base: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSummary {
    pub organization_id: String,
    pub token: &'static str,
    pub webhook_secret: &'static str,
    pub agent_user_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSummary {
    pub listen: String,
    pub public_url: Option<String>,
    pub dashboard_token: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSummary {
    pub url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptSummary {
    pub token_budget: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSummary {
    pub webhook_url: Option<&'static str>,
}

impl Config {
    /// Everything worth showing, secrets redacted.
    pub fn redacted_summary(&self) -> ConfigSummary {
        let c = &self.codegen;
        ConfigSummary {
            repositories: self
                .repositories
                .iter()
                .map(|r| RepositorySummary {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    repository_path: r.repository_path.clone(),
                    linear_workspace_id: r.linear_workspace_id.clone(),
                    linear_token: mark(r.linear_token.as_ref()),
                    codegen_repo_id: r.codegen_repo_id,
                    team_keys: r.team_keys.clone(),
                    project_keys: r.project_keys.clone(),
                    routing_labels: r.routing_labels.clone(),
                    label_prompts: r
                        .label_prompts
                        .iter()
                        .map(|(t, l)| (t.to_string(), l.clone()))
                        .collect(),
                    allowed_tools: r.allowed_tools.clone(),
                    mcp_servers: r.mcp_servers.clone(),
                })
                .collect(),
            codegen: CodegenSummary {
                enabled: c.enabled,
                org_id: c.org_id,
                api_token: REDACTED,
                base_url: c.base_url.clone(),
                agent_type: c.agent_type.clone(),
                max_cost_per_task_micros: c.max_cost_per_task.0,
                max_cost_per_day_micros: c.max_cost_per_day.0,
                max_concurrent_runs: c.max_concurrent_runs,
                default_model: c.default_model.clone(),
                model_by_task_type: c
                    .model_by_task_type
                    .iter()
                    .map(|(t, m)| (t.to_string(), m.clone()))
                    .collect(),
                model_for_images: c.model_for_images.clone(),
                priced_models: c.pricing.models.keys().cloned().collect(),
                per_run_micros: c.pricing.per_run.0,
                rate_limits: c.rate_limits,
                poll_interval_secs: c.poll_interval_secs,
                run_deadline_minutes: c.run_deadline_minutes,
                budget_alert_percent: c.budget_alert_percent,
            },
            linear: LinearSummary {
                api_url: self.linear.api_url.clone(),
                webhook_secret: mark(self.linear.webhook_secret.as_ref()),
                agent_user_id: self.linear.agent_user_id.clone(),
                workspaces: self
                    .linear
                    .workspaces
                    .iter()
                    .map(|w| WorkspaceSummary {
                        organization_id: w.organization_id.clone(),
                        token: REDACTED,
                        webhook_secret: REDACTED,
                        agent_user_id: w.agent_user_id.clone(),
                    })
                    .collect(),
                max_activities_per_session_per_minute: self
                    .linear
                    .max_activities_per_session_per_minute,
                verbosity: self.linear.verbosity,
                oauth: self.linear.oauth.as_ref().map(|o| OAuthSummary {
                    client_id: o.client_id.clone(),
                    client_secret: REDACTED,
                    redirect_url: o.redirect_url.clone(),
                    scopes: o.scopes.clone(),
                    endpoint_base: o.endpoint_base.clone(),
                }),
                uploads_url: self.linear.uploads_url.clone(),
            },
            server: ServerSummary {
                listen: self.server.listen.to_string(),
                public_url: self.server.public_url.clone(),
                dashboard_token: mark(self.server.dashboard_token.as_ref()),
            },
            store: StoreSummary {
                url: self.store.redacted_url(),
            },
            prompt: PromptSummary {
                token_budget: self.prompt.token_budget,
            },
            alerts: AlertsSummary {
                webhook_url: mark(self.alerts.webhook_url.as_ref()),
            },
            images: self.images.clone(),
            policy: self.policy.clone(),
            triage: self.triage.clone(),
            audit: self.audit,
        }
    }
}

/// Human-readable form for the terminal.
impl fmt::Display for ConfigSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.codegen;
        let dollars = |m: i64| crate::MicroDollars(m).to_string();
        writeln!(
            f,
            "Codegen: org {} ({}), {}",
            c.org_id,
            c.base_url,
            if c.enabled { "enabled" } else { "DISABLED" }
        )?;
        writeln!(f, "  api token: {}", c.api_token)?;
        writeln!(
            f,
            "  budget: {} per task, {} per day (alert at {}%), {} concurrent runs",
            dollars(c.max_cost_per_task_micros),
            dollars(c.max_cost_per_day_micros),
            c.budget_alert_percent,
            c.max_concurrent_runs
        )?;
        writeln!(
            f,
            "  default model: {}",
            c.default_model
                .as_deref()
                .unwrap_or("(Codegen's org default)")
        )?;
        for (t, m) in &c.model_by_task_type {
            writeln!(f, "  model for {t}: {m}")?;
        }
        writeln!(f, "Repositories ({}):", self.repositories.len())?;
        for r in &self.repositories {
            writeln!(
                f,
                "  - {} ({}), workspace {}",
                r.name,
                r.id,
                r.linear_workspace_id.as_deref().unwrap_or("any")
            )?;
            let keys = |v: &Vec<String>| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.join(", ")
                }
            };
            writeln!(
                f,
                "    teams: {}; projects: {}; labels: {}",
                keys(&r.team_keys),
                keys(&r.project_keys),
                keys(&r.routing_labels)
            )?;
        }
        writeln!(f, "Linear workspaces ({}):", self.linear.workspaces.len())?;
        for w in &self.linear.workspaces {
            writeln!(
                f,
                "  - {}: token {}, webhook secret {}",
                w.organization_id, w.token, w.webhook_secret
            )?;
        }
        match &self.linear.oauth {
            Some(o) => writeln!(
                f,
                "Linear OAuth app: client {}, secret {}, redirect {}, scopes {}{}",
                o.client_id,
                o.client_secret,
                o.redirect_url,
                o.scopes.join(","),
                o.endpoint_base
                    .as_deref()
                    .map(|b| format!(", endpoints under {b}"))
                    .unwrap_or_default()
            )?,
            None => writeln!(
                f,
                "Linear OAuth app: not configured (installations need linear.oauth; see docs/connect-linear.md)"
            )?,
        }
        writeln!(
            f,
            "Server: listen {}, public URL {}",
            self.server.listen,
            self.server.public_url.as_deref().unwrap_or("-")
        )?;
        writeln!(
            f,
            "  dashboard: {}",
            if self.server.dashboard_token.is_some() {
                "enabled (token [redacted])"
            } else {
                "disabled (no token)"
            }
        )?;
        writeln!(f, "Store: {}", self.store.url)?;
        writeln!(f, "Prompt token budget: {}", self.prompt.token_budget)?;
        write!(
            f,
            "Alerts: {}",
            if self.alerts.webhook_url.is_some() {
                "webhook [redacted]"
            } else {
                "none"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url_password;

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url_password("postgres://u:pw@h:5432/db"),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(
            redact_url_password("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(redact_url_password("sqlite:///a/b.db"), "sqlite:///a/b.db");
        assert_eq!(redact_url_password("nonsense"), "nonsense");
    }
}
