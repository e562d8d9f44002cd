//! `cyrus codegen setup`: the wizard that connects Cyrus to a Codegen
//! organization and writes the configuration.
//!
//! Every question has a flag, so automation runs it with
//! `--non-interactive`; without a terminal (or with that flag) a missing
//! answer is a usage error (exit 2) that lists the flags to pass. Answers
//! already in the file count: re-running edits the file in place and keeps
//! every key it does not ask about. The credentials are checked live before
//! anything is written (exit 1 when Codegen says no).

use crate::codegen_probe::{self, OrgFacts};
use crate::config_file::{self, object_at};
use crate::config_loader;
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use clap::{Args, Subcommand};
use cyrus_core::MicroDollars;
use dialoguer::{Input, Password, Select};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CodegenCommand {
    /// Connect Cyrus to a Codegen organization (interactive; every answer also has a flag).
    Setup(SetupArgs),
}

pub fn run(cmd: CodegenCommand) -> ExitCode {
    match cmd {
        CodegenCommand::Setup(args) => setup(args),
    }
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Configuration file to create or edit.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Codegen organization id.
    #[arg(long, value_name = "ID")]
    org_id: Option<i64>,
    /// Read the Codegen API token from this environment variable.
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Codegen API base URL (default: the file's, else Codegen's public API).
    #[arg(long, value_name = "URL")]
    codegen_url: Option<String>,
    /// The Linear OAuth app's client id (Linear → Settings → API → OAuth applications).
    #[arg(long, value_name = "ID")]
    linear_client_id: Option<String>,
    /// Read the Linear OAuth app's client secret from this environment variable.
    #[arg(long, value_name = "VAR")]
    linear_client_secret_env: Option<String>,
    /// The callback URL registered on the OAuth app (default: <server.publicUrl>/oauth/callback,
    /// else http://127.0.0.1:8765/oauth/callback).
    #[arg(long, value_name = "URL")]
    linear_redirect_url: Option<String>,
    /// A static Linear token for every repository, from this environment variable
    /// (simulators and scripts only: a real workspace is connected with `cyrus linear connect`).
    #[arg(long, value_name = "VAR", hide = true)]
    linear_token_env: Option<String>,
    /// Read the Linear webhook signing secret from this environment variable.
    #[arg(long, value_name = "VAR")]
    webhook_secret_env: Option<String>,
    /// Map a configured repository to a Codegen repository: `ID=CODEGEN_REPO_ID`
    /// (repeatable). An id not in the file adds a repository.
    #[arg(long, value_name = "ID=CODEGEN_REPO_ID")]
    repo_map: Vec<String>,
    /// Linear organization id for repositories added by --repo-map (optional: without
    /// it they serve every connected workspace).
    #[arg(long, value_name = "ID")]
    linear_workspace_id: Option<String>,
    /// Estimated spend limit per task, in dollars.
    #[arg(long, value_name = "DOLLARS")]
    max_cost_per_task: Option<f64>,
    /// Estimated spend limit per UTC day, in dollars.
    #[arg(long, value_name = "DOLLARS")]
    max_cost_per_day: Option<f64>,
    /// Model used when nothing more specific applies.
    #[arg(long, value_name = "MODEL")]
    default_model: Option<String>,
    /// Never ask: fail (exit 2) listing the flags still needed.
    #[arg(long)]
    non_interactive: bool,
}

/// Why the wizard stopped, mapped to an exit code.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    /// Wrong or missing flags, unusable file: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Codegen said no, or the file could not be written: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl From<dialoguer::Error> for SetupError {
    fn from(e: dialoguer::Error) -> Self {
        SetupError::Failed(format!("cannot read the answer: {e}"))
    }
}

