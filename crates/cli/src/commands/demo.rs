//! `cyrus demo`: the whole loop on one machine against the built-in
//! simulators, with a summary table; exit 0 only if every scenario ended as
//! it should.

use cyrus_stack::demo::{self, DemoOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Keep the store in this SQLite file (default: a temporary file).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Keep the worker and simulators running after the scenarios, until
    /// Ctrl-C (open the dashboard at the printed address).
    #[arg(long)]
    pub keep_running: bool,
    /// Simulated Codegen seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    pub time_scale: f64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DemoArgs) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        super::start::init_logging(super::start::LogFormat::Text);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let opts = DemoOptions {
            db_path: args.db.clone(),
            time_scale: args.time_scale,
            timeout: Duration::from_secs(120),
        };
        let json = args.json;
        let (results, stack) = match demo::run(opts, |line| {
            if !json {
                println!("{line}")
            }
        })
        .await
        {
            Ok(r) => r,
            Err(err) => {
                eprintln!("error: the demo could not start: {err:#}");
                return ExitCode::FAILURE;
            }
        };
        let all_ok = results.iter().all(|r| r.ok);
        if json {
            println!(
                "{}",
                serde_json::json!({"ok": all_ok, "scenarios": results})
            );
        } else {
            println!();
            print!("{}", demo::table(&results));
            println!(
                "\n{}",
                if all_ok {
                    "All scenarios ended as they should."
                } else {
                    "Some scenarios did not end as they should."
                }
            );
        }
        if args.keep_running {
            println!("Dashboard: {}/  (Ctrl-C to stop)", stack.worker_url());
            let _ = tokio::signal::ctrl_c().await;
        }
        stack.shutdown().await;
        if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
