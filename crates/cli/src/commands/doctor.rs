//! `cyrus doctor [--config PATH] [--json]`: checks everything Cyrus needs,
//! one line per check with the fix. Exit 1 when any check fails (0 when all
//! pass); warnings do not fail (an unusable MCP server is a warning: runs
//! still work, without that tool).

use crate::codegen_probe;
use crate::mcp_servers;
use crate::probes;
use crate::ui::{self, EXIT_FAILURE, Style};
use clap::Args;
use cyrus_core::config::Config;
use cyrus_linear::{Credentials, LinearClient, LinearClientConfig};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Clock difference with Codegen that is still fine. Webhook signatures and
/// token expiry tolerate about a minute.
const MAX_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the stable JSON report (docs/cli.md).
    #[arg(long)]
    json: bool,
}

/// `pass`, `warn` or `fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    /// Stable identifier (docs/cli.md).
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// What to do; `null` when the check passed.
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub checks: Vec<CheckResult>,
}

fn pass(check: &str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        check: check.to_owned(),
        status: Status::Pass,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> CheckResult {
    CheckResult {
        check: check.to_owned(),
        status: Status::Fail,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let runtime = match ui::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    let mut checks = Vec::new();
    match probes::load_config(args.config.as_deref()) {
        Ok(found) => {
            checks.push(pass("config", format!("{} is valid", found.path.display())));
            let spinner = if args.json {
                indicatif::ProgressBar::hidden()
            } else {
                ui::spinner("Checking the store, the network and the credentials…")
            };
            checks.extend(runtime.block_on(live_checks(&found.loaded.config)));
            spinner.finish_and_clear();
        }
        Err(e) => checks.push(fail(
            "config",
            e.to_string(),
            "fix the file (`cyrus config check` lists every problem) or run `cyrus codegen setup`",
        )),
    }
    let report = DoctorReport {
        ok: checks.iter().all(|c| c.status != Status::Fail),
        checks,
    };
    if args.json {
        if let Err(code) = ui::print_json(&report) {
            return code;
        }
    } else {
        let s = Style::detect();
        for c in &report.checks {
            let mark = match c.status {
                Status::Pass => s.ok(),
                Status::Warn => s.warn(),
                Status::Fail => s.fail(),
            };
            println!("{mark} {:<10} {}", c.check, c.detail);
            if let Some(fix) = &c.fix {
                println!("  {} {fix}", s.dim("fix:"));
            }
        }
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ui::exit(EXIT_FAILURE)
    }
}

async fn live_checks(config: &Config) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut installations = Vec::new();
    if probes::store_missing(&config.store.url) {
        out.push(pass(
            "store",
            format!(
                "{} does not exist yet: it will be created by `cyrus start` (or `cyrus linear connect`)",
                config.store.redacted_url()
            ),
        ));
    } else {
        out.push(match probes::open_store(&config.store.url).await {
            Ok(store) => {
                let listed = store.list_installation_infos().await;
                store.close().await;
                match listed {
                    Ok(list) => {
                        installations = list;
                        pass(
                            "store",
                            format!("{} is reachable and migrated", config.store.redacted_url()),
                        )
                    }
                    Err(e) => fail(
                        "store",
                        format!("{}: cannot read installations: {e}", config.store.redacted_url()),
                        "start the worker once (`cyrus start`) to migrate the store",
                    ),
                }
            }
            Err(e) => fail(
                "store",
                format!("{}: {e}", config.store.redacted_url()),
                "check `store.url` (or CYRUS_STORE_URL); `cyrus start` creates and migrates the database",
            ),
        });
    }
    out.extend(installation_checks(config, &installations));
    out.push(listen_check(config).await);
    out.extend(codegen_checks(config).await);
    out.extend(linear_checks(config).await);
    out.push(webhook_secret_check(config));
    out
}

async fn listen_check(config: &Config) -> CheckResult {
    let listen = config.server.listen;
    match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => {
            drop(listener);
            pass("listen", format!("{listen} is free"))
        }
        Err(e) => {
            let health = probes::worker_health(listen).await;
            if health.running {
                CheckResult {
                    check: "listen".into(),
                    status: Status::Pass,
                    detail: format!(
                        "{listen} is held by a running Cyrus worker (owner {}, version {})",
                        health.owner.as_deref().unwrap_or("?"),
                        health.version.as_deref().unwrap_or("?")
                    ),
                    fix: None,
                }
            } else {
                fail(
                    "listen",
                    format!("{listen} cannot be bound ({e}) and no Cyrus worker answers there"),
                    "stop the program using that port or change `server.listen` (or CYRUS_LISTEN)",
                )
            }
        }
    }
}