fn setup(args: SetupArgs) -> ExitCode {
    match Wizard::new(args).and_then(Wizard::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(SetupError::Usage(msg)) => {
            eprintln!("error: {msg}");
            ui::exit(EXIT_USAGE)
        }
        Err(SetupError::Failed(msg)) => {
            eprintln!("error: {msg}");
            ui::exit(EXIT_FAILURE)
        }
    }
}

struct Wizard {
    args: SetupArgs,
    env: BTreeMap<String, String>,
    path: PathBuf,
    doc: Map<String, Value>,
    interactive: bool,
    /// Flags that would have answered a question nobody could ask.
    missing: Vec<&'static str>,
    style: Style,
}

impl Wizard {
    fn new(args: SetupArgs) -> Result<Wizard, SetupError> {
        let env = config_loader::process_env();
        let path = config_file::target_path(args.config.as_deref(), &env).ok_or_else(|| {
            SetupError::Usage("nowhere to write the configuration: pass --config PATH".to_owned())
        })?;
        let doc = config_file::read_object(&path).map_err(|e| SetupError::Usage(e.to_string()))?;
        let interactive = !args.non_interactive && ui::interactive_terminal();
        Ok(Wizard {
            args,
            env,
            path,
            doc,
            interactive,
            missing: Vec::new(),
            style: Style::detect(),
        })
    }

    fn run(mut self) -> Result<(), SetupError> {
        if self.interactive {
            eprintln!(
                "{} {}",
                self.style.bold("Cyrus ↔ Codegen setup:"),
                self.path.display()
            );
        }
        let org_id = self.org_id()?;
        let token = self.codegen_token()?;
        let base_url = self.base_url();
        let linear_token = match self.args.linear_token_env.clone() {
            Some(var) => Some(self.env_value(&var, "--linear-token-env")?),
            None => None,
        };
        let oauth = self.oauth_app(linear_token.is_some())?;
        let webhook_secret = self.secret(
            self.args.webhook_secret_env.clone(),
            "--webhook-secret-env VAR",
            "Linear webhook signing secret",
            self.needs_webhook_secret(),
        )?;
        let maps = self.parse_repo_maps()?;
        if !self.missing.is_empty() {
            return Err(SetupError::Usage(format!(
                "missing answers and no terminal to ask them on (or --non-interactive); pass: {}",
                self.missing.join(", ")
            )));
        }
        let (Some(org_id), Some(token)) = (org_id, token) else {
            unreachable!("missing answers were reported above");
        };

        let facts = self.check_codegen(&base_url, org_id, token.clone())?;

        let codegen = object_at(&mut self.doc, "codegen");
        codegen.insert("orgId".into(), json!(org_id));
        if let Some(token) = &token_text(&token) {
            codegen.insert("apiToken".into(), json!(token));
        }
        if self.args.codegen_url.is_some() || codegen.contains_key("baseUrl") {
            codegen.insert("baseUrl".into(), json!(base_url));
        }
        self.map_repositories(&facts, maps)?;
        if let Some(t) = linear_token {
            for repo in self.repositories_mut() {
                repo.insert("linearToken".into(), json!(t));
            }
        }
        if let Some(s) = webhook_secret {
            object_at(&mut self.doc, "linear").insert("webhookSecret".into(), json!(s));
        }
        let redirect = oauth.as_ref().map(|o| o.redirect_url.clone());
        if let Some(o) = oauth {
            let section = object_at(object_at(&mut self.doc, "linear"), "oauth");
            if let Some(id) = o.client_id {
                section.insert("clientId".into(), json!(id));
            }
            if let Some(secret) = o.client_secret {
                section.insert("clientSecret".into(), json!(secret));
            }
            section.insert("redirectUrl".into(), json!(o.redirect_url));
        }
        self.budgets_and_model()?;
        let path = self.path.clone();
        let style = self.style;
        self.write(&facts)?;
        if let Some(redirect) = redirect {
            eprintln!(
                "{} Next: make sure {redirect} is a callback URL of the OAuth app in Linear, then connect your workspace:\n\n    cyrus linear connect --config {}\n",
                style.ok(),
                path.display()
            );
        }
        Ok(())
    }

