//! Cyrus's configuration: the typed shape of `config.json`, parsed and
//! validated by a pure function (text and an environment map in, a config and
//! warnings or the full list of problems out). Reading files and the real
//! process environment is the CLI's job.
//!
//! The full reference is `docs/configuration.md`.

mod diagnostics;
pub mod env;
mod experiments;
mod location;
mod parse;
mod policy;
mod summary;
mod triage;
mod walk;

pub use diagnostics::{Problem, Warning};
pub use experiments::{Arm, Experiment, ExperimentMatch};
pub use location::{config_candidates, expand_tilde};
pub use parse::{ConfigError, Loaded, parse};
pub use policy::{AccessRule, Allowed, PolicyConfig};
pub use summary::ConfigSummary;
pub use triage::{TriageConfig, TriageIssue, TriageRule};

use crate::cost::PriceTable;
use crate::{MicroDollars, TaskType};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// Default values, in one place so the parser, the docs and tests agree.
pub mod defaults {
    pub const CODEGEN_BASE_URL: &str = "https://api.codegen.com";
    pub const CODEGEN_AGENT_TYPE: &str = "codegen";
    /// $2.00 per task.
    pub const MAX_COST_PER_TASK_MICROS: i64 = 2_000_000;
    /// $100.00 per day.
    pub const MAX_COST_PER_DAY_MICROS: i64 = 100_000_000;
    pub const MAX_CONCURRENT_RUNS: u32 = 10;
    /// Codegen's own tools poll every 10 s; its docs suggest 10–15 s.
    pub const POLL_INTERVAL_SECS: u64 = 10;
    pub const RUN_DEADLINE_MINUTES: u64 = 120;
    pub const BUDGET_ALERT_PERCENT: u8 = 80;
    /// Codegen documents 10 run creations per minute.
    pub const CREATE_PER_MINUTE: u32 = 10;
    pub const READS_PER_30S: u32 = 60;
    pub const LOGS_PER_MINUTE: u32 = 60;
    pub const LINEAR_API_URL: &str = "https://api.linear.app/graphql";
    /// What an agent needs: read and write, to be delegated issues and to be
    /// @mentioned.
    pub const LINEAR_OAUTH_SCOPES: &[&str] =
        &["read", "write", "app:assignable", "app:mentionable"];
    pub const MAX_ACTIVITIES_PER_SESSION_PER_MINUTE: u32 = 6;
    pub const LISTEN: &str = "127.0.0.1:3456";
    /// `server.idleTimeoutSecs`: a connection with no request head within
    /// this long (idle keep-alive included) is closed. As nginx (75 s) and
    /// Fastify (72 s): longer than senders and load balancers keep idle
    /// pooled connections, so the sender, not the server, closes an idle
    /// connection and never reuses one the server is closing.
    pub const IDLE_TIMEOUT_SECS: u64 = 75;
    /// `server.maxConnections`: each open connection costs a task and its
    /// buffers (tens of KiB), so memory stays bounded however many
    /// connections senders keep in their pools.
    pub const MAX_CONNECTIONS: u64 = 1024;
    /// `~` is expanded by the CLI.
    pub const STORE_URL: &str = "sqlite://~/.cyrus/cyrus.db";
    /// About 48 000 characters of prompt (see `prompt` for the chars/4 rule).
    pub const PROMPT_TOKEN_BUDGET: usize = 12_000;
    /// Below this a prompt cannot hold its own instructions.
    pub const PROMPT_TOKEN_BUDGET_MIN: usize = 1_000;
    /// Where Linear keeps files people paste (fetched with the workspace's
    /// token).
    pub const LINEAR_UPLOADS_URL: &str = "https://uploads.linear.app";
    /// Images sent to Codegen per run, each at most this many bytes, each
    /// download within this many seconds.
    pub const IMAGES_MAX_COUNT: usize = 5;
    pub const IMAGES_MAX_BYTES: usize = 5 * 1024 * 1024;
    pub const IMAGES_TIMEOUT_SECS: u64 = 10;
    /// Sessions proactive triage may start per UTC day.
    pub const TRIAGE_MAX_PER_DAY: u32 = 10;
    /// Days the audit log keeps a decision.
    pub const AUDIT_RETENTION_DAYS: u32 = 90;
    /// Days a processed webhook delivery is kept (its id for deduplication,
    /// its body for inspection). Linear retries a delivery after about
    /// 1 min, 1 h and 6 h, so a day already covers every retry.
    pub const DELIVERY_RETENTION_DAYS: u32 = 7;
    /// Sub-issues of one orchestration in flight at once.
    pub const ORCHESTRATION_MAX_PARALLEL_CHILDREN: u32 = 3;
    /// Above this, `maxParallelChildren` is refused: Linear and Codegen
    /// limits make more pointless, and a typo should not start a fleet.
    pub const ORCHESTRATION_MAX_PARALLEL_CHILDREN_LIMIT: u32 = 50;
    /// Sub-issues one plan may create.
    pub const ORCHESTRATION_MAX_SUB_ISSUES: u32 = 12;
    /// Linear's page of sub-issues orchestration reads.
    pub const ORCHESTRATION_MAX_SUB_ISSUES_LIMIT: u32 = 50;
    /// Days an experiment waits for an issue to be completed.
    pub const EXPERIMENT_OUTCOME_DAYS: u32 = 7;
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub repositories: Vec<RepositoryConfig>,
    pub codegen: CodegenConfig,
    pub linear: LinearConfig,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub prompt: PromptConfig,
    pub alerts: AlertsConfig,
    pub images: ImagesConfig,
    pub policy: PolicyConfig,
    pub triage: TriageConfig,
    pub audit: AuditConfig,
    pub orchestration: OrchestrationConfig,
    /// Model experiments, in order (the first running match wins).
    pub experiments: Vec<Experiment>,
    /// Days after a task's start within which its issue must reach a
    /// completed state to count as completed (`experimentOutcomeDays`).
    pub experiment_outcome_days: u32,
}

