//! `cyrus stats [--since 7d|DATE] [--by repo|issue|model|task-type|day]
//! [--json|--csv]`: what the tasks of a period cost and how they went, and
//! the verdict on the architecture's success metrics and hybrid triggers.
//!
//! Tasks are those *created* in the period; spend comes from the cost
//! ledger for the period's UTC days. Exit codes: 0 ok, 1 store unreadable,
//! 2 usage or configuration error.

use crate::probes;
use crate::stats_eval::{self, Check, Observations, Spread};
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, ValueEnum};
use cyrus_store::{CostDimension, Store, Task, TaskFilter};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// More tasks than any realistic period holds; the store's default is 1000.
const TASK_LIMIT: i64 = 1_000_000;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Start of the period: a duration back from now (`24h`, `7d`, `4w`) or a UTC date (`2026-11-01`).
    #[arg(long, default_value = "7d", value_name = "7d|DATE")]
    since: String,
    /// Group the breakdown by this.
    #[arg(long, value_enum, default_value_t = By::Repo)]
    by: By,
    /// Print the stable JSON report (docs/cli.md).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the breakdown as CSV.
    #[arg(long)]
    csv: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum By {
    Repo,
    Issue,
    Model,
    TaskType,
    Day,
    /// `experiment/arm` (`none` outside experiments); costs are the tasks'
    /// ledger entries.
    Experiment,
}

