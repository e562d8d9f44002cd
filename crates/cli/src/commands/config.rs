//! `cyrus config check [--config PATH] [--json]`.
//!
//! Exit codes: 0 valid (warnings allowed), 2 missing, unreadable, malformed
//! or invalid configuration. The `--json` report is documented in
//! `docs/configuration.md`; its keys are always present and only ever added.

use crate::config_loader::{self, LoadError};
use clap::{Args, Subcommand};
use cyrus_core::config::{ConfigError, ConfigSummary, Problem, Warning};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for any configuration that cannot be used.
const EXIT_INVALID: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, then print a summary with secrets redacted.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then $XDG_CONFIG_HOME/cyrus/config.json, then ~/.cyrus/config.json).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print a machine-readable JSON report instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check(args) => check(args),
    }
}

/// The `--json` report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// `valid`, `invalid`, `malformed`, `not_found` or `unreadable`.
    status: &'static str,
    path: Option<PathBuf>,
    searched: Vec<PathBuf>,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
    /// Set for `malformed` (line, column, message) and `unreadable`.
    error: Option<ErrorDetail>,
    config: Option<ConfigSummary>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail {
    message: String,
    line: Option<usize>,
    column: Option<usize>,
}

fn check(args: CheckArgs) -> ExitCode {
    let env = config_loader::process_env();
    let report = match config_loader::load(args.config.as_deref(), &env) {
        Ok(found) => Report {
            status: "valid",
            warnings: {
                let mut w = found.loaded.warnings;
                w.extend(super::linear::personal_key_warnings(
                    &found.loaded.config,
                    &env,
                ));
                w
            },
            path: Some(found.path),
            searched: found.searched,
            problems: Vec::new(),
            error: None,
            config: Some(found.loaded.config.redacted_summary()),
        },
        Err(err) => failure_report(config_loader::candidates(args.config.as_deref(), &env), err),
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_text(&report);
    }
    if report.status == "valid" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

fn failure_report(searched: Vec<PathBuf>, err: LoadError) -> Report {
    let mut report = Report {
        status: "",
        path: None,
        searched,
        problems: Vec::new(),
        warnings: Vec::new(),
        error: None,
        config: None,
    };
    match err {
        LoadError::NotFound { .. } => report.status = "not_found",
        LoadError::Unreadable { path, source } => {
            report.status = "unreadable";
            report.path = Some(path);
            report.error = Some(ErrorDetail {
                message: source.to_string(),
                line: None,
                column: None,
            });
        }
        LoadError::Config { path, source } => {
            report.path = Some(path);
            match source {
                ConfigError::Malformed {
                    line,
                    column,
                    message,
                } => {
                    report.status = "malformed";
                    report.error = Some(ErrorDetail {
                        message,
                        line: Some(line),
                        column: Some(column),
                    });
                }
                ConfigError::Invalid { problems, warnings } => {
                    report.status = "invalid";
                    report.problems = problems;
                    report.warnings = warnings;
                }
            }
        }
    }
    report
}

fn print_text(report: &Report) {
    let path = report
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match report.status {
        "valid" => println!("Configuration OK: {path}"),
        "not_found" => {
            eprintln!("error: no configuration file found; looked in:");
            for p in &report.searched {
                eprintln!("  - {}", p.display());
            }
            if report.searched.is_empty() {
                eprintln!("  (nowhere: neither --config, CYRUS_CONFIG nor HOME is set)");
            }
            eprintln!(
                "Create one (see docs/configuration.md), pass --config PATH or set CYRUS_CONFIG."
            );
        }
        "unreadable" => {
            let msg = report
                .error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or_default();
            eprintln!("error: cannot read {path}: {msg}");
        }
        "malformed" => {
            if let Some(e) = &report.error {
                eprintln!(
                    "error: {path}:{}:{}: not valid JSON: {}",
                    e.line.unwrap_or(0),
                    e.column.unwrap_or(0),
                    e.message
                );
            }
        }
        _ => {
            eprintln!("error: {path} has {} problem(s):", report.problems.len());
            for p in &report.problems {
                eprintln!("  - {p}");
            }
        }
    }
    if !report.warnings.is_empty() {
        eprintln!("{} warning(s):", report.warnings.len());
        for w in &report.warnings {
            eprintln!("  - {w}");
        }
    }
    if let Some(summary) = &report.config {
        println!();
        println!("{summary}");
    }
}