async fn codegen_checks(config: &Config) -> Vec<CheckResult> {
    let c = &config.codegen;
    let client = match codegen_probe::client(&c.base_url, c.org_id, c.api_token.clone()) {
        Ok(client) => client,
        Err(e) => {
            return vec![fail(
                "codegen",
                e,
                "fix `codegen.baseUrl` (or CYRUS_CODEGEN_BASE_URL)",
            )];
        }
    };
    let me = client.me().await;
    let reachable = me.is_ok();
    let mut out = vec![match me {
        Ok(user) => pass(
            "codegen",
            format!(
                "{} answers; authorised as {} (org {})",
                c.base_url, user.github_username, c.org_id
            ),
        ),
        Err(e) => {
            let fix = match &e {
                cyrus_codegen_executor::CodegenError::Unauthorized { .. } => {
                    "set a valid `codegen.apiToken` (or CYRUS_CODEGEN_API_TOKEN); `cyrus codegen setup` checks it"
                }
                cyrus_codegen_executor::CodegenError::Transport { .. } => {
                    "check `codegen.baseUrl` (or CYRUS_CODEGEN_BASE_URL) and the network"
                }
                _ => "see the error; `cyrus codegen setup` re-checks the token and organization",
            };
            fail("codegen", codegen_probe::explain(e), fix)
        }
    }];
    out.push(clock_check(&c.base_url).await);
    if reachable {
        out.extend(mcp_checks(config, &client).await);
    }
    out
}

/// One check per repository that names MCP servers (`mcp:<id>`): a
/// warning names each one Codegen does not offer or the organization has
/// not connected or has inactive (runs still work, without that tool).
async fn mcp_checks(
    config: &Config,
    client: &cyrus_codegen_executor::CodegenClient,
) -> Vec<CheckResult> {
    if config.repositories.iter().all(|r| r.mcp_servers.is_empty()) {
        return Vec::new();
    }
    let catalog = match client.mcp_catalog().await {
        Ok(catalog) => catalog,
        Err(e) => {
            return vec![CheckResult {
                check: "mcp".into(),
                status: Status::Warn,
                detail: format!(
                    "cannot read Codegen's MCP providers and integrations: {}",
                    codegen_probe::explain(e)
                ),
                fix: Some("run doctor again; `cyrus mcp list` shows what Codegen offers".into()),
            }];
        }
    };
    mcp_servers::findings(&config.repositories, &catalog)
        .into_iter()
        .map(|f| {
            let name = format!("mcp:{}", f.repository);
            if f.unusable.is_empty() {
                pass(&name, format!("{} active at Codegen", f.named.join(", ")))
            } else {
                CheckResult {
                    check: name,
                    status: Status::Warn,
                    detail: format!(
                        "MCP servers runs of this repository cannot use: {}",
                        f.summary()
                    ),
                    fix: Some(f.fixes(&catalog)),
                }
            }
        })
        .collect()
}

/// Compares Codegen's `Date` header with the local clock.
async fn clock_check(base_url: &str) -> CheckResult {
    let client = match reqwest::Client::builder()
        .timeout(codegen_probe::TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail("clock", e.to_string(), "report this as a bug"),
    };
    let sent = chrono::Utc::now();
    let response = match client.get(format!("{base_url}/v1/users/me")).send().await {
        Ok(r) => r,
        Err(e) => {
            return CheckResult {
                check: "clock".into(),
                status: Status::Warn,
                detail: format!("cannot compare clocks, Codegen did not answer: {e}"),
                fix: Some("check the network; then run doctor again".into()),
            };
        }
    };
    let received = chrono::Utc::now();
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
    let Some(date) = date else {
        return CheckResult {
            check: "clock".into(),
            status: Status::Warn,
            detail: "Codegen's answer has no usable Date header; clock skew unknown".into(),
            fix: None,
        };
    };
    // The header has one-second resolution; compare with the midpoint.
    let local = sent + (received - sent) / 2;
    let skew = (local - date.with_timezone(&chrono::Utc)).abs();
    let skew_s = skew.num_milliseconds() as f64 / 1000.0;
    if skew.to_std().unwrap_or(Duration::MAX) <= MAX_SKEW {
        pass(
            "clock",
            format!("local clock within {skew_s:.1}s of Codegen's"),
        )
    } else {
        fail(
            "clock",
            format!(
                "local clock differs from Codegen's by {skew_s:.0}s (more than {}s)",
                MAX_SKEW.as_secs()
            ),
            "synchronise the clock (NTP, e.g. `timedatectl set-ntp true`)",
        )
    }
}