impl Config {
    /// The Linear workspace a webhook delivery belongs to, matched by its
    /// `organizationId`.
    pub fn workspace(&self, organization_id: &str) -> Option<&LinearWorkspace> {
        self.linear
            .workspaces
            .iter()
            .find(|w| w.organization_id == organization_id)
    }

    pub fn repository(&self, id: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.id == id)
    }

    /// Every model name the configuration mentions (default, per task type,
    /// priced), deduplicated. Routing uses it to recognise a label naming a
    /// model.
    pub fn known_models(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let candidates = self
            .codegen
            .default_model
            .iter()
            .chain(self.codegen.model_by_task_type.values())
            .chain(self.codegen.model_for_images.iter())
            .chain(
                self.experiments
                    .iter()
                    .flat_map(|e| e.arms.iter().map(|a| &a.model)),
            )
            .chain(self.codegen.pricing.models.keys());
        for model in candidates {
            if !out.contains(&model.as_str()) {
                out.push(model);
            }
        }
        out
    }
}

/// One repository Cyrus can work on, and how issues are routed to it.
#[derive(Clone, Debug)]
pub struct RepositoryConfig {
    /// Stable identifier, unique across repositories.
    pub id: String,
    /// Human name, also matched by `[repo=name]` tags.
    pub name: String,
    /// Local checkout path; informational (Codegen works in its own sandbox).
    pub repository_path: Option<String>,
    /// Token as written for this repository; the effective token of its
    /// workspace is in [`Config::workspace`].
    pub linear_token: Option<SecretString>,
    /// The Linear organization whose issues this repository takes; `None`:
    /// every workspace's (with one installation, simply that one).
    pub linear_workspace_id: Option<String>,
    /// Codegen's id of this repository; `None` lets Codegen pick.
    pub codegen_repo_id: Option<i64>,
    pub team_keys: Vec<String>,
    pub project_keys: Vec<String>,
    pub routing_labels: Vec<String>,
    /// Labels that select a task type, per task type.
    pub label_prompts: BTreeMap<TaskType, Vec<String>>,
    pub allowed_tools: Vec<String>,
    pub mcp_servers: Vec<String>,
}

impl RepositoryConfig {
    /// True when issues of workspace `organization_id` may be routed here.
    pub fn serves_workspace(&self, organization_id: &str) -> bool {
        self.linear_workspace_id
            .as_deref()
            .is_none_or(|w| w == organization_id)
    }

