//! `cyrus status [--config PATH] [--json]`: one screen about the running
//! system. Reads the store directly, so it works with no worker up.
//!
//! Exit codes: 0 the store could be read; 1 it could not; 2 configuration
//! error. An unreachable worker or Codegen is reported, not a failure:
//! `cyrus doctor` is the command that judges.

use crate::codegen_probe;
use crate::probes::{self, RateFigures, WorkerHealth};
use crate::ui::{self, EXIT_FAILURE, Style};
use clap::Args;
use cyrus_store::{InstallationInfo, Store, TaskFilter};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the stable JSON report (docs/cli.md) instead of text.
    #[arg(long)]
    json: bool,
}

/// The `--json` report; keys are only ever added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub config_path: PathBuf,
    pub worker: WorkerHealth,
    pub codegen: CodegenReach,
    pub rate_limit: RateFigures,
    pub store: StoreState,
    /// Tasks per state (terminal states included), by state name.
    pub queue: std::collections::BTreeMap<String, i64>,
    pub active_runs: Vec<ActiveRun>,
    pub spend_today: Option<SpendToday>,
    /// Connected Linear workspaces (never any token).
    pub installations: Vec<crate::commands::linear::InstallationReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodegenReach {
    pub base_url: String,
    pub org_id: i64,
    pub reachable: bool,
    pub authorized: bool,
    pub user: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreState {
    pub url: String,
    pub readable: bool,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveRun {
    pub task_id: String,
    pub issue: String,
    pub state: String,
    pub step: Option<String>,
    pub age_ms: i64,
    pub model: Option<String>,
    pub estimated_cost_micros: Option<i64>,
    pub codegen_run_id: Option<i64>,
    pub web_url: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendToday {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub spent_micros: i64,
    pub limit_micros: i64,
    /// Spent as a whole percent of the limit.
    pub percent: i64,
}

pub fn run(args: StatusArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let spinner = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        ui::spinner("Checking the worker, Codegen and the store…")
    };
    let (report, installations) = runtime.block_on(collect(found.path, &found.loaded.config));
    spinner.finish_and_clear();
    if args.json {
        if let Err(code) = ui::print_json(&report) {
            return code;
        }
    } else {
        print_text(&report, &installations, Style::detect());
    }
    if report.store.readable {
        ExitCode::SUCCESS
    } else {
        ui::exit(EXIT_FAILURE)
    }
}

async fn collect(
    config_path: PathBuf,
    config: &cyrus_core::config::Config,
) -> (StatusReport, Vec<InstallationInfo>) {
    let listen = config.server.listen;
    let (worker, codegen, store) = tokio::join!(
        probes::worker_health(listen),
        codegen_reach(config),
        probes::open_store(&config.store.url),
    );
    let metrics = if worker.running {
        probes::worker_metrics(listen).await
    } else {
        None
    };
    let mut installations = Vec::new();
    let mut report = StatusReport {
        config_path,
        worker,
        codegen,
        rate_limit: probes::rate_figures(metrics.as_deref()),
        store: StoreState {
            url: config.store.redacted_url(),
            readable: false,
            error: None,
        },
        queue: Default::default(),
        active_runs: Vec::new(),
        spend_today: None,
        installations: Vec::new(),
    };
    match store {
        Ok(store) => {
            match read_store(&store, config, &mut report, &mut installations).await {
                Ok(()) => report.store.readable = true,
                Err(e) => report.store.error = Some(e.to_string()),
            }
            store.close().await;
        }
        Err(e) => report.store.error = Some(e),
    }
    (report, installations)
}

async fn codegen_reach(config: &cyrus_core::config::Config) -> CodegenReach {
    let c = &config.codegen;
    let mut reach = CodegenReach {
        base_url: c.base_url.clone(),
        org_id: c.org_id,
        reachable: false,
        authorized: false,
        user: None,
        error: None,
    };
    let client = match codegen_probe::client(&c.base_url, c.org_id, c.api_token.clone()) {
        Ok(client) => client,
        Err(e) => {
            reach.error = Some(e);
            return reach;
        }
    };
    match client.me().await {
        Ok(user) => {
            reach.reachable = true;
            reach.authorized = true;
            reach.user = Some(user.github_username);
        }
        Err(e) => {
            reach.reachable = e.status().is_some();
            reach.error = Some(codegen_probe::explain(e));
        }
    }
    reach
}

async fn read_store(
    store: &Store,
    config: &cyrus_core::config::Config,
    report: &mut StatusReport,
    installations: &mut Vec<InstallationInfo>,
) -> cyrus_store::Result<()> {
    let now = chrono::Utc::now();
    let now_ms = cyrus_store::millis(now);
    report.queue = store.count_tasks_by_state().await?.into_iter().collect();
    installations.extend(store.list_installation_infos().await?);
    report.installations = installations.iter().map(Into::into).collect();
    let active = store
        .list_tasks(&TaskFilter {
            active_only: true,
            limit: Some(500),
            ..TaskFilter::default()
        })
        .await?;
    report.active_runs = active
        .into_iter()
        .map(|t| ActiveRun {
            age_ms: now_ms - t.created_at,
            web_url: t
                .data
                .get("web_url")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            task_id: t.id,
            issue: t.issue_identifier,
            state: t.state.to_string(),
            step: t.step.map(|s| s.to_string()),
            model: t.model,
            estimated_cost_micros: t.estimated_cost.map(|c| c.0),
            codegen_run_id: t.codegen_run_id,
        })
        .collect();
    let day = now.date_naive();
    let spent = store.spend_for_day(day).await?.0;
    let limit = config.codegen.max_cost_per_day.0;
    report.spend_today = Some(SpendToday {
        day: day.to_string(),
        spent_micros: spent,
        limit_micros: limit,
        percent: if limit > 0 { spent * 100 / limit } else { 0 },
    });
    Ok(())
}

fn print_text(r: &StatusReport, installations: &[InstallationInfo], s: Style) {
    let mark = |ok: bool| if ok { s.ok() } else { s.fail() };
    println!("{} {}", s.bold("Configuration:"), r.config_path.display());
    if r.worker.running {
        println!(
            "{} Worker running at {} (owner {}, version {})",
            s.ok(),
            r.worker.url,
            r.worker.owner.as_deref().unwrap_or("?"),
            r.worker.version.as_deref().unwrap_or("?")
        );
    } else {
        println!(
            "{} No worker at {}: {}",
            s.warn(),
            r.worker.url,
            r.worker.error.as_deref().unwrap_or("not running")
        );
    }
    match (&r.codegen.user, &r.codegen.error) {
        (Some(user), _) => println!(
            "{} Codegen reachable and authorised as {user} (org {})",
            s.ok(),
            r.codegen.org_id
        ),
        (None, e) => println!(
            "{} Codegen: {}",
            s.fail(),
            e.as_deref().unwrap_or("unknown error")
        ),
    }
    match r.rate_limit.source {
        "unknown" => println!("  Rate-limit headroom: unknown (no worker metrics)"),
        _ => {
            let headroom = if r.rate_limit.headroom.is_empty() {
                "not exported".to_owned()
            } else {
                r.rate_limit
                    .headroom
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  Rate-limit headroom: {headroom}; HTTP 429 so far: {}; limiter waits: {}",
                r.rate_limit.rate_limited_responses.unwrap_or(0.0),
                r.rate_limit.limiter_waits.unwrap_or(0.0)
            );
        }
    }
    println!(
        "{} Store {}{}",
        mark(r.store.readable),
        r.store.url,
        r.store
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    if !r.store.readable {
        return;
    }
    println!(
        "{} {}",
        s.bold("Linear workspaces:"),
        if installations.is_empty() {
            "none connected (`cyrus linear connect`)".to_owned()
        } else {
            installations.len().to_string()
        }
    );
    for i in installations {
        println!("  {}", crate::commands::linear::installation_line(i, s));
    }
    let queue = r
        .queue
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{} {}",
        s.bold("Tasks by state:"),
        if queue.is_empty() { "none" } else { &queue }
    );
    if let Some(sp) = &r.spend_today {
        println!(
            "{} {} of {} ({}%) on {} (UTC)",
            s.bold("Spend today:"),
            ui::dollars(sp.spent_micros),
            ui::dollars(sp.limit_micros),
            sp.percent,
            sp.day
        );
    }
    println!("{} {}", s.bold("Active tasks:"), r.active_runs.len());
    for run in &r.active_runs {
        println!(
            "  {:<10} {:<16} age {:<8} model {:<20} est. {:<8} {}",
            run.issue,
            run.state,
            ui::human_duration_ms(run.age_ms),
            run.model.as_deref().unwrap_or("-"),
            run.estimated_cost_micros
                .map(ui::dollars)
                .unwrap_or_else(|| "-".to_owned()),
            run.web_url.as_deref().map(|u| s.dim(u)).unwrap_or_default()
        );
    }
}
