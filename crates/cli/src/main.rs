//! `cyrus`: the command-line entry point. Thin by design: each subcommand
//! lives in its own module under `commands/` and the logic lives in the
//! library crates. To add a command, add a variant to [`Command`] and one arm
//! to `main`.

mod commands;
mod config_loader;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionsArgs),
    /// Run the Codegen and Linear simulators standalone until SIGINT/SIGTERM;
    /// the first stdout line is JSON with their URLs and credentials.
    Sandbox(commands::sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(cmd) => commands::config::run(cmd),
        Command::Completions(args) => commands::completions::run(args),
        Command::Sandbox(args) => commands::sandbox::run(args),
    }
}
