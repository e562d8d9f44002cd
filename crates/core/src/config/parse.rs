//! Text + environment → validated [`Config`], collecting every problem.

use super::diagnostics::{Diagnostics, Problem, Warning};
use super::walk::{Obj, show};
use super::{
    AlertsConfig, AuditConfig, CodegenConfig, Config, ImagesConfig, LinearConfig,
    LinearOAuthConfig, LinearWorkspace, OrchestrationConfig, PromptConfig, RateLimits,
    RepositoryConfig, ServerConfig, SqliteSynchronous, StoreConfig, Verbosity, defaults, env,
};
use crate::cost::{ModelPrice, PriceTable};
use crate::{MicroDollars, TaskType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// A usable configuration and what looked odd in it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON at all; positions are 1-based as editors show them.
    #[error("configuration is not valid JSON at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON that cannot be used; every problem found is listed.
    #[error("configuration has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        problems: Vec<Problem>,
        warnings: Vec<Warning>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and validates `text`, with `env` overriding file values (see
/// [`super::env`]).
pub fn parse(text: &str, env: &BTreeMap<String, String>) -> Result<Loaded, ConfigError> {
    let mut root: Value = serde_json::from_str(text).map_err(|e| ConfigError::Malformed {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let overridden = apply_env_overrides(&mut root, env);

    let mut d = Diagnostics::default();
    let config = read_config(&root, env, &mut d);
    for p in &mut d.problems {
        if let Some((var, _)) = overridden.iter().find(|(_, path)| *path == p.path) {
            p.path = format!("{} (from {var})", p.path);
        }
    }
    match config {
        Some(config) if d.problems.is_empty() => Ok(Loaded {
            config,
            warnings: d.warnings,
        }),
        _ => Err(ConfigError::Invalid {
            problems: d.problems,
            warnings: d.warnings,
        }),
    }
}

/// serde_json appends " at line L column C"; the error carries them apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Writes environment overrides into the JSON tree so they are validated like
/// file values. Returns the (variable, path) pairs applied.
fn apply_env_overrides(
    root: &mut Value,
    env: &BTreeMap<String, String>,
) -> Vec<(&'static str, &'static str)> {
    let mut applied = Vec::new();
    let Value::Object(top) = root else {
        return applied;
    };
    for &(var, path) in env::OVERRIDES {
        let Some(value) = env.get(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let (parents, key) = path
            .rsplit_once('.')
            .expect("override paths are section.key");
        let Some(node) = object_at(top, parents) else {
            // A section that is not an object keeps its own type problem,
            // reported by the reader.
            continue;
        };
        node.insert(key.to_owned(), Value::String(value.clone()));
        applied.push((var, path));
    }
    applied
}

/// The object at dotted `path` under `map`, creating missing ones; `None`
/// when a value on the way is not an object.
fn object_at<'a>(
    map: &'a mut serde_json::Map<String, Value>,
    path: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    let Value::Object(child) = map
        .entry(first)
        .or_insert_with(|| Value::Object(Default::default()))
    else {
        return None;
    };
    match rest {
        Some(rest) => object_at(child, rest),
        None => Some(child),
    }
}

fn read_config(
    root: &Value,
    env: &BTreeMap<String, String>,
    d: &mut Diagnostics,
) -> Option<Config> {
    let mut top = Obj::new(String::new(), root, d)?;
    let repositories = read_repositories(&mut top, d);
    let codegen = match top.obj("codegen", d) {
        Some(o) => read_codegen(o, d),
        None => {
            d.problem(
                "codegen",
                "missing: add a \"codegen\" section with at least \"orgId\" and \"apiToken\" (or set CYRUS_CODEGEN_ORG_ID and CYRUS_CODEGEN_API_TOKEN)",
            );
            None
        }
    };
    let linear = read_linear(top.obj("linear", d), &repositories, env, d);
    let server = read_server(top.obj("server", d), d);
    let store = read_store(top.obj("store", d), d);
    let prompt = read_prompt(top.obj("prompt", d), d);
    let alerts = read_alerts(top.obj("alerts", d), d);
    let images = read_images(top.obj("images", d), d);
    let policy = super::policy::read_policy(top.obj("policy", d), d);
    let triage = super::triage::read_triage(top.obj("triage", d), d);
    let audit = read_audit(top.obj("audit", d), d);
    let orchestration = read_orchestration(top.obj("orchestration", d), d);
    let priced: Vec<&str> = codegen
        .as_ref()
        .map(|c| c.pricing.models.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let experiments = super::experiments::read_experiments(top.get("experiments"), &priced, d);
    let outcome_days = positive_u32(
        &mut top,
        "experimentOutcomeDays",
        defaults::EXPERIMENT_OUTCOME_DAYS,
        d,
    );
    top.finish(d);
    if let Some(policy) = &policy {
        for id in policy.repositories.keys() {
            if !repositories.iter().any(|r| &r.id == id) {
                d.problem(
                    format!("policy.repositories.{id}"),
                    format!(
                        "names no repository (the ids are: {})",
                        repositories
                            .iter()
                            .map(|r| r.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    if let Some(codegen) = &codegen {
        warn_unpriced_models(codegen, d);
    }
    Some(Config {
        repositories,
        codegen: codegen?,
        linear: linear?,
        server: server?,
        store: store?,
        prompt: prompt?,
        alerts: alerts?,
        images: images?,
        policy: policy?,
        triage: triage?,
        audit: audit?,
        orchestration: orchestration?,
        experiments: experiments?,
        experiment_outcome_days: outcome_days?,
    })
}

fn required_string(
    o: &mut Obj<'_>,
    key: &'static str,
    fix: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    match o.string(key, d) {
        Some(s) if !s.trim().is_empty() => Some(s),
        Some(_) => {
            d.problem(o.child(key), format!("must not be empty: {fix}"));
            None
        }
        None => {
            if o.get(key).is_none() {
                d.problem(o.child(key), format!("missing: {fix}"));
            }
            None
        }
    }
}

fn secret(o: &mut Obj<'_>, key: &'static str, d: &mut Diagnostics) -> Option<SecretString> {
    o.string(key, d)
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
}

fn read_repositories(top: &mut Obj<'_>, d: &mut Diagnostics) -> Vec<RepositoryConfig> {
    let path = top.child("repositories");
    let items = match top.get("repositories") {
        Some(Value::Array(items)) => items,
        Some(other) => {
            d.problem(
                path,
                format!("must be a list of repositories (got {})", show(other)),
            );
            return Vec::new();
        }
        None => {
            d.problem(
                path,
                "missing: add at least one repository (see docs/configuration.md)",
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        d.problem(path.clone(), "must list at least one repository");
    }
    let mut out: Vec<RepositoryConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(o) = Obj::new(format!("{path}[{i}]"), item, d) else {
            continue;
        };
        if let Some(repo) = read_repository(o, d) {
            out.push(repo);
        }
    }
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, repo) in out.iter().enumerate() {
        if !ids.insert(repo.id.to_lowercase()) {
            d.problem(
                format!("{path}[{i}].id"),
                format!("duplicate id \"{}\": ids must be unique", repo.id),
            );
        }
        if !names.insert(repo.name.to_lowercase()) {
            d.problem(
                format!("{path}[{i}].name"),
                format!(
                    "duplicate name \"{}\": [repo=name] tags could not tell them apart",
                    repo.name
                ),
            );
        }
    }
    out
}

fn read_repository(mut o: Obj<'_>, d: &mut Diagnostics) -> Option<RepositoryConfig> {
    let id = required_string(&mut o, "id", "give the repository a unique \"id\"", d);
    let name = required_string(
        &mut o,
        "name",
        "give the repository a \"name\" (used by [repo=name] tags)",
        d,
    );
    let repository_path = o.string("repositoryPath", d);
    let linear_token = secret(&mut o, "linearToken", d);
    let linear_workspace_id = match o.string("linearWorkspaceId", d) {
        Some(s) if s.trim().is_empty() => {
            d.problem(
                o.child("linearWorkspaceId"),
                "must not be empty: remove it (the repository then serves every connected workspace) or set the Linear organization id",
            );
            None
        }
        other => other,
    };
    if linear_token.is_some()
        && linear_workspace_id.is_none()
        && o.get("linearWorkspaceId").is_none()
    {
        d.problem(
            o.child("linearWorkspaceId"),
            "missing: a linearToken belongs to one Linear organization; set the organization id it is for (or drop linearToken and connect with `cyrus linear connect`)",
        );
    }
    let codegen_repo_id = match o.get("codegenRepoId") {
        None => None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => n.as_i64(),
        Some(other) => {
            d.problem(
                o.child("codegenRepoId"),
                format!(
                    "must be Codegen's positive integer repository id (got {})",
                    show(other)
                ),
            );
            None
        }
    };
    let team_keys = o.strings("teamKeys", d);
    let project_keys = o.strings("projectKeys", d);
    let routing_labels = o.strings("routingLabels", d);
    let mut label_prompts = BTreeMap::new();
    if let Some(lp) = o.obj("labelPrompts", d) {
        let base = lp.path().to_owned();
        for (key, value) in lp.into_rest() {
            let path = super::walk::join(&base, key);
            match key.parse::<TaskType>() {
                Ok(task_type) => {
                    label_prompts.insert(task_type, super::walk::strings_at(&path, value, d));
                }
                Err(e) => d.problem(path, e),
            }
        }
    }
    let allowed_tools = o.strings("allowedTools", d);
    let mcp_servers = o.strings("mcpServers", d);
    o.finish(d);
    Some(RepositoryConfig {
        id: id?,
        name: name?,
        repository_path,
        linear_token,
        linear_workspace_id,
        codegen_repo_id,
        team_keys,
        project_keys,
        routing_labels,
        label_prompts,
        allowed_tools,
        mcp_servers,
    })
}

/// Dollars → micro-dollars, required to be > 0.
fn money(
    o: &mut Obj<'_>,
    key: &'static str,
    default: i64,
    d: &mut Diagnostics,
) -> Option<MicroDollars> {
    let Some(dollars) = o.number(key, d) else {
        return o.get(key).is_none().then_some(MicroDollars(default));
    };
    match MicroDollars::from_dollars(dollars) {
        Some(m) if m.0 > 0 => Some(m),
        _ => {
            d.problem(
                o.child(key),
                format!("must be greater than 0 (got {dollars})"),
            );
            None
        }
    }
}

/// Dollars → micro-dollars, required to be ≥ 0 (prices may be free).
fn price(path: String, value: &Value, d: &mut Diagnostics) -> Option<MicroDollars> {
    let parsed = value.as_f64().and_then(MicroDollars::from_dollars);
    match parsed {
        Some(m) if m.0 >= 0 => Some(m),
        _ => {
            d.problem(
                path,
                format!("must be a dollar amount, 0 or more (got {})", show(value)),
            );
            None
        }
    }
}

fn positive_u32(
    o: &mut Obj<'_>,
    key: &'static str,
    default: u32,
    d: &mut Diagnostics,
) -> Option<u32> {
    match o.count(key, d) {
        None => o.get(key).is_none().then_some(default),
        Some(n) if n > 0 && n <= u64::from(u32::MAX) => Some(n as u32),
        Some(n) => {
            d.problem(
                o.child(key),
                format!("must be between 1 and {} (got {n})", u32::MAX),
            );
            None
        }
    }
}

fn positive_u64(
    o: &mut Obj<'_>,
    key: &'static str,
    default: u64,
    d: &mut Diagnostics,
) -> Option<u64> {
    match o.count(key, d) {
        None => o.get(key).is_none().then_some(default),
        Some(0) => {
            d.problem(o.child(key), "must be greater than 0 (got 0)");
            None
        }
        Some(n) => Some(n),
    }
}

fn url_setting(
    o: &mut Obj<'_>,
    key: &'static str,
    default: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let url = o.string(key, d).unwrap_or_else(|| default.to_owned());
    if url.starts_with("https://") || url.starts_with("http://") {
        Some(url.trim_end_matches('/').to_owned())
    } else {
        d.problem(
            o.child(key),
            format!("must be an http:// or https:// URL (got \"{url}\")"),
        );
        None
    }
}

fn read_codegen(mut o: Obj<'_>, d: &mut Diagnostics) -> Option<CodegenConfig> {
    let enabled = o.bool("enabled", d).unwrap_or(true);
    if !enabled {
        d.warning(
            o.child("enabled"),
            "Codegen is disabled: issues are acknowledged but no run is started",
        );
    }
    let org_id = match o.get("orgId") {
        None => {
            d.problem(
                o.child("orgId"),
                "missing: set your Codegen organization id (or CYRUS_CODEGEN_ORG_ID)",
            );
            None
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => n.as_i64(),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok_and(|v| v > 0) => {
            s.trim().parse().ok()
        }
        Some(other) => {
            d.problem(
                o.child("orgId"),
                format!(
                    "must be Codegen's organization id, a positive integer or a string of digits (got {})",
                    show(other)
                ),
            );
            None
        }
    };
    let api_token = secret(&mut o, "apiToken", d);
    if api_token.is_none() && !d.problems.iter().any(|p| p.path == o.child("apiToken")) {
        d.problem(
            o.child("apiToken"),
            "missing: set your Codegen API token (or CYRUS_CODEGEN_API_TOKEN)",
        );
    }
    let base_url = url_setting(&mut o, "baseUrl", defaults::CODEGEN_BASE_URL, d);
    let agent_type = o
        .string("agentType", d)
        .unwrap_or_else(|| defaults::CODEGEN_AGENT_TYPE.to_owned());
    let max_cost_per_task = money(
        &mut o,
        "maxCostPerTask",
        defaults::MAX_COST_PER_TASK_MICROS,
        d,
    );
    let max_cost_per_day = money(
        &mut o,
        "maxCostPerDay",
        defaults::MAX_COST_PER_DAY_MICROS,
        d,
    );
    if let (Some(task), Some(day)) = (max_cost_per_task, max_cost_per_day)
        && task > day
    {
        d.warning(
            o.child("maxCostPerTask"),
            format!("is above codegen.maxCostPerDay ({task} > {day}): a single task can exhaust the daily budget"),
        );
    }
    let max_concurrent_runs = positive_u32(
        &mut o,
        "maxConcurrentRuns",
        defaults::MAX_CONCURRENT_RUNS,
        d,
    );
    let default_model = o.string("defaultModel", d).filter(|m| !m.trim().is_empty());
    let model_for_images = o
        .string("modelForImages", d)
        .filter(|m| !m.trim().is_empty());
    let mut model_by_task_type = BTreeMap::new();
    if let Some(m) = o.obj("modelByTaskType", d) {
        let base = m.path().to_owned();
        for (key, value) in m.into_rest() {
            let path = super::walk::join(&base, key);
            match (key.parse::<TaskType>(), value) {
                (Ok(t), Value::String(model)) if !model.trim().is_empty() => {
                    model_by_task_type.insert(t, model.clone());
                }
                (Ok(_), other) => {
                    d.problem(path, format!("must be a model name (got {})", show(other)))
                }
                (Err(e), _) => d.problem(path, e),
            }
        }
    }
    let pricing = o
        .obj("pricing", d)
        .map(|p| read_pricing(p, d))
        .unwrap_or_default();
    let rate_limits = match o.obj("rateLimits", d) {
        Some(mut r) => {
            let defaults = RateLimits::default();
            let create = positive_u32(&mut r, "createPerMinute", defaults.create_per_minute, d);
            let reads = positive_u32(&mut r, "readsPer30s", defaults.reads_per_30s, d);
            let logs = positive_u32(&mut r, "logsPerMinute", defaults.logs_per_minute, d);
            let time_scale = positive_u32(&mut r, "timeScale", defaults.time_scale, d);
            r.finish(d);
            Some(RateLimits {
                create_per_minute: create?,
                reads_per_30s: reads?,
                logs_per_minute: logs?,
                time_scale: time_scale?,
            })
        }
        None => Some(RateLimits::default()),
    };
    let poll_interval_secs =
        positive_u64(&mut o, "pollIntervalSecs", defaults::POLL_INTERVAL_SECS, d);
    let run_deadline_minutes = positive_u64(
        &mut o,
        "runDeadlineMinutes",
        defaults::RUN_DEADLINE_MINUTES,
        d,
    );
    let budget_alert_percent = match o.count("budgetAlertPercent", d) {
        None => o
            .get("budgetAlertPercent")
            .is_none()
            .then_some(defaults::BUDGET_ALERT_PERCENT),
        Some(p @ 1..=100) => Some(p as u8),
        Some(p) => {
            d.problem(
                o.child("budgetAlertPercent"),
                format!("must be between 1 and 100 (got {p})"),
            );
            None
        }
    };
    o.finish(d);
    Some(CodegenConfig {
        enabled,
        org_id: org_id?,
        api_token: api_token?,
        base_url: base_url?,
        agent_type,
        max_cost_per_task: max_cost_per_task?,
        max_cost_per_day: max_cost_per_day?,
        max_concurrent_runs: max_concurrent_runs?,
        default_model,
        model_by_task_type,
        model_for_images,
        pricing,
        rate_limits: rate_limits?,
        poll_interval_secs: poll_interval_secs?,
        run_deadline_minutes: run_deadline_minutes?,
        budget_alert_percent: budget_alert_percent?,
    })
}

/// `{"<model>": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "perRun": 0.0}`.
fn read_pricing(mut o: Obj<'_>, d: &mut Diagnostics) -> PriceTable {
    let per_run = o
        .get("perRun")
        .and_then(|v| price(o.child("perRun"), v, d))
        .unwrap_or(MicroDollars::ZERO);
    let base = o.path().to_owned();
    let mut models = BTreeMap::new();
    for (model, value) in o.into_rest() {
        let Some(mut m) = Obj::new(super::walk::join(&base, model), value, d) else {
            continue;
        };
        let field = |m: &mut Obj<'_>, key: &'static str, d: &mut Diagnostics| match m.get(key) {
            Some(v) => price(m.child(key), v, d),
            None => {
                d.problem(m.child(key), "missing: price in dollars per million tokens");
                None
            }
        };
        let input = field(&mut m, "inputPerMTok", d);
        let output = field(&mut m, "outputPerMTok", d);
        m.finish(d);
        if let (Some(input_per_mtok), Some(output_per_mtok)) = (input, output) {
            models.insert(
                model.clone(),
                ModelPrice {
                    input_per_mtok,
                    output_per_mtok,
                },
            );
        }
    }
    PriceTable { models, per_run }
}

fn warn_unpriced_models(codegen: &CodegenConfig, d: &mut Diagnostics) {
    let named = codegen
        .default_model
        .iter()
        .map(|m| ("codegen.defaultModel".to_owned(), m))
        .chain(
            codegen
                .model_by_task_type
                .iter()
                .map(|(t, m)| (format!("codegen.modelByTaskType.{t}"), m)),
        )
        .chain(
            codegen
                .model_for_images
                .iter()
                .map(|m| ("codegen.modelForImages".to_owned(), m)),
        );
    for (path, model) in named {
        if !codegen.pricing.models.contains_key(model) {
            d.warning(
                path,
                format!("model \"{model}\" has no entry in codegen.pricing: its cost cannot be estimated"),
            );
        }
    }
}

fn read_linear(
    o: Option<Obj<'_>>,
    repositories: &[RepositoryConfig],
    env: &BTreeMap<String, String>,
    d: &mut Diagnostics,
) -> Option<LinearConfig> {
    let env_token = env
        .get(env::LINEAR_TOKEN)
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::from(v.clone()));
    let (
        api_url,
        webhook_secret,
        agent_user_id,
        max_activities,
        verbosity,
        explicit,
        oauth,
        uploads_url,
    ) = match o {
        Some(mut o) => {
            let api_url = url_setting(&mut o, "apiUrl", defaults::LINEAR_API_URL, d);
            let uploads_url = url_setting(&mut o, "uploadsUrl", defaults::LINEAR_UPLOADS_URL, d);
            let webhook_secret = secret(&mut o, "webhookSecret", d);
            let agent_user_id = o.string("agentUserId", d);
            let max_activities = positive_u32(
                &mut o,
                "maxActivitiesPerSessionPerMinute",
                defaults::MAX_ACTIVITIES_PER_SESSION_PER_MINUTE,
                d,
            );
            let verbosity = match o.string("verbosity", d).as_deref() {
                None => Some(Verbosity::default()),
                Some("quiet") => Some(Verbosity::Quiet),
                Some("normal") => Some(Verbosity::Normal),
                Some("verbose") => Some(Verbosity::Verbose),
                Some(other) => {
                    d.problem(
                        o.child("verbosity"),
                        format!("must be \"quiet\", \"normal\" or \"verbose\" (got \"{other}\")"),
                    );
                    None
                }
            };
            let explicit = read_workspaces(&mut o, env_token.as_ref(), d);
            let oauth = match o.obj("oauth", d) {
                Some(section) => read_oauth(section, d),
                None => Some(None),
            };
            o.finish(d);
            (
                api_url,
                webhook_secret,
                agent_user_id,
                max_activities,
                verbosity,
                explicit,
                oauth,
                uploads_url,
            )
        }
        None => (
            Some(defaults::LINEAR_API_URL.to_owned()),
            None,
            None,
            Some(defaults::MAX_ACTIVITIES_PER_SESSION_PER_MINUTE),
            Some(Verbosity::default()),
            Vec::new(),
            Some(None),
            Some(defaults::LINEAR_UPLOADS_URL.to_owned()),
        ),
    };
    // With an OAuth app, a workspace's token can come from its installation
    // (in the store) instead of the file.
    let has_oauth = matches!(oauth, Some(Some(_)));

    // Effective workspaces: explicit entries, then those implied by repositories.
    let mut workspaces: Vec<LinearWorkspace> = Vec::new();
    let mut add = |org: &str,
                   token: Option<SecretString>,
                   own_secret: Option<SecretString>,
                   agent: Option<String>,
                   path: String,
                   d: &mut Diagnostics| {
        if let Some(existing) = workspaces.iter().find(|w| w.organization_id == org) {
            if let Some(token) = &token
                && token.expose_secret() != existing.token.expose_secret()
            {
                d.warning(
                    path,
                    format!("workspace \"{org}\" already has a different token; the first one configured is used"),
                );
            }
            return;
        }
        let Some(token) = token.or_else(|| env_token.clone()) else {
            if !has_oauth {
                d.problem(
                    path,
                    format!("no Linear token for workspace \"{org}\": configure linear.oauth and run `cyrus linear connect` (see docs/connect-linear.md), or for a simulator set linearToken, add it to linear.workspaces, or set CYRUS_LINEAR_TOKEN"),
                );
            }
            return;
        };
        let Some(webhook_secret) = own_secret.or_else(|| webhook_secret.clone()) else {
            d.problem(
                path,
                format!("no webhook secret for workspace \"{org}\": set linear.webhookSecret (or CYRUS_LINEAR_WEBHOOK_SECRET); unsigned webhooks are never accepted"),
            );
            return;
        };
        workspaces.push(LinearWorkspace {
            organization_id: org.to_owned(),
            token,
            webhook_secret,
            agent_user_id: agent.or_else(|| agent_user_id.clone()),
        });
    };
    for (i, w) in explicit.into_iter().enumerate() {
        add(
            &w.organization_id,
            w.token,
            w.webhook_secret,
            w.agent_user_id,
            format!("linear.workspaces[{i}]"),
            d,
        );
    }
    for (i, repo) in repositories.iter().enumerate() {
        let Some(org) = &repo.linear_workspace_id else {
            continue;
        };
        add(
            org,
            repo.linear_token.clone(),
            None,
            None,
            format!("repositories[{i}].linearToken"),
            d,
        );
    }
    if webhook_secret.is_none() && (has_oauth || (workspaces.is_empty() && repositories.is_empty()))
    {
        d.problem(
            "linear.webhookSecret",
            "missing: set the Linear webhook signing secret (the OAuth app's, shown on its page in Linear) or CYRUS_LINEAR_WEBHOOK_SECRET",
        );
    }
    // A problem in the section itself (`oauth` is `None`) is reported already;
    // repositories naming a workspace without a token are reported above.
    if oauth.is_some()
        && !has_oauth
        && workspaces.is_empty()
        && !repositories.is_empty()
        && repositories.iter().all(|r| r.linear_workspace_id.is_none())
    {
        d.problem(
            "linear.oauth",
            "missing: Cyrus has no way to reach Linear; add linear.oauth {clientId, clientSecret, redirectUrl} and run `cyrus linear connect` (see docs/connect-linear.md), or for a simulator give repositories a linearWorkspaceId and linearToken",
        );
    }
    Some(LinearConfig {
        api_url: api_url?,
        webhook_secret,
        agent_user_id,
        workspaces,
        max_activities_per_session_per_minute: max_activities?,
        verbosity: verbosity?,
        oauth: oauth?,
        uploads_url: uploads_url?,
    })
}

/// `linear.oauth`, present in the file (or made by the environment
/// overrides): `None` when a problem was reported.
fn read_oauth(mut o: Obj<'_>, d: &mut Diagnostics) -> Option<Option<LinearOAuthConfig>> {
    let client_id = required_string(
        &mut o,
        "clientId",
        "set the OAuth app's client id from its page in Linear's settings (or CYRUS_LINEAR_CLIENT_ID)",
        d,
    );
    let client_secret = secret(&mut o, "clientSecret", d);
    if client_secret.is_none() && !d.problems.iter().any(|p| p.path == o.child("clientSecret")) {
        d.problem(
            o.child("clientSecret"),
            "missing: set the OAuth app's client secret (or CYRUS_LINEAR_CLIENT_SECRET)",
        );
    }
    let redirect_url = required_string(
        &mut o,
        "redirectUrl",
        "set the callback URL registered on the OAuth app: <server.publicUrl>/oauth/callback, or http://127.0.0.1:PORT/oauth/callback to connect without a running worker",
        d,
    );
    if let Some(url) = &redirect_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        d.problem(
            o.child("redirectUrl"),
            format!("must be an http:// or https:// URL (got \"{url}\")"),
        );
    }
    let scopes = if o.get("scopes").is_some() {
        let scopes = o.strings("scopes", d);
        if scopes.is_empty() {
            d.problem(
                o.child("scopes"),
                "must list at least one scope (the default is read, write, app:assignable, app:mentionable)",
            );
        }
        if scopes.iter().any(|s| s == "admin") {
            d.problem(
                o.child("scopes"),
                "must not contain \"admin\": Linear refuses it for an app installed with actor=app",
            );
        }
        scopes
    } else {
        defaults::LINEAR_OAUTH_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let endpoint_base = match o.get("endpointBase") {
        None => None,
        Some(_) => url_setting(&mut o, "endpointBase", "", d),
    };
    o.finish(d);
    Some(Some(LinearOAuthConfig {
        client_id: client_id?,
        client_secret: client_secret?,
        redirect_url: redirect_url?.trim_end_matches('/').to_owned(),
        scopes,
        endpoint_base,
    }))
}

/// A `linear.workspaces[]` entry as written, before defaults are applied.
struct RawWorkspace {
    organization_id: String,
    token: Option<SecretString>,
    webhook_secret: Option<SecretString>,
    agent_user_id: Option<String>,
}

fn read_workspaces(
    o: &mut Obj<'_>,
    env_token: Option<&SecretString>,
    d: &mut Diagnostics,
) -> Vec<RawWorkspace> {
    let path = o.child("workspaces");
    let items = match o.get("workspaces") {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            d.problem(
                path,
                format!("must be a list of workspaces (got {})", show(other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut w) = Obj::new(format!("{path}[{i}]"), item, d) else {
            continue;
        };
        let org = required_string(
            &mut w,
            "organizationId",
            "set the Linear organization id",
            d,
        );
        let token = secret(&mut w, "token", d);
        if token.is_none() && env_token.is_none() && w.get("token").is_none() {
            d.problem(
                w.child("token"),
                "missing: set the workspace's Linear token (or CYRUS_LINEAR_TOKEN)",
            );
        }
        let own_secret = secret(&mut w, "webhookSecret", d);
        let agent = w.string("agentUserId", d);
        w.finish(d);
        if let Some(org) = org {
            if out.iter().any(|w: &RawWorkspace| w.organization_id == org) {
                d.problem(
                    format!("{path}[{i}].organizationId"),
                    format!("duplicate workspace \"{org}\""),
                );
                continue;
            }
            if token.is_some() || env_token.is_some() {
                out.push(RawWorkspace {
                    organization_id: org,
                    token,
                    webhook_secret: own_secret,
                    agent_user_id: agent,
                });
            }
        }
    }
    out
}

fn read_server(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<ServerConfig> {
    let Some(mut o) = o else {
        return Some(ServerConfig {
            listen: defaults::LISTEN
                .parse()
                .expect("default listen address parses"),
            public_url: None,
            dashboard_token: None,
            idle_timeout_secs: defaults::IDLE_TIMEOUT_SECS,
            max_connections: defaults::MAX_CONNECTIONS as usize,
        });
    };
    let listen_text = o
        .string("listen", d)
        .unwrap_or_else(|| defaults::LISTEN.to_owned());
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            d.problem(
                o.child("listen"),
                format!("must be IP:PORT such as \"127.0.0.1:3456\" or \"0.0.0.0:3456\" (got \"{listen_text}\")"),
            );
            None
        }
    };
    let public_url = o.string("publicUrl", d).filter(|u| !u.is_empty());
    if let Some(url) = &public_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        d.problem(
            o.child("publicUrl"),
            format!("must be an http:// or https:// URL (got \"{url}\")"),
        );
    }
    let dashboard_token = secret(&mut o, "dashboardToken", d);
    let idle_timeout_secs = positive_u64(&mut o, "idleTimeoutSecs", defaults::IDLE_TIMEOUT_SECS, d);
    let max_connections = positive_u64(&mut o, "maxConnections", defaults::MAX_CONNECTIONS, d);
    o.finish(d);
    Some(ServerConfig {
        listen: listen?,
        public_url,
        dashboard_token,
        idle_timeout_secs: idle_timeout_secs?,
        max_connections: usize::try_from(max_connections?).unwrap_or(usize::MAX),
    })
}

fn read_store(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<StoreConfig> {
    let Some(mut o) = o else {
        return Some(StoreConfig {
            url: defaults::STORE_URL.to_owned(),
            sqlite_synchronous: SqliteSynchronous::default(),
            delivery_retention_days: defaults::DELIVERY_RETENTION_DAYS,
        });
    };
    let url = o
        .string("url", d)
        .unwrap_or_else(|| defaults::STORE_URL.to_owned());
    let sqlite_synchronous = match o.string("sqliteSynchronous", d).as_deref() {
        None => Some(SqliteSynchronous::default()),
        Some("full") => Some(SqliteSynchronous::Full),
        Some("normal") => Some(SqliteSynchronous::Normal),
        Some(other) => {
            d.problem(
                o.child("sqliteSynchronous"),
                format!("must be \"full\" or \"normal\" (got \"{other}\")"),
            );
            None
        }
    };
    let delivery_retention_days = positive_u32(
        &mut o,
        "deliveryRetentionDays",
        defaults::DELIVERY_RETENTION_DAYS,
        d,
    );
    o.finish(d);
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|s| url.starts_with(s)) {
        Some(StoreConfig {
            url,
            sqlite_synchronous: sqlite_synchronous?,
            delivery_retention_days: delivery_retention_days?,
        })
    } else {
        d.problem(
            "store.url",
            format!(
                "must start with sqlite:// or postgres:// (got \"{}\")",
                super::summary::redact_url_password(&url)
            ),
        );
        None
    }
}

fn read_prompt(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<PromptConfig> {
    let Some(mut o) = o else {
        return Some(PromptConfig::default());
    };
    let budget = match o.count("tokenBudget", d) {
        None => o
            .get("tokenBudget")
            .is_none()
            .then_some(defaults::PROMPT_TOKEN_BUDGET),
        Some(n) if n as usize >= defaults::PROMPT_TOKEN_BUDGET_MIN => Some(n as usize),
        Some(n) => {
            d.problem(
                o.child("tokenBudget"),
                format!(
                    "must be at least {} tokens (got {n})",
                    defaults::PROMPT_TOKEN_BUDGET_MIN
                ),
            );
            None
        }
    };
    o.finish(d);
    Some(PromptConfig {
        token_budget: budget?,
    })
}

fn read_alerts(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<AlertsConfig> {
    let Some(mut o) = o else {
        return Some(AlertsConfig::default());
    };
    let url = o.string("webhookUrl", d).filter(|u| !u.is_empty());
    if let Some(u) = &url
        && !u.starts_with("https://")
        && !u.starts_with("http://")
    {
        d.problem(o.child("webhookUrl"), "must be an http:// or https:// URL");
    }
    o.finish(d);
    Some(AlertsConfig {
        webhook_url: url.map(SecretString::from),
    })
}

fn read_images(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<ImagesConfig> {
    let Some(mut o) = o else {
        return Some(ImagesConfig::default());
    };
    let mut allowed_hosts = Vec::new();
    for (i, host) in o.strings("allowedHosts", d).into_iter().enumerate() {
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', ':', '@', ' ']) {
            d.problem(
                format!("images.allowedHosts[{i}]"),
                format!("must be a host name such as \"cdn.acme.dev\" (no scheme, port or path; got \"{host}\")"),
            );
        } else {
            allowed_hosts.push(host);
        }
    }
    let max_count = match o.count("maxCount", d) {
        Some(n) => Some(n as usize),
        None => o
            .get("maxCount")
            .is_none()
            .then_some(defaults::IMAGES_MAX_COUNT),
    };
    let max_bytes = positive_u64(&mut o, "maxBytes", defaults::IMAGES_MAX_BYTES as u64, d);
    let timeout_secs = positive_u64(&mut o, "timeoutSecs", defaults::IMAGES_TIMEOUT_SECS, d);
    o.finish(d);
    Some(ImagesConfig {
        allowed_hosts,
        max_count: max_count?,
        max_bytes: max_bytes? as usize,
        timeout_secs: timeout_secs?,
    })
}

fn read_audit(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<AuditConfig> {
    let Some(mut o) = o else {
        return Some(AuditConfig::default());
    };
    let days = positive_u32(&mut o, "retentionDays", defaults::AUDIT_RETENTION_DAYS, d);
    o.finish(d);
    Some(AuditConfig {
        retention_days: days?,
    })
}

fn read_orchestration(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<OrchestrationConfig> {
    let Some(mut o) = o else {
        return Some(OrchestrationConfig::default());
    };
    let parallel = bounded_u32(
        &mut o,
        "maxParallelChildren",
        defaults::ORCHESTRATION_MAX_PARALLEL_CHILDREN,
        defaults::ORCHESTRATION_MAX_PARALLEL_CHILDREN_LIMIT,
        d,
    );
    let sub_issues = bounded_u32(
        &mut o,
        "maxSubIssues",
        defaults::ORCHESTRATION_MAX_SUB_ISSUES,
        defaults::ORCHESTRATION_MAX_SUB_ISSUES_LIMIT,
        d,
    );
    let auto_approve = o.bool("autoApprove", d).unwrap_or(false);
    let max_cost = if o.get("maxCost").is_some() {
        money(&mut o, "maxCost", 0, d).map(Some)
    } else {
        Some(None)
    };
    o.finish(d);
    Some(OrchestrationConfig {
        max_parallel_children: parallel?,
        max_sub_issues: sub_issues?,
        auto_approve,
        max_cost: max_cost?,
    })
}

/// A count between 1 and `limit`.
fn bounded_u32(
    o: &mut Obj<'_>,
    key: &'static str,
    default: u32,
    limit: u32,
    d: &mut Diagnostics,
) -> Option<u32> {
    let n = positive_u32(o, key, default, d)?;
    if n > limit {
        d.problem(o.child(key), format!("must be at most {limit} (got {n})"));
        return None;
    }
    Some(n)
}
