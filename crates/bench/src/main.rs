//! `cyrus-bench`: runs the benchmark scenarios against the sandbox on
//! loopback and prints a table (or `--json`). See `BENCHMARKS.md`.

use clap::{Parser, ValueEnum};
use cyrus_bench::report::{Figure, Report, machine};
use cyrus_bench::scenarios::{
    ack, creation, faults, intake, linear_requests, load, memory, orchestration, prompt, runs,
};
use std::path::PathBuf;
use std::process::ExitCode;

// The in-process scenarios run the worker with the allocator `cyrus` ships.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Webhook → acknowledgement latency at a steady webhook rate.
    Ack,
    /// Durable webhook intake throughput (SQLite, and PostgreSQL if given).
    Intake,
    /// RSS of `cyrus start`, idle and with many active runs.
    Memory,
    /// Codegen reads and finished → answer latency at 10, 200, 1 000 runs.
    Runs,
    /// Linear requests per typical task.
    LinearRequests,
    /// Creation throughput with a backlog.
    Creation,
    /// Upstream faults: every task still ends correctly.
    Faults,
    /// Prompt tokens over the fixed issue corpus, Linear's context verbatim vs condensed.
    Prompt,
    /// An epic of 20 sub-issues, depth 4: makespan against its lower bound,
    /// Linear requests on the epic per sub-issue.
    Orchestration,
    /// Webhook intake across processes: `cyrus start` pinned to one core,
    /// `cyrus sandbox` and the load generator to the other (not in the
    /// default set: it needs taskset and two cores).
    Load,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LoadKind {
    /// Durable intake only (`Issue` updates of a priority, which change no
    /// task).
    Issue,
    /// `Issue` updates the processor acts on (title edits).
    IssueEdit,
    /// New agent sessions (intake, task, acknowledgement).
    Created,
    /// Webhook → acknowledgement at a steady rate (`--ack-rate`).
    Ack,
    /// The `Issue` loops against another server (`--load-peer-cmd`),
    /// pinned to the worker's core; list it beside `issue` (for example
    /// `peer,issue,peer,issue`) for ratios read in one run.
    Peer,
}