    /// True when the repository has no routing keys at all (it is then the
    /// catch-all if it is the only such repository).
    pub fn has_no_routing_keys(&self) -> bool {
        self.team_keys.is_empty() && self.project_keys.is_empty() && self.routing_labels.is_empty()
    }
}

/// How Cyrus talks to Codegen and how much it may spend.
#[derive(Clone, Debug)]
pub struct CodegenConfig {
    /// `false` pauses dispatch: webhooks are still acknowledged, no run starts.
    pub enabled: bool,
    pub org_id: i64,
    pub api_token: SecretString,
    pub base_url: String,
    pub agent_type: String,
    pub max_cost_per_task: MicroDollars,
    pub max_cost_per_day: MicroDollars,
    pub max_concurrent_runs: u32,
    pub default_model: Option<String>,
    pub model_by_task_type: BTreeMap<TaskType, String>,
    /// The model for a task whose issue has images, below an explicit tag
    /// or model label.
    pub model_for_images: Option<String>,
    pub pricing: PriceTable,
    pub rate_limits: RateLimits,
    pub poll_interval_secs: u64,
    pub run_deadline_minutes: u64,
    /// Percent of `max_cost_per_day` at which an alert is sent (1–100).
    pub budget_alert_percent: u8,
}

/// Client-side request budgets, kept under Codegen's documented limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    pub create_per_minute: u32,
    pub reads_per_30s: u32,
    pub logs_per_minute: u32,
    /// Divides every window (1 = real time). Only for a Codegen simulator
    /// whose clock runs this many times faster (`cyrus sandbox
    /// --time-scale N`); never set it against the real API.
    pub time_scale: u32,
}

impl RateLimits {
    /// A window of `secs` real seconds at this time scale.
    pub fn window(&self, secs: u64) -> std::time::Duration {
        std::time::Duration::from_secs(secs) / self.time_scale.max(1)
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            create_per_minute: defaults::CREATE_PER_MINUTE,
            reads_per_30s: defaults::READS_PER_30S,
            logs_per_minute: defaults::LOGS_PER_MINUTE,
            time_scale: 1,
        }
    }
}

/// Linear settings shared by all workspaces, plus the effective workspaces.
#[derive(Clone, Debug)]
pub struct LinearConfig {
    pub api_url: String,
    /// Default secret for workspaces that do not set their own.
    pub webhook_secret: Option<SecretString>,
    pub agent_user_id: Option<String>,
    /// Every workspace: `linear.workspaces[]` first, then the ones implied by
    /// repositories' `linearWorkspaceId`/`linearToken`.
    pub workspaces: Vec<LinearWorkspace>,
    pub max_activities_per_session_per_minute: u32,
    pub verbosity: Verbosity,
    /// The OAuth application workspaces are connected through (`cyrus
    /// linear connect`); `None` when only static tokens are used.
    pub oauth: Option<LinearOAuthConfig>,
    /// The origin of Linear's file uploads: images there are fetched with
    /// the workspace's token. Only a simulator sets another.
    pub uploads_url: String,
}

/// Linear's OAuth application: what `cyrus linear connect` installs and the
/// worker refreshes tokens with. Installations themselves are in the store.
#[derive(Clone, Debug)]
pub struct LinearOAuthConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// The callback registered on the app: the worker's
    /// `<publicUrl>/oauth/callback` or a loopback `http://127.0.0.1:PORT/oauth/callback`.
    pub redirect_url: String,
    /// Asked for in the authorize URL.
    pub scopes: Vec<String>,
    /// Only for a simulator: the origin serving `/oauth/authorize`,
    /// `/oauth/token` and `/oauth/revoke`. `None`: Linear's own endpoints.
    pub endpoint_base: Option<String>,
}

/// One Linear organization Cyrus is installed in.
#[derive(Clone, Debug)]
pub struct LinearWorkspace {
    pub organization_id: String,
    pub token: SecretString,
    /// The workspace's own secret, else `linear.webhookSecret`.
    pub webhook_secret: SecretString,
    pub agent_user_id: Option<String>,
}

/// How chatty Cyrus is in Linear's agent session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// Acknowledgement, PR and final answer only.
    Quiet,
    #[default]
    Normal,
    /// Also every progress step.
    Verbose,
}

