//! `cyrus`: the command-line entry point. Thin by design: each subcommand
//! lives in its own module under `commands/` and the logic lives in the
//! library crates. To add a command, add a variant to [`Command`] and one arm
//! to `main`.

mod codegen_probe;
mod commands;
mod config_file;
mod config_loader;
mod mcp_servers;
mod probes;
mod stats_eval;
mod ui;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// jemalloc returns freed memory to the system on its own (dirty pages decay
// within seconds); with glibc's allocator the worker's RSS stayed near its
// peak after a burst (BENCHMARKS.md, resident memory).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Cyrus turns Linear issues delegated to the Cyrus agent into Codegen runs
/// and reports back into Linear.
#[derive(Debug, Parser)]
#[command(name = "cyrus", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker: webhook endpoint, scheduler, run poller, outbox.
    Start(commands::start::StartArgs),
    /// Run the whole loop on this machine against built-in simulators of
    /// Linear and Codegen, and check every scenario ends as it should.
    Demo(commands::demo::DemoArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionsArgs),
    /// Run the Codegen and Linear simulators standalone until SIGINT/SIGTERM;
    /// the first stdout line is JSON with their URLs and credentials.
    Sandbox(commands::sandbox::SandboxArgs),
    /// Codegen account commands.
    #[command(subcommand)]
    Codegen(Box<commands::setup::CodegenCommand>),
    /// Connect Linear workspaces (OAuth app install) and list them.
    #[command(subcommand)]
    Linear(commands::linear::LinearCommand),
    /// Show whether a worker runs, Codegen's reachability, the queue, active runs and today's spend.
    Status(commands::status::StatusArgs),
    /// Task outcomes, latency, cost and the architecture's success metrics over a period.
    Stats(commands::stats::StatsArgs),
    /// Model experiments: list them, or report an experiment's arms with a verdict.
    #[command(subcommand)]
    Experiments(commands::experiments::ExperimentsCommand),
    /// The worker's decisions with who and why: access, triage, routing, budget, stops, reconnects.
    Audit(commands::audit::AuditArgs),
    /// Check everything Cyrus needs and say how to fix what is wrong.
    Doctor(commands::doctor::DoctorArgs),
    /// What Codegen offers as MCP servers and which repositories use each.
    #[command(subcommand)]
    Mcp(commands::mcp::McpCommand),
    /// Convert a TypeScript Cyrus configuration into this Cyrus's format.
    Migrate(commands::migrate::MigrateArgs),
    /// Print the man page (roff) on stdout.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => commands::start::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Config(cmd) => commands::config::run(cmd),
        Command::Completions(args) => commands::completions::run(args),
        Command::Sandbox(args) => commands::sandbox::run(args),
        Command::Codegen(cmd) => commands::setup::run(*cmd),
        Command::Linear(cmd) => commands::linear::run(cmd),
        Command::Status(args) => commands::status::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Experiments(cmd) => commands::experiments::run(cmd),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Mcp(cmd) => commands::mcp::run(cmd),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Man => commands::man::run::<Cli>(),
    }
}
