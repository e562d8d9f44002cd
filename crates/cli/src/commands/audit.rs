//! `cyrus audit [--since 7d|DATE] [--issue ENG-12] [--kind KIND] [--json]`:
//! the decisions the worker made, with who and why — access allowed or
//! refused, triage starts, routing, budget holds, waits and refusals,
//! stops and by whom, workspace reconnects. Reads the store directly.

use crate::probes;
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use chrono::{DateTime, Utc};
use clap::Args;
use cyrus_store::{AuditEntry, AuditFilter, AuditKind};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// How far back: a duration (`24h`, `7d`) or a UTC date / RFC 3339 time.
    #[arg(long, default_value = "7d")]
    since: String,
    /// Only this issue (identifier such as ENG-12, or its id).
    #[arg(long, value_name = "ISSUE")]
    issue: Option<String>,
    /// Only this kind of decision (e.g. access_refused, routed, stopped).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<AuditKind>,
    /// Most rows shown (the newest).
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Print the stable JSON report (docs/cli.md) instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_kind(text: &str) -> Result<AuditKind, String> {
    AuditKind::parse(text).ok_or_else(|| {
        let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind; one of: {}", kinds.join(", "))
    })
}

/// The `--json` report; keys are only ever added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub since_ms: i64,
    pub entries: Vec<AuditRow>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub at_ms: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub kind: String,
    pub issue: Option<String>,
    pub organization_id: Option<String>,
    pub task_id: Option<String>,
    pub actor: Option<String>,
    pub reason: String,
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditRow {
    fn from(e: AuditEntry) -> AuditRow {
        AuditRow {
            at_ms: e.at,
            at: DateTime::<Utc>::from_timestamp_millis(e.at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            kind: e.kind.as_str().to_string(),
            issue: e.issue_identifier.or(e.issue_id),
            organization_id: e.organization_id,
            task_id: e.task_id,
            actor: e.actor,
            reason: e.reason,
            detail: e.detail,
        }
    }
}

pub fn run(args: AuditArgs) -> ExitCode {
    let now = Utc::now();
    let since = match crate::commands::stats::parse_since(&args.since, now) {
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
    let filter = AuditFilter {
        since: Some(cyrus_store::millis(since)),
        issue: args.issue.clone(),
        kind: args.kind,
        limit: Some(args.limit),
    };
    let result = runtime.block_on(async {
        let store = probes::open_store(&url).await?;
        let rows = store.list_audit(&filter).await.map_err(|e| e.to_string());
        store.close().await;
        rows
    });
    let entries = match result {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    let report = AuditReport {
        since_ms: cyrus_store::millis(since),
        entries: entries.into_iter().map(AuditRow::from).collect(),
    };
    if args.json {
        if let Err(code) = ui::print_json(&report) {
            return code;
        }
    } else {
        print_text(&report, Style::detect());
    }
    ExitCode::SUCCESS
}

fn print_text(report: &AuditReport, style: Style) {
    if report.entries.is_empty() {
        println!("No decisions recorded in this period.");
        return;
    }
    for row in &report.entries {
        let at = row.at.get(..19).unwrap_or(&row.at).replace('T', " ");
        println!(
            "{}  {:<15} {:<9} {:<24} {}",
            style.dim(&at),
            row.kind,
            row.issue.as_deref().unwrap_or("-"),
            row.actor.as_deref().unwrap_or("-"),
            row.reason
        );
    }
}