impl std::str::FromStr for Verbosity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "quiet" => Ok(Self::Quiet),
            "normal" => Ok(Self::Normal),
            "verbose" => Ok(Self::Verbose),
            other => Err(format!(
                "unknown verbosity {other:?} (expected quiet, normal or verbose)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where Linear reaches this server, if behind a proxy.
    pub public_url: Option<String>,
    /// Bearer token for the dashboard; `None` disables the dashboard.
    pub dashboard_token: Option<SecretString>,
    /// Seconds a connection may go without a complete request head
    /// (idle keep-alive time included) before it is closed.
    pub idle_timeout_secs: u64,
    /// Open connections at most; at the cap the least recently used one is
    /// closed to make room.
    pub max_connections: usize,
}

/// Where state is kept. The URL can hold a database password, so `Debug`
/// hides it.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`, `~` not yet expanded.
    pub url: String,
    /// `store.sqliteSynchronous`: what the commit behind a webhook's 200
    /// guarantees on SQLite.
    pub sqlite_synchronous: SqliteSynchronous,
    /// `store.deliveryRetentionDays`: processed deliveries older than this
    /// are deleted.
    pub delivery_retention_days: u32,
}

/// `store.sqliteSynchronous`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// Every delivery's commit is fsynced before it is answered 200: it
    /// survives a power cut.
    #[default]
    Full,
    /// No fsync at commit: survives a crash of the process, but a power
    /// cut may lose deliveries already answered 200.
    Normal,
}

impl StoreConfig {
    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted_url(&self) -> String {
        summary::redact_url_password(&self.url)
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted_url())
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("delivery_retention_days", &self.delivery_retention_days)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptConfig {
    pub token_budget: usize,
}

impl Default for PromptConfig {
    fn default() -> Self {
        PromptConfig {
            token_budget: defaults::PROMPT_TOKEN_BUDGET,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct AlertsConfig {
    /// Slack-compatible incoming webhook; its URL is a credential.
    pub webhook_url: Option<SecretString>,
}

/// Images of an issue sent to Codegen: where they may come from and caps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesConfig {
    /// Hosts besides Linear's uploads images may be fetched from (HTTPS,
    /// public addresses only).
    pub allowed_hosts: Vec<String>,
    pub max_count: usize,
    pub max_bytes: usize,
    pub timeout_secs: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            allowed_hosts: Vec::new(),
            max_count: defaults::IMAGES_MAX_COUNT,
            max_bytes: defaults::IMAGES_MAX_BYTES,
            timeout_secs: defaults::IMAGES_TIMEOUT_SECS,
        }
    }
}

/// The audit log of decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditConfig {
    /// Older rows are pruned by the worker.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: defaults::AUDIT_RETENTION_DAYS,
        }
    }
}

/// `orchestration`: how an epic's sub-issues are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestrationConfig {
    /// Sub-issues of one orchestration in flight at once (each also takes
    /// a run slot under `codegen.maxConcurrentRuns`).
    pub max_parallel_children: u32,
    /// Sub-issues a planning run's plan may list.
    pub max_sub_issues: u32,
    /// Create a valid plan's sub-issues without asking first.
    pub auto_approve: bool,
    /// What one orchestration's children may spend (estimates plus the
    /// holds of running children) before the parent asks to continue;
    /// `None`: five times `codegen.maxCostPerTask`.
    pub max_cost: Option<MicroDollars>,
}

impl OrchestrationConfig {
    /// The orchestration limit with its default filled in.
    pub fn max_cost_with(&self, max_cost_per_task: MicroDollars) -> MicroDollars {
        self.max_cost
            .unwrap_or(MicroDollars(max_cost_per_task.0.saturating_mul(5)))
    }
}

impl Default for OrchestrationConfig {
    fn default() -> Self {
        OrchestrationConfig {
            max_parallel_children: defaults::ORCHESTRATION_MAX_PARALLEL_CHILDREN,
            max_sub_issues: defaults::ORCHESTRATION_MAX_SUB_ISSUES,
            auto_approve: false,
            max_cost: None,
        }
    }
}

#[cfg(test)]
mod tests;