/// The `--json` report; keys are only ever added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub since_ms: i64,
    pub until_ms: i64,
    pub window_days: f64,
    pub tasks: usize,
    /// Tasks per outcome; `active` for tasks not finished yet.
    pub outcomes: BTreeMap<String, usize>,
    pub finished: usize,
    pub failed: usize,
    pub failure_rate_percent: Option<f64>,
    pub time_to_start: Spread,
    pub duration: Spread,
    pub api_calls: ApiCalls,
    /// `null`: the worker does not record retries per task.
    pub retries: Option<i64>,
    /// `null`: the worker does not record rate-limit waits per task.
    pub rate_limit_waits: Option<i64>,
    pub rate_limit_failures: usize,
    pub cost: Cost,
    pub by: By,
    pub breakdown: Vec<Bucket>,
    /// Prompt size per task type (tasks whose prompt size is recorded).
    pub prompt: Vec<PromptSize>,
    pub success_metrics: Vec<Check>,
    pub hybrid_triggers: Vec<Check>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCalls {
    pub total: i64,
    pub per_task_mean: Option<f64>,
    pub per_task_max: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub total_micros: i64,
    pub per_task_mean_micros: Option<i64>,
    pub projected_monthly_micros: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromptSize {
    pub task_type: String,
    pub tasks: usize,
    pub p50_tokens: Option<i64>,
    pub p95_tokens: Option<i64>,
    /// Share of the prompt's text the token budget cut, over these tasks.
    pub cut_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub key: String,
    pub tasks: usize,
    pub failed: usize,
    pub cost_micros: i64,
}

pub fn run(args: StatsArgs) -> ExitCode {
    let now = Utc::now();
    let since = match parse_since(&args.since, now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --since {}: {e}", args.since);
            return ui::exit(EXIT_USAGE);
        }
    };
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let url = found.loaded.config.store.url.clone();
    let result = runtime.block_on(async {
        let store = probes::open_store(&url).await?;
        let report = collect(&store, since, now, args.by)
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        report
    });
    let report = match result {
        Ok(r) => r,
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

/// `7d`, `24h`, `2w` back from `now`, or a UTC date / RFC 3339 time.
pub(crate) fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        return check_past(start, now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return check_past(t.with_timezone(&Utc), now);
    }
    let back = humantime::parse_duration(text)
        .map_err(|e| format!("not a duration like 7d or a date like 2026-11-01 ({e})"))?;
    let back = chrono::Duration::from_std(back).map_err(|e| e.to_string())?;
    now.checked_sub_signed(back)
        .ok_or_else(|| "too far back".to_owned())
}

fn check_past(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if t >= now {
        Err("must be in the past".to_owned())
    } else {
        Ok(t)
    }
}

async fn collect(
    store: &Store,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    by: By,
) -> cyrus_store::Result<StatsReport> {
    let (from, to) = (cyrus_store::millis(since), cyrus_store::millis(now));
    let tasks = store
        .list_tasks(&TaskFilter {
            created_from: Some(from),
            created_to: Some(to),
            limit: Some(TASK_LIMIT),
            ..TaskFilter::default()
        })
        .await?;
    let (first_day, last_day) = (since.date_naive(), now.date_naive());
    let mut per_task_cost = BTreeMap::new();
    if by == By::Issue || by == By::Experiment {
        for t in &tasks {
            per_task_cost.insert(t.id.clone(), store.spend_for_task(&t.id).await?.0);
        }
    }
    let ledger_dimension = match by {
        By::Repo => CostDimension::Repository,
        By::Model => CostDimension::Model,
        By::TaskType => CostDimension::TaskType,
        By::Day | By::Issue | By::Experiment => CostDimension::Day,
    };
    let ledger = store
        .cost_breakdown(first_day, last_day, ledger_dimension)
        .await?;
    let total_cost = if ledger_dimension == CostDimension::Day {
        ledger.iter().map(|b| b.total.0).sum()
    } else {
        store
            .cost_breakdown(first_day, last_day, CostDimension::Day)
            .await?
            .iter()
            .map(|b| b.total.0)
            .sum()
    };
    let ledger_costs: BTreeMap<String, i64> = if by == By::Issue || by == By::Experiment {
        BTreeMap::new()
    } else {
        ledger.into_iter().map(|b| (b.key, b.total.0)).collect()
    };
    let window_days = (to - from) as f64 / 86_400_000.0;
    Ok(summarise(
        &tasks,
        by,
        &ledger_costs,
        &per_task_cost,
        total_cost,
        window_days,
        (from, to),
    ))
}

fn is_failed(t: &Task) -> bool {
    t.outcome
        .as_deref()
        .is_some_and(|o| stats_eval::FAILED_OUTCOMES.contains(&o))
}

/// The breakdown key of a task; matches the keys the worker writes to the
/// cost ledger (repository name, model or `default`, task type or `none`).
fn key_of(t: &Task, by: By) -> String {
    let text = |k: &str| t.data.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match by {
        By::Repo => text("repository_name").unwrap_or_else(|| "unknown".to_owned()),
        By::Issue => t.issue_identifier.clone(),
        By::Model => t.model.clone().unwrap_or_else(|| "default".to_owned()),
        By::TaskType => t
            .task_type
            .map(|tt| tt.as_str().to_owned())
            .unwrap_or_else(|| "none".to_owned()),
        By::Day => DateTime::from_timestamp_millis(t.created_at)
            .map(|d| d.date_naive().to_string())
            .unwrap_or_default(),
        By::Experiment => match (text("experiment"), text("experiment_arm")) {
            (Some(e), Some(arm)) => format!("{e}/{arm}"),
            (Some(e), None) => format!("{e}/outside"),
            _ => "none".to_owned(),
        },
    }
}

/// p50 / p95 of the prompt tokens per task type, and the share cut.
fn prompt_sizes(tasks: &[Task]) -> Vec<PromptSize> {
    let mut by_type: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for t in tasks {
        let Some(tokens) = t.data.get("prompt_tokens").and_then(|v| v.as_i64()) else {
            continue;
        };
        let cut = t
            .data
            .get("prompt_cut_chars")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let key = t
            .task_type
            .map(|tt| tt.as_str().to_owned())
            .unwrap_or_else(|| "none".into());
        by_type.entry(key).or_default().push((tokens, cut));
    }
    by_type
        .into_iter()
        .map(|(task_type, mut v)| {
            v.sort_unstable();
            let at = |q: f64| {
                v.get(((v.len() - 1) as f64 * q).round() as usize)
                    .map(|x| x.0)
            };
            let sent: i64 = v.iter().map(|x| x.0 * 4).sum();
            let cut: i64 = v.iter().map(|x| x.1).sum();
            PromptSize {
                task_type,
                tasks: v.len(),
                p50_tokens: at(0.5),
                p95_tokens: at(0.95),
                cut_percent: (sent + cut > 0)
                    .then(|| (cut as f64 * 1000.0 / (sent + cut) as f64).round() / 10.0),
            }
        })
        .collect()
}

/// A per-task counter the worker may keep in task data; `None` when no task
/// has it (then the report says "not recorded").
fn data_counter(tasks: &[Task], key: &str) -> Option<i64> {
    let values: Vec<i64> = tasks
        .iter()
        .filter_map(|t| t.data.get(key).and_then(|v| v.as_i64()))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn summarise(
    tasks: &[Task],
    by: By,
    ledger_costs: &BTreeMap<String, i64>,
    per_task_cost: &BTreeMap<String, i64>,
    total_cost: i64,
    window_days: f64,
    (from, to): (i64, i64),
) -> StatsReport {
    let mut outcomes = BTreeMap::new();
    for t in tasks {
        *outcomes
            .entry(t.outcome.clone().unwrap_or_else(|| "active".to_owned()))
            .or_insert(0) += 1;
    }
    let finished = tasks.iter().filter(|t| t.outcome.is_some()).count();
    let failed = tasks.iter().filter(|t| is_failed(t)).count();
    let rate_limit_failures = tasks
        .iter()
        .filter(|t| is_failed(t))
        .filter(|t| {
            t.last_error
                .as_deref()
                .is_some_and(stats_eval::is_rate_limit_error)
        })
        .count();
    let time_to_start = Spread::of(
        tasks
            .iter()
            .filter_map(|t| Some(t.started_at? - t.created_at))
            .collect(),
    );
    let duration = Spread::of(
        tasks
            .iter()
            .filter_map(|t| Some(t.finished_at? - t.started_at?))
            .collect(),
    );
    let api_total: i64 = tasks.iter().map(|t| t.api_calls).sum();
    let api_calls = ApiCalls {
        total: api_total,
        per_task_mean: (!tasks.is_empty()).then(|| api_total as f64 / tasks.len() as f64),
        per_task_max: tasks.iter().map(|t| t.api_calls).max(),
    };

    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    for t in tasks {
        let key = key_of(t, by);
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            key,
            tasks: 0,
            failed: 0,
            cost_micros: 0,
        });
        b.tasks += 1;
        b.failed += usize::from(is_failed(t));
        if by == By::Issue || by == By::Experiment {
            b.cost_micros += per_task_cost.get(&t.id).copied().unwrap_or(0);
        }
    }
    for (key, cost) in ledger_costs {
        buckets
            .entry(key.clone())
            .or_insert(Bucket {
                key: key.clone(),
                tasks: 0,
                failed: 0,
                cost_micros: 0,
            })
            .cost_micros = *cost;
    }
    let mut breakdown: Vec<Bucket> = buckets.into_values().collect();
    breakdown.sort_by(|a, b| {
        b.cost_micros
            .cmp(&a.cost_micros)
            .then(b.tasks.cmp(&a.tasks))
            .then_with(|| a.key.cmp(&b.key))
    });

    let projected = stats_eval::monthly_projection(total_cost, window_days);
    let observations = Observations {
        time_to_start,
        finished,
        failed,
        rate_limit_failures,
        projected_monthly_micros: projected,
        tasks: tasks.len(),
    };
    StatsReport {
        since_ms: from,
        until_ms: to,
        window_days,
        tasks: tasks.len(),
        outcomes,
        finished,
        failed,
        failure_rate_percent: stats_eval::percent(failed, finished),
        time_to_start,
        duration,
        api_calls,
        retries: data_counter(tasks, "retries"),
        rate_limit_waits: data_counter(tasks, "rate_limit_waits"),
        rate_limit_failures,
        cost: Cost {
            total_micros: total_cost,
            per_task_mean_micros: (!tasks.is_empty()).then(|| total_cost / tasks.len() as i64),
            projected_monthly_micros: projected.map(|p| p.round() as i64),
        },
        by,
        breakdown,
        prompt: prompt_sizes(tasks),
        success_metrics: stats_eval::success_metrics(&observations),
        hybrid_triggers: stats_eval::hybrid_triggers(&observations),
    }
}