    /// The OAuth app (`linear.oauth`): from flags, the prompt, the file or
    /// the environment. Required without a terminal unless static tokens
    /// are configured (simulators). `None`: nothing to write.
    fn oauth_app(&mut self, static_token_given: bool) -> Result<Option<OAuthAnswers>, SetupError> {
        let file = |key: &str, doc: &Map<String, Value>| {
            doc.get("linear")?
                .get("oauth")?
                .get(key)?
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let file_id = file("clientId", &self.doc);
        let has_secret = file("clientSecret", &self.doc).is_some()
            || self.env_set(cyrus_core::config::env::LINEAR_CLIENT_SECRET);
        let has_id = file_id.is_some() || self.env_set(cyrus_core::config::env::LINEAR_CLIENT_ID);
        let default_redirect = file("redirectUrl", &self.doc).unwrap_or_else(|| {
            match self
                .doc
                .get("server")
                .and_then(|s| s.get("publicUrl"))
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
            {
                Some(public) => format!("{}/oauth/callback", public.trim_end_matches('/')),
                None => DEFAULT_REDIRECT.to_owned(),
            }
        });
        let required = !static_token_given && !self.has_static_tokens();
        let client_id = match self.args.linear_client_id.clone() {
            Some(id) if id.trim().is_empty() => {
                return Err(SetupError::Usage(
                    "--linear-client-id must not be empty".into(),
                ));
            }
            Some(id) => Some(id.trim().to_owned()),
            None if self.interactive => {
                eprintln!(
                    "Cyrus connects to Linear as an OAuth app installed with actor=app (docs/connect-linear.md)."
                );
                let mut input = Input::<String>::new()
                    .with_prompt("Linear OAuth app client id")
                    .allow_empty(has_id);
                if let Some(id) = &file_id {
                    input = input.default(id.clone());
                }
                Some(input.interact_text()?)
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty() && Some(a) != file_id.as_ref())
            }
            None => {
                if required && !has_id {
                    self.missing.push("--linear-client-id ID");
                }
                None
            }
        };
        let client_secret = match self.args.linear_client_secret_env.clone() {
            Some(var) => Some(self.env_value(&var, "--linear-client-secret-env")?),
            None if self.interactive => {
                let answer = ask_secret("Linear OAuth app client secret", has_secret)?;
                if answer.is_none() && !has_secret {
                    return Err(SetupError::Usage(
                        "the OAuth app's client secret is required".into(),
                    ));
                }
                answer
            }
            None => {
                if required && !has_secret {
                    self.missing.push("--linear-client-secret-env VAR");
                }
                None
            }
        };
        let redirect_url = match self.args.linear_redirect_url.clone() {
            Some(u) => u,
            None if self.interactive => Input::<String>::new()
                .with_prompt("Linear OAuth redirect URL (registered on the app)")
                .default(default_redirect)
                .interact_text()?,
            None => default_redirect,
        };
        let redirect_url = redirect_url.trim().trim_end_matches('/').to_owned();
        if !(redirect_url.starts_with("http://") || redirect_url.starts_with("https://")) {
            return Err(SetupError::Usage(format!(
                "the redirect URL must be an http:// or https:// URL (got \"{redirect_url}\")"
            )));
        }
        let any = client_id.is_some() || client_secret.is_some() || has_id || has_secret;
        Ok(any.then_some(OAuthAnswers {
            client_id,
            client_secret,
            redirect_url,
        }))
    }

    // ---- answers -----------------------------------------------------------

    fn codegen_section(&self) -> Option<&Map<String, Value>> {
        self.doc.get("codegen")?.as_object()
    }

