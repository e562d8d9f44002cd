//! `cyrus mcp list [--config PATH] [--json]`: what Codegen offers as MCP
//! servers (its MCP providers and the organization's integrations), where
//! each stands, and which repositories name it in `mcpServers`. Exit 1 when
//! Codegen cannot be read; unusable servers are reported, not failed.

use crate::ui::{self, EXIT_FAILURE, Style};
use crate::{codegen_probe, mcp_servers, probes};
use clap::{Args, Subcommand};
use cyrus_codegen_executor::mcp::same_name;
use cyrus_codegen_executor::{McpAvailability, McpCatalog};
use cyrus_core::config::RepositoryConfig;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// List Codegen's MCP servers and integrations and the repositories using each.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the stable JSON report (docs/cli.md).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: McpCommand) -> ExitCode {
    match cmd {
        McpCommand::List(args) => list(args),
    }
}

#[derive(Debug, Serialize)]
struct Report {
    organization: Organization,
    servers: Vec<Server>,
}

#[derive(Debug, Serialize)]
struct Organization {
    id: i64,
    name: String,
}

#[derive(Debug, Serialize)]
struct Server {
    name: String,
    /// Codegen lists it in `/v1/mcp-providers`.
    mcp_provider: bool,
    /// The organization has an integration of that name (active or not).
    integration: bool,
    status: McpAvailability,
    /// Ids of the repositories naming it in `mcpServers`.
    used_by: Vec<String>,
}

fn report(catalog: &McpCatalog, repositories: &[RepositoryConfig]) -> Report {
    let mut names = catalog.offered();
    for server in repositories.iter().flat_map(|r| &r.mcp_servers) {
        if !names.iter().any(|n| same_name(n, server)) {
            names.push(server.clone());
        }
    }
    Report {
        organization: Organization {
            id: catalog.integrations.organization_id,
            name: catalog.integrations.organization_name.clone(),
        },
        servers: names
            .into_iter()
            .map(|name| Server {
                mcp_provider: catalog.provider(&name).is_some(),
                integration: catalog.integration(&name).is_some(),
                status: catalog.availability(&name),
                used_by: mcp_servers::used_by(repositories, &name),
                name,
            })
            .collect(),
    }
}

fn list(args: ListArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = found.loaded.config;
    let c = &config.codegen;
    let client = match codegen_probe::client(&c.base_url, c.org_id, c.api_token.clone()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    let spinner = ui::spinner("Reading Codegen's MCP providers and integrations…");
    let catalog = runtime.block_on(client.mcp_catalog());
    spinner.finish_and_clear();
    let catalog = match catalog {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("error: {}", codegen_probe::explain(e));
            return ui::exit(EXIT_FAILURE);
        }
    };
    let report = report(&catalog, &config.repositories);
    if args.json {
        return match ui::print_json(&report) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        };
    }
    let s = Style::detect();
    println!(
        "Codegen organization {} ({}): {} MCP provider{}, {} integration{}",
        report.organization.id,
        report.organization.name,
        catalog.providers.len(),
        if catalog.providers.len() == 1 {
            ""
        } else {
            "s"
        },
        catalog.integrations.integrations.len(),
        if catalog.integrations.integrations.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    let rows: Vec<[String; 4]> = report
        .servers
        .iter()
        .map(|server| {
            let offered = match (server.mcp_provider, server.integration) {
                (true, true) => "MCP provider, integration",
                (true, false) => "MCP provider",
                (false, true) => "integration",
                (false, false) => "—",
            };
            let used = if server.used_by.is_empty() {
                "—".to_owned()
            } else {
                server.used_by.join(", ")
            };
            [
                server.name.clone(),
                offered.to_owned(),
                server.status.describe().to_owned(),
                used,
            ]
        })
        .collect();
    let header = ["NAME", "OFFERED AS", "STATUS", "USED BY"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    println!("\n{}", s.bold(&line(&header)));
    for r in &rows {
        println!("{}", line(r));
    }
    let findings: Vec<_> = mcp_servers::findings(&config.repositories, &catalog)
        .into_iter()
        .filter(|f| !f.unusable.is_empty())
        .collect();
    if !findings.is_empty() {
        println!();
    }
    for f in findings {
        println!(
            "{} {}: runs cannot use {}",
            s.warn(),
            f.repository,
            f.summary()
        );
        println!("  {} {}", s.dim("fix:"), f.fixes(&catalog));
    }
    ExitCode::SUCCESS
}