async fn linear_checks(config: &Config) -> Vec<CheckResult> {
    let endpoint = match url::Url::parse(&config.linear.api_url) {
        Ok(u) => u,
        Err(e) => {
            return vec![fail(
                "linear",
                format!("`linear.apiUrl` is not a URL: {e}"),
                "fix `linear.apiUrl` (or CYRUS_LINEAR_API_URL)",
            )];
        }
    };
    let mut out = Vec::new();
    for ws in &config.linear.workspaces {
        let name = format!("linear:{}", ws.organization_id);
        let mut settings =
            LinearClientConfig::new(endpoint.clone(), Credentials::ApiKey(ws.token.clone()));
        settings.max_retries = 1;
        settings.request_timeout = codegen_probe::TIMEOUT;
        let result = match LinearClient::new(settings) {
            Ok(client) => client.viewer().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push(match result {
            Ok(viewer) => {
                let org = viewer.organization.as_ref().map(|o| o.id.as_str());
                if org.is_some_and(|o| o != ws.organization_id) {
                    fail(
                        &name,
                        format!(
                            "the token belongs to Linear organization {}, not {}",
                            org.unwrap_or("?"),
                            ws.organization_id
                        ),
                        "use a token of that workspace in the repository's `linearToken` or `linear.workspaces[].token`",
                    )
                } else {
                    pass(
                        &name,
                        format!(
                            "authorised as {}",
                            viewer.name.as_deref().unwrap_or(&viewer.id)
                        ),
                    )
                }
            }
            Err(e) => fail(
                &name,
                e,
                "set a valid Linear token for this workspace (`repositories[].linearToken`, `linear.workspaces[].token` or CYRUS_LINEAR_TOKEN)",
            ),
        });
    }
    out
}

/// One check per installation, a warning per personal API key, and a
/// failure when Cyrus has no way to reach any workspace.
fn installation_checks(
    config: &Config,
    installations: &[cyrus_store::InstallationInfo],
) -> Vec<CheckResult> {
    use cyrus_store::InstallationStatus;
    let mut out = Vec::new();
    for i in installations {
        let name = format!("linear:{}", i.url_key);
        let what = format!(
            "{} (workspace {}): agent {}, {}",
            i.workspace_name, i.workspace_id, i.app_user_name, i.status
        );
        out.push(match i.status {
            InstallationStatus::Active => pass(&name, what),
            InstallationStatus::NeedsReconnect | InstallationStatus::Revoked => fail(
                &name,
                format!(
                    "{what}{}; this workspace's tasks wait",
                    i.status_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                "run `cyrus linear connect` (as an admin of that workspace) to reconnect it; waiting tasks then continue",
            ),
        });
    }
    let env = crate::config_loader::process_env();
    for w in crate::commands::linear::personal_key_warnings(config, &env) {
        out.push(CheckResult {
            check: "linear-key".into(),
            status: Status::Warn,
            detail: format!("{}: {}", w.path, w.message),
            fix: Some("run `cyrus linear connect` (see docs/connect-linear.md)".into()),
        });
    }
    if installations.is_empty() && config.linear.workspaces.is_empty() {
        let fix = if config.linear.oauth.is_some() {
            "run `cyrus linear connect` to install the app in your workspace"
        } else {
            "create the OAuth app in Linear, set linear.oauth {clientId, clientSecret, redirectUrl}, then run `cyrus linear connect` (docs/connect-linear.md)"
        };
        out.push(fail(
            "linear",
            "no Linear workspace is connected and no static token is configured",
            fix,
        ));
    }
    out
}

fn webhook_secret_check(config: &Config) -> CheckResult {
    if config.linear.workspaces.is_empty()
        && config
            .linear
            .webhook_secret
            .as_ref()
            .is_some_and(|s| !s.expose_secret().trim().is_empty())
    {
        return pass("webhook", "the OAuth app's webhook signing secret is set");
    }
    let unset: Vec<&str> = config
        .linear
        .workspaces
        .iter()
        .filter(|w| w.webhook_secret.expose_secret().trim().is_empty())
        .map(|w| w.organization_id.as_str())
        .collect();
    if unset.is_empty() && !config.linear.workspaces.is_empty() {
        pass("webhook", "every workspace has a webhook signing secret")
    } else {
        fail(
            "webhook",
            format!("no webhook signing secret for: {}", unset.join(", ")),
            "set `linear.webhookSecret` (or CYRUS_LINEAR_WEBHOOK_SECRET) to the secret Linear shows for the webhook",
        )
    }
}