fn print_csv(r: &StatsReport) {
    println!("key,tasks,failed,cost_micros,cost_usd");
    for b in &r.breakdown {
        println!(
            "{},{},{},{},{:.2}",
            csv_field(&b.key),
            b.tasks,
            b.failed,
            b.cost_micros,
            b.cost_micros as f64 / 1e6
        );
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn spread_text(s: &Spread) -> String {
    match (s.median_ms, s.p95_ms) {
        (Some(m), Some(p)) => format!(
            "median {}, p95 {} ({} tasks)",
            ui::human_duration_ms(m),
            ui::human_duration_ms(p),
            s.count
        ),
        _ => "no data".to_owned(),
    }
}

fn observed_text(c: &Check) -> String {
    match (c.observed, c.unit) {
        (None, _) => "-".to_owned(),
        (Some(v), "ms") => ui::human_duration_ms(v.round() as i64),
        (Some(v), "micros") => format!("{}/month", ui::dollars(v.round() as i64)),
        (Some(v), _) => format!("{v:.1}%"),
    }
}

fn print_text(r: &StatsReport, s: Style) {
    let since = DateTime::from_timestamp_millis(r.since_ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    println!(
        "{} since {since} ({:.1} days)",
        s.bold("Tasks"),
        r.window_days
    );
    let outcomes = r
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "  {} tasks: {}",
        r.tasks,
        if outcomes.is_empty() {
            "none"
        } else {
            &outcomes
        }
    );
    println!(
        "  failure rate: {}",
        r.failure_rate_percent
            .map(|p| format!("{p:.1}% ({} of {} finished)", r.failed, r.finished))
            .unwrap_or_else(|| "no finished tasks".to_owned())
    );
    println!("  time to start: {}", spread_text(&r.time_to_start));
    println!("  run duration: {}", spread_text(&r.duration));
    println!(
        "  API calls: {} total, {} per task on average",
        r.api_calls.total,
        r.api_calls
            .per_task_mean
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "-".to_owned())
    );
    let recorded = |v: Option<i64>| v.map_or("not recorded".to_owned(), |n| n.to_string());
    println!(
        "  retries: {}; rate-limit waits: {}; rate-limit failures: {}",
        recorded(r.retries),
        recorded(r.rate_limit_waits),
        r.rate_limit_failures
    );
    println!(
        "{} {} estimated, {} per task, {} per month at this rate",
        s.bold("Cost"),
        ui::dollars(r.cost.total_micros),
        r.cost
            .per_task_mean_micros
            .map(ui::dollars)
            .unwrap_or_else(|| "-".to_owned()),
        r.cost
            .projected_monthly_micros
            .map(ui::dollars)
            .unwrap_or_else(|| "-".to_owned())
    );
    println!("  by {:?}:", r.by);
    for b in &r.breakdown {
        println!(
            "    {:<30} {:>5} tasks {:>4} failed {:>10}",
            b.key,
            b.tasks,
            b.failed,
            ui::dollars(b.cost_micros)
        );
    }
    if !r.prompt.is_empty() {
        println!("  prompt size (approximate tokens):");
        for p in &r.prompt {
            let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "    {:<14} {:>5} tasks  p50 {:>6}  p95 {:>6}  cut by the budget {}",
                p.task_type,
                p.tasks,
                n(p.p50_tokens),
                n(p.p95_tokens),
                p.cut_percent
                    .map(|c| format!("{c:.1}%"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    for (title, checks) in [
        ("Success metrics", &r.success_metrics),
        ("Hybrid-executor triggers", &r.hybrid_triggers),
    ] {
        println!("{}", s.bold(title));
        for c in checks.iter() {
            let verdict = match c.verdict {
                stats_eval::Verdict::Ok => s.ok(),
                stats_eval::Verdict::Breached => s.fail(),
                stats_eval::Verdict::InsufficientData => s.warn(),
            };
            println!(
                "  {verdict} {:<18} {:<18} {} — {}",
                c.verdict.as_str(),
                c.key,
                observed_text(c),
                c.description
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("7d", now).unwrap().to_rfc3339(),
            "2026-11-18T12:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-01", now).unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_since("2027-01-01", now).is_err());
        assert!(parse_since("soon", now).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("acme/web"), "acme/web");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