    fn org_id(&mut self) -> Result<Option<i64>, SetupError> {
        let current = self.codegen_section().and_then(|c| match c.get("orgId")? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        if let Some(id) = self.args.org_id {
            if id <= 0 {
                return Err(SetupError::Usage(format!(
                    "--org-id must be a positive number (got {id})"
                )));
            }
            return Ok(Some(id));
        }
        if !self.interactive {
            if current.is_none() {
                self.missing.push("--org-id ID");
            }
            return Ok(current);
        }
        let mut input = Input::<i64>::new()
            .with_prompt("Codegen organization id")
            .validate_with(|v: &i64| {
                if *v > 0 {
                    Ok(())
                } else {
                    Err("must be a positive number")
                }
            });
        if let Some(c) = current {
            input = input.default(c);
        }
        Ok(Some(input.interact_text()?))
    }

    /// The token from `--token-env`, the prompt, or the file (`Keep`).
    fn codegen_token(&mut self) -> Result<Option<Token>, SetupError> {
        let current = self
            .codegen_section()
            .and_then(|c| c.get("apiToken")?.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(var) = self.args.token_env.clone() {
            return self
                .env_value(&var, "--token-env")
                .map(|t| Some(Token::New(t)));
        }
        if !self.interactive {
            return Ok(match current {
                Some(t) => Some(Token::Keep(t)),
                None => {
                    self.missing.push("--token-env VAR");
                    None
                }
            });
        }
        let answer = ask_secret("Codegen API token", current.is_some())?;
        Ok(Some(match (answer, current) {
            (Some(t), _) => Token::New(t),
            (None, Some(c)) => Token::Keep(c),
            (None, None) => {
                return Err(SetupError::Usage("a Codegen API token is required".into()));
            }
        }))
    }

    fn base_url(&self) -> String {
        self.args
            .codegen_url
            .clone()
            .or_else(|| {
                self.codegen_section()
                    .and_then(|c| c.get("baseUrl")?.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| cyrus_core::config::defaults::CODEGEN_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    fn repositories(&self) -> Vec<&Map<String, Value>> {
        self.doc
            .get("repositories")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default()
    }

    fn repositories_mut(&mut self) -> impl Iterator<Item = &mut Map<String, Value>> {
        self.doc
            .get_mut("repositories")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
    }

    fn env_set(&self, var: &str) -> bool {
        self.env.get(var).is_some_and(|v| !v.is_empty())
    }

    /// Static tokens (simulators, scripts): every repository has one, or
    /// the environment provides the fallback.
    fn has_static_tokens(&self) -> bool {
        let repos = self.repositories();
        let all_have = !repos.is_empty()
            && repos
                .iter()
                .all(|r| r.get("linearToken").and_then(Value::as_str).is_some());
        all_have || self.env_set("CYRUS_LINEAR_TOKEN")
    }

    fn needs_webhook_secret(&self) -> bool {
        let in_file = self
            .doc
            .get("linear")
            .and_then(|l| l.get("webhookSecret"))
            .and_then(Value::as_str)
            .is_some();
        !in_file && !self.env_set("CYRUS_LINEAR_WEBHOOK_SECRET")
    }

    fn env_value(&self, var: &str, flag: &str) -> Result<String, SetupError> {
        self.env
            .get(var)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| {
                SetupError::Usage(format!(
                    "{flag} {var}: environment variable {var} is not set or empty"
                ))
            })
    }

    /// A secret from its `--…-env` flag, else asked (empty keeps the current
    /// one), else recorded as missing when `required`.
    fn secret(
        &mut self,
        var: Option<String>,
        flag: &'static str,
        prompt: &str,
        required: bool,
    ) -> Result<Option<String>, SetupError> {
        if let Some(var) = var {
            let name = flag.split_whitespace().next().unwrap_or(flag);
            return self.env_value(&var, name).map(Some);
        }
        if !self.interactive {
            if required {
                self.missing.push(flag);
            }
            return Ok(None);
        }
        ask_secret(prompt, !required)
    }

    fn parse_repo_maps(&mut self) -> Result<Vec<(String, i64)>, SetupError> {
        let mut out = Vec::new();
        for raw in &self.args.repo_map {
            let parsed = raw
                .split_once('=')
                .and_then(|(id, n)| Some((id.trim().to_owned(), n.trim().parse::<i64>().ok()?)))
                .filter(|(id, n)| !id.is_empty() && *n > 0);
            match parsed {
                Some(pair) => out.push(pair),
                None => {
                    return Err(SetupError::Usage(format!(
                        "--repo-map {raw}: expected ID=CODEGEN_REPO_ID with a positive number"
                    )));
                }
            }
        }
        let known: Vec<String> = self
            .repositories()
            .iter()
            .filter_map(|r| r.get("id")?.as_str().map(str::to_owned))
            .collect();
        if known.is_empty() && out.is_empty() && !self.interactive {
            self.missing.push("--repo-map ID=CODEGEN_REPO_ID");
        }
        Ok(out)
    }

    fn default_workspace(&self) -> Option<String> {
        self.args.linear_workspace_id.clone().or_else(|| {
            self.repositories()
                .iter()
                .find_map(|r| r.get("linearWorkspaceId")?.as_str().map(str::to_owned))
        })
    }

    // ---- the live check ------------------------------------------------------

    fn check_codegen(
        &self,
        base_url: &str,
        org_id: i64,
        token: Token,
    ) -> Result<OrgFacts, SetupError> {
        let client = codegen_probe::client(base_url, org_id, SecretString::from(token.into_text()))
            .map_err(SetupError::Usage)?;
        let runtime = ui::runtime().map_err(|e| SetupError::Failed(e.to_string()))?;
        let spinner = ui::spinner("Checking the Codegen token and organization…");
        let result = runtime.block_on(codegen_probe::inspect(&client));
        spinner.finish_and_clear();
        let facts = result.map_err(SetupError::Failed)?;
        eprintln!(
            "{} Codegen: signed in as {} in organization {} ({}), {} repositor{}",
            self.style.ok(),
            facts.user.github_username,
            org_id,
            facts.org_name,
            facts.repos.len(),
            if facts.repos.len() == 1 { "y" } else { "ies" }
        );
        for w in facts.warnings() {
            eprintln!("{} warning: {w}", self.style.warn());
        }
        Ok(facts)
    }

    // ---- repositories ----------------------------------------------------------

    fn map_repositories(
        &mut self,
        facts: &OrgFacts,
        maps: Vec<(String, i64)>,
    ) -> Result<(), SetupError> {
        for (_, repo_id) in &maps {
            if !facts.repos.iter().any(|r| r.id == *repo_id) {
                return Err(SetupError::Failed(format!(
                    "Codegen repository {repo_id} is not in organization {}; available: {}",
                    facts.org_name,
                    repo_list(facts)
                )));
            }
        }
        let workspace = self.default_workspace();
        for (id, repo_id) in maps {
            let existing = self
                .repositories_mut()
                .find(|r| r.get("id").and_then(Value::as_str) == Some(id.as_str()));
            match existing {
                Some(repo) => {
                    repo.insert("codegenRepoId".into(), json!(repo_id));
                }
                None => {
                    let name = facts
                        .repos
                        .iter()
                        .find(|r| r.id == repo_id)
                        .map(|r| r.name.clone())
                        .unwrap_or_else(|| id.clone());
                    let mut repo = json!({"id": id, "name": name, "codegenRepoId": repo_id});
                    // Without a workspace id the repository serves every
                    // connected workspace; the installation says which.
                    if let Some(ws) = &workspace {
                        repo["linearWorkspaceId"] = json!(ws);
                    }
                    self.push_repository(repo);
                }
            }
        }
        if self.interactive {
            self.ask_repository_mapping(facts)?;
        }
        Ok(())
    }

    fn push_repository(&mut self, repo: Value) {
        let slot = self
            .doc
            .entry("repositories")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        if let Some(list) = slot.as_array_mut() {
            list.push(repo);
        }
    }

    fn ask_repository_mapping(&mut self, facts: &OrgFacts) -> Result<(), SetupError> {
        let mut items = vec!["(let Codegen pick)".to_owned()];
        items.extend(
            facts
                .repos
                .iter()
                .map(|r| format!("{} (id {})", r.full_name, r.id)),
        );
        if self.repositories().is_empty() && !facts.repos.is_empty() {
            eprintln!("No repositories are configured yet; add one.");
            let pick = Select::new()
                .with_prompt("Codegen repository")
                .items(&items[1..])
                .default(0)
                .interact()?;
            let repo = &facts.repos[pick];
            let id: String = Input::new()
                .with_prompt("Repository id (for Cyrus)")
                .default(repo.name.clone())
                .interact_text()?;
            let name = repo.name.clone();
            let mut entry = json!({"id": id, "name": name, "codegenRepoId": repo.id});
            if let Some(ws) = self.default_workspace() {
                entry["linearWorkspaceId"] = json!(ws);
            }
            self.push_repository(entry);
            return Ok(());
        }
        let count = self.repositories().len();
        for index in 0..count {
            let (label, current, name) = {
                let r = self.repositories()[index];
                let id = r
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let name = r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&id)
                    .to_owned();
                (id, r.get("codegenRepoId").and_then(Value::as_i64), name)
            };
            let default = current
                .and_then(|c| facts.repos.iter().position(|r| r.id == c))
                .or_else(|| facts.repos.iter().position(|r| r.name == name))
                .map_or(0, |p| p + 1);
            let pick = Select::new()
                .with_prompt(format!("Codegen repository for `{label}`"))
                .items(&items)
                .default(default)
                .interact()?;
            if let Some(repo) = self.repositories_mut().nth(index) {
                if pick == 0 {
                    repo.remove("codegenRepoId");
                } else {
                    repo.insert("codegenRepoId".into(), json!(facts.repos[pick - 1].id));
                }
            }
        }
        Ok(())
    }

    // ---- budgets, model, write ---------------------------------------------------

    fn budgets_and_model(&mut self) -> Result<(), SetupError> {
        let per_task = self.money(
            self.args.max_cost_per_task,
            "maxCostPerTask",
            "--max-cost-per-task",
            "Spend limit per task ($)",
            cyrus_core::config::defaults::MAX_COST_PER_TASK_MICROS,
        )?;
        let per_day = self.money(
            self.args.max_cost_per_day,
            "maxCostPerDay",
            "--max-cost-per-day",
            "Spend limit per UTC day ($)",
            cyrus_core::config::defaults::MAX_COST_PER_DAY_MICROS,
        )?;
        let model = match self.args.default_model.clone() {
            Some(m) => Some(m),
            None if self.interactive => {
                let current = self
                    .codegen_section()
                    .and_then(|c| c.get("defaultModel")?.as_str())
                    .unwrap_or("")
                    .to_owned();
                let answer: String = Input::new()
                    .with_prompt("Default model (empty: the organization's default)")
                    .default(current)
                    .allow_empty(true)
                    .interact_text()?;
                Some(answer)
            }
            None => None,
        };
        let codegen = object_at(&mut self.doc, "codegen");
        if let Some(v) = per_task {
            codegen.insert("maxCostPerTask".into(), json!(v));
        }
        if let Some(v) = per_day {
            codegen.insert("maxCostPerDay".into(), json!(v));
        }
        match model.as_deref().map(str::trim) {
            Some("") => {
                codegen.remove("defaultModel");
            }
            Some(m) => {
                codegen.insert("defaultModel".into(), json!(m));
            }
            None => {}
        }
        Ok(())
    }

    /// Dollars from the flag or the prompt; `None` keeps the file's value.
    fn money(
        &self,
        flag: Option<f64>,
        key: &str,
        flag_name: &str,
        prompt: &str,
        default_micros: i64,
    ) -> Result<Option<f64>, SetupError> {
        let valid = |v: f64| v.is_finite() && v > 0.0 && MicroDollars::from_dollars(v).is_some();
        if let Some(v) = flag {
            if !valid(v) {
                return Err(SetupError::Usage(format!(
                    "{flag_name} must be a positive amount of dollars (got {v})"
                )));
            }
            return Ok(Some(v));
        }
        if !self.interactive {
            return Ok(None);
        }
        let current = self
            .codegen_section()
            .and_then(|c| c.get(key)?.as_f64())
            .unwrap_or(default_micros as f64 / 1e6);
        let answer = Input::<f64>::new()
            .with_prompt(prompt)
            .default(current)
            .validate_with(move |v: &f64| {
                if valid(*v) {
                    Ok(())
                } else {
                    Err("must be a positive amount of dollars")
                }
            })
            .interact_text()?;
        Ok(Some(answer))
    }

    fn write(self, facts: &OrgFacts) -> Result<(), SetupError> {
        let text = config_file::to_text(&self.doc);
        let loaded = match cyrus_core::config::parse(&text, &self.env) {
            Ok(loaded) => loaded,
            Err(e) => {
                return Err(SetupError::Usage(format!(
                    "the resulting configuration would not be usable, nothing was written:\n{}",
                    describe(e)
                )));
            }
        };
        for w in super::linear::personal_key_warnings(&loaded.config, &self.env) {
            eprintln!("{} warning: {w}", self.style.warn());
        }
        for w in facts.mcp_warnings(&loaded.config.repositories) {
            eprintln!("{} warning: {w}", self.style.warn());
        }
        config_file::write_atomic(&self.path, &text, true)
            .map_err(|e| SetupError::Failed(e.to_string()))?;
        eprintln!(
            "{} wrote {} (mode 0600); check it with `cyrus doctor`",
            self.style.ok(),
            self.path.display()
        );
        Ok(())
    }
}

/// The loopback callback `cyrus linear connect` listens on by itself.
const DEFAULT_REDIRECT: &str = "http://127.0.0.1:8765/oauth/callback";

/// What the wizard learned about the OAuth app; `None` fields keep the file's.
struct OAuthAnswers {
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_url: String,
}

/// The Codegen token: newly entered (written to the file) or kept.
#[derive(Clone)]
enum Token {
    New(String),
    Keep(String),
}

impl Token {
    fn into_text(self) -> String {
        match self {
            Token::New(t) | Token::Keep(t) => t,
        }
    }
}

fn token_text(token: &Token) -> Option<String> {
    match token {
        Token::New(t) => Some(t.clone()),
        Token::Keep(_) => None,
    }
}

/// Hidden input; with `keep_allowed`, an empty answer means "keep".
fn ask_secret(prompt: &str, keep_allowed: bool) -> Result<Option<String>, SetupError> {
    let prompt = if keep_allowed {
        format!("{prompt} (empty: keep the current one)")
    } else {
        prompt.to_owned()
    };
    let answer = Password::new()
        .with_prompt(prompt)
        .allow_empty_password(keep_allowed)
        .interact()?;
    Ok(Some(answer).filter(|a| !a.trim().is_empty()))
}

fn repo_list(facts: &OrgFacts) -> String {
    if facts.repos.is_empty() {
        return "none".to_owned();
    }
    facts
        .repos
        .iter()
        .map(|r| format!("{} ({})", r.id, r.full_name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(e: cyrus_core::config::ConfigError) -> String {
    match e {
        cyrus_core::config::ConfigError::Malformed { message, .. } => format!("  - {message}"),
        cyrus_core::config::ConfigError::Invalid { problems, .. } => problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}