#[derive(Debug, Parser)]
#[command(
    name = "cyrus-bench",
    about = "Cyrus benchmarks against the local simulators"
)]
struct Args {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Smaller counts and shorter runs (a smoke run, not the figures).
    #[arg(long)]
    quick: bool,
    /// A dedicated PostgreSQL database for the intake scenario.
    #[arg(long, env = "CYRUS_TEST_POSTGRES_URL", value_name = "URL")]
    postgres: Option<String>,
    /// The `cyrus` binary for the memory scenario (default: next to this one).
    #[arg(long, value_name = "PATH")]
    cyrus_bin: Option<PathBuf>,
    /// Webhooks per second in the `ack` scenario.
    #[arg(long, default_value_t = 200)]
    ack_rate: u32,
    /// Webhooks sent in the `ack` scenario (default 1 000; 200 with --quick).
    #[arg(long)]
    ack_webhooks: Option<usize>,
    /// Backlog size and time scale of the `creation` scenario.
    #[arg(long, default_value_t = 50)]
    creation_backlog: usize,
    #[arg(long, default_value_t = 1)]
    creation_scale: u32,
    /// Active runs in the `memory` scenario (default 1 000; 100 with --quick).
    #[arg(long)]
    memory_runs: Option<usize>,
    /// Concurrent-run levels for the `runs` scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 200, 1000])]
    run_levels: Vec<usize>,
    /// `load`: which deliveries (both by default).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [LoadKind::Issue, LoadKind::Created, LoadKind::Ack])]
    load_kinds: Vec<LoadKind>,
    /// `load`: the SQLite `store.sqliteSynchronous` settings to measure.
    #[arg(long, value_delimiter = ',', default_values_t = ["full".to_string(), "normal".to_string()])]
    load_sync: Vec<String>,
    /// `load`: closed-loop concurrency.
    #[arg(long, default_value_t = 64)]
    load_concurrency: usize,
    /// `load`: closed-loop seconds (0: no closed loop, the paced loop alone
    /// on a fresh store).
    #[arg(long, default_value_t = 20)]
    load_closed_secs: u64,
    /// `load`: the open-loop rate (req/s) and seconds.
    #[arg(long, default_value_t = 500)]
    load_rate: u32,
    #[arg(long, default_value_t = 60)]
    load_paced_secs: u64,
    /// `load`: `created` sessions posted in the closed loop.
    #[arg(long, default_value_t = 10_000)]
    load_sessions: usize,
    /// `load`: seconds of delegations at --ack-rate in the acknowledgement phase.
    #[arg(long, default_value_t = 10)]
    load_ack_secs: u64,
    /// `load`: what drives the closed loop of `Issue` updates: `wrk` (the
    /// distribution's package; `auto` uses it when it is installed) or the
    /// in-process `reqwest` generator, which saturates its core first.
    #[arg(long, value_enum, default_value_t = LoadGenerator::Auto)]
    load_generator: LoadGenerator,
    /// `load` kind `peer`: a shell command starting the server to compare
    /// with, fresh for each round; it gets `PORT` and `SECRET` (the
    /// webhook signing secret) in its environment and must listen on
    /// 127.0.0.1:$PORT.
    #[arg(long, value_name = "COMMAND")]
    load_peer_cmd: Option<String>,
    /// `load` kind `peer`: the webhook path the peer serves.
    #[arg(long, default_value = "/linear-webhook")]
    load_peer_path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LoadGenerator {
    Auto,
    Wrk,
    Reqwest,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(run(&args));
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    if report.figures.iter().any(|f| f.met == Some(false)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(args: &Args) -> Report {
    let all: Vec<Scenario> = Scenario::value_variants()
        .iter()
        .copied()
        .filter(|s| *s != Scenario::Load)
        .collect();
    let chosen = if args.scenarios.is_empty() {
        &all
    } else {
        &args.scenarios
    };
    let q = args.quick;
    // Before any scenario pins this process to one core.
    let machine = machine();
    let mut figures = Vec::new();
    for scenario in chosen {
        eprintln!("running {scenario:?}…");
        let result = match scenario {
            Scenario::Ack => {
                ack::run(ack::AckOptions {
                    webhooks: args.ack_webhooks.unwrap_or(if q { 200 } else { 1_000 }),
                    per_second: args.ack_rate,
                })
                .await
            }
            Scenario::Intake => {
                let mut out = Vec::new();
                let mut urls = vec![None];
                urls.extend(args.postgres.clone().map(Some));
                for store_url in urls {
                    match intake::run(intake::IntakeOptions {
                        deliveries: if q { 500 } else { 5_000 },
                        concurrency: 32,
                        store_url,
                    })
                    .await
                    {
                        Ok(f) => out.extend(f),
                        Err(e) => out.push(failed("intake", &e)),
                    }
                }
                if args.postgres.is_none() {
                    out.push(
                        Figure::new("intake PostgreSQL", "committed", None, "deliveries/s")
                            .note("not run: pass --postgres URL or set CYRUS_TEST_POSTGRES_URL"),
                    );
                }
                Ok(out)
            }
            Scenario::Memory => match cyrus_bin(args) {
                Ok(bin) => {
                    let n = args.memory_runs.unwrap_or(if q { 100 } else { 1_000 });
                    memory::run(&bin, n).await
                }
                Err(e) => Err(e),
            },
            Scenario::Runs => {
                let mut out = Vec::new();
                for &n in &args.run_levels {
                    let opts = runs::RunsOptions {
                        runs: n,
                        min_secs: if q { 20 } else { 60 },
                        max_secs: if q { 40 } else { 180 },
                    };
                    match runs::run(opts).await {
                        Ok(f) => out.extend(f),
                        Err(e) => out.push(failed(&format!("runs ×{n}"), &e)),
                    }
                }
                Ok(out)
            }
            Scenario::LinearRequests => linear_requests::run(if q { 2 } else { 5 }).await,
            Scenario::Creation => {
                let backlog = if q { 20 } else { args.creation_backlog };
                creation::run(backlog, args.creation_scale.max(1)).await
            }
            Scenario::Faults => faults::run(if q { 10 } else { 20 }).await,
            Scenario::Load => run_load(args).await,
            Scenario::Prompt => Ok(prompt::run()),
            Scenario::Orchestration => {
                if q {
                    orchestration::run(60.0, 5).await
                } else {
                    orchestration::run(30.0, 10).await
                }
            }
        };
        match result {
            Ok(f) => figures.extend(f),
            Err(e) => figures.push(failed(&format!("{scenario:?}"), &e)),
        }
    }
    Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        figures,
    }
}

async fn run_load(args: &Args) -> anyhow::Result<Vec<Figure>> {
    let bin = cyrus_bin(args)?;
    let q = args.quick;
    let sync_of = |s: &str| -> anyhow::Result<&'static str> {
        match s {
            "full" => Ok("full"),
            "normal" => Ok("normal"),
            other => anyhow::bail!("--load-sync takes full or normal (got {other:?})"),
        }
    };
    // SQLite under each setting, then PostgreSQL if given.
    let mut stores: Vec<(Option<String>, &'static str)> = Vec::new();
    for s in &args.load_sync {
        stores.push((None, sync_of(s)?));
    }
    if let Some(url) = &args.postgres {
        stores.push((Some(url.clone()), "full"));
    }
    let peer = args.load_peer_cmd.clone().map(|command| load::PeerCommand {
        command,
        path: args.load_peer_path.clone(),
    });
    let mut out = Vec::new();
    for kind in &args.load_kinds {
        // The peer has no store: one round wherever it is listed.
        let stores = if *kind == LoadKind::Peer {
            &stores[..1.min(stores.len())]
        } else {
            &stores[..]
        };
        for (postgres, sync) in stores {
            let opts = load::LoadOptions {
                cyrus_bin: bin.clone(),
                kind: match kind {
                    LoadKind::Issue => load::Kind::Issue,
                    LoadKind::IssueEdit => load::Kind::IssueEdit,
                    LoadKind::Created => load::Kind::Created,
                    LoadKind::Ack => load::Kind::Ack,
                    LoadKind::Peer => load::Kind::Peer,
                },
                postgres: postgres.clone(),
                sync,
                concurrency: args.load_concurrency,
                closed_secs: if q { 3 } else { args.load_closed_secs },
                paced_rate: args.load_rate,
                paced_secs: if q { 5 } else { args.load_paced_secs },
                sessions: if q { 500 } else { args.load_sessions },
                ack_rate: args.ack_rate,
                ack_secs: if q { 3 } else { args.load_ack_secs },
                wrk: match args.load_generator {
                    LoadGenerator::Wrk => true,
                    LoadGenerator::Reqwest => false,
                    LoadGenerator::Auto => load::wrk_available(),
                },
                worker_cpu: 0,
                other_cpu: 1,
                peer: peer.clone(),
            };
            eprintln!(
                "  load {kind:?}, {}",
                match (kind, postgres) {
                    (LoadKind::Peer, _) => "peer".to_string(),
                    (_, Some(_)) => "PostgreSQL".to_string(),
                    (_, None) => format!("SQLite sync={sync}"),
                }
            );
            match load::run(opts).await {
                Ok(f) => out.extend(f),
                Err(e) => out.push(failed(&format!("load {kind:?}"), &e)),
            }
        }
    }
    Ok(out)
}

/// A scenario that could not run is reported, not hidden.
fn failed(scenario: &str, err: &anyhow::Error) -> Figure {
    Figure::new(scenario, "scenario failed", None, "").note(format!("{err:#}"))
}

fn cyrus_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &args.cyrus_bin {
        return Ok(bin.clone());
    }
    let sibling = std::env::current_exe()?.with_file_name("cyrus");
    anyhow::ensure!(
        sibling.exists(),
        "no `cyrus` binary at {} — build it (cargo build --release -p cyrus-cli) or pass --cyrus-bin",
        sibling.display()
    );
    Ok(sibling)
}
