//! `cyrus experiments list` and `cyrus experiments report NAME
//! [--json|--csv]`: model experiments, and per arm the outcomes Cyrus saw —
//! with intervals and a verdict (`cyrus_core::experiments::stats`).

use crate::probes;
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use clap::{Args, Subcommand};
use cyrus_core::experiments::stats::{self, ExperimentReport};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// The configured experiments, whether they run now, and their task counts.
    List(ListArgs),
    /// Per arm: tasks, success, PR and completion rates with 95 % intervals, follow-ups, cost, duration, and a verdict.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The experiment's name.
    name: String,
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The stable JSON report (docs/cli.md).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One line per arm.
    #[arg(long)]
    csv: bool,
}

pub fn run(cmd: ExperimentsCommand) -> ExitCode {
    match cmd {
        ExperimentsCommand::List(args) => list(args),
        ExperimentsCommand::Report(args) => report(args),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedExperiment {
    name: String,
    enabled: bool,
    running: bool,
    arms: Vec<cyrus_core::config::Arm>,
    tasks: i64,
}

fn list(args: ListArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = &found.loaded.config;
    let counts = runtime.block_on(async {
        let store = probes::open_store(&config.store.url).await?;
        let counts = store
            .experiment_task_counts()
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        counts
    });
    let counts = match counts {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    let now = chrono::Utc::now();
    let listed: Vec<ListedExperiment> = config
        .experiments
        .iter()
        .map(|e| ListedExperiment {
            name: e.name.clone(),
            enabled: e.enabled,
            running: e.is_running(now),
            arms: e.arms.clone(),
            tasks: counts
                .iter()
                .find(|(n, _)| n == &e.name)
                .map(|(_, c)| *c)
                .unwrap_or(0),
        })
        .collect();
    if args.json {
        return match ui::print_json(&listed) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        };
    }
    if listed.is_empty() {
        println!("No experiments configured (see `experiments` in docs/configuration.md).");
    }
    let style = Style::detect();
    for e in &listed {
        let state = if e.running {
            "running"
        } else if e.enabled {
            "outside its window"
        } else {
            "disabled"
        };
        println!("{}  {state}, {} task(s)", style.bold(&e.name), e.tasks);
        for a in &e.arms {
            println!("  arm {}: {} (weight {})", a.name, a.model, a.weight);
        }
    }
    ExitCode::SUCCESS
}

/// The `--json` report; keys are only ever added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    experiment: String,
    outcome_days: u32,
    #[serde(flatten)]
    report: ExperimentReport,
}

fn report(args: ReportArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = &found.loaded.config;
    let Some(experiment) = config.experiments.iter().find(|e| e.name == args.name) else {
        let names: Vec<&str> = config.experiments.iter().map(|e| e.name.as_str()).collect();
        eprintln!(
            "error: no experiment named {:?} in the configuration (configured: {})",
            args.name,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ui::exit(EXIT_USAGE);
    };
    let now = cyrus_store::millis(chrono::Utc::now());
    let computed = runtime.block_on(async {
        let store = probes::open_store(&config.store.url).await?;
        let report = cyrus_edge_worker::experiment_report::report(config, &store, experiment, now)
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        report
    });
    let report = match computed {
        Ok(r) => Report {
            experiment: experiment.name.clone(),
            outcome_days: config.experiment_outcome_days,
            report: r,
        },
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    if args.json {
        if let Err(code) = ui::print_json(&report) {
            return code;
        }
    } else if args.csv {
        print_csv(&report);
    } else {
        print_text(&report, Style::detect());
    }
    ExitCode::SUCCESS
}

fn pct(rate: &stats::Rate) -> String {
    match (rate.value, rate.low, rate.high) {
        (Some(v), Some(l), Some(h)) => format!(
            "{:.0} % [{:.0}–{:.0}] ({}/{})",
            v * 100.0,
            l * 100.0,
            h * 100.0,
            rate.successes,
            rate.trials
        ),
        _ => "—".to_string(),
    }
}

fn money(m: Option<i64>) -> String {
    m.map(ui::dollars).unwrap_or_else(|| "—".into())
}

fn print_text(r: &Report, style: Style) {
    println!(
        "{} (completion = issue completed within {} days; all costs are estimates)",
        style.bold(&r.experiment),
        r.outcome_days
    );
    for a in &r.report.arms {
        println!(
            "\narm {} — {}: {} task(s), {} finished",
            style.bold(&a.arm),
            a.model,
            a.tasks,
            a.finished
        );
        println!("  success      {}", pct(&a.success));
        println!("  pull request {}", pct(&a.pull_request));
        println!("  completion   {}", pct(&a.completion));
        println!(
            "  follow-ups per task {}, reopened {}, stopped {}",
            a.follow_ups_per_task
                .map(|f| format!("{f:.2}"))
                .unwrap_or_else(|| "—".into()),
            a.reopened,
            a.stopped_by_person
        );
        println!(
            "  cost mean {} · median {} · per completed issue {}",
            money(a.mean_cost_micros),
            money(a.median_cost_micros),
            money(a.cost_per_completed_micros)
        );
        println!(
            "  median duration {}",
            a.median_duration_ms
                .map(ui::human_duration_ms)
                .unwrap_or_else(|| "—".into())
        );
    }
    println!();
    for c in &r.report.comparisons {
        println!("{} vs {}: {}", c.arm, c.against, c.verdict);
    }
}

fn print_csv(r: &Report) {
    println!(
        "arm,model,tasks,finished,success_rate,pr_rate,completion_rate,completion_low,completion_high,follow_ups_per_task,mean_cost_micros,median_cost_micros,cost_per_completed_micros,median_duration_ms"
    );
    let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
    let i = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    for a in &r.report.arms {
        println!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            a.arm,
            a.model,
            a.tasks,
            a.finished,
            f(a.success.value),
            f(a.pull_request.value),
            f(a.completion.value),
            f(a.completion.low),
            f(a.completion.high),
            f(a.follow_ups_per_task),
            i(a.mean_cost_micros),
            i(a.median_cost_micros),
            i(a.cost_per_completed_micros),
            i(a.median_duration_ms)
        );
    }
}
