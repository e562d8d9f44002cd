//! `cyrus sandbox`: runs the Codegen and Linear simulators standalone until
//! SIGINT/SIGTERM. The first stdout line is one JSON object with their URLs
//! and credentials (see `cyrus_sandbox::standalone`).

use std::net::SocketAddr;
use std::process::ExitCode;

use cyrus_sandbox::standalone::{self, StandaloneOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address for the Codegen simulator (default: 127.0.0.1 on a free port).
    #[arg(long, value_name = "ADDR")]
    pub codegen_addr: Option<SocketAddr>,
    /// Address for the Linear simulator (default: 127.0.0.1 on a free port).
    #[arg(long, value_name = "ADDR")]
    pub linear_addr: Option<SocketAddr>,
    /// Simulated seconds per real second; 60 makes a 5-minute run take 5 s.
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    /// The Linear simulator's request budget per hour (default: Linear's
    /// documented budget). Raise it for load tests.
    #[arg(long, value_name = "N")]
    pub linear_requests_per_hour: Option<u32>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number >= 0, got `{s}`")),
    }
}

/// Runs the simulators on a fresh runtime until a signal arrives; prints the
/// error and fails on a bind or signal-handler error.
pub fn run(args: SandboxArgs) -> ExitCode {
    let result = tokio::runtime::Runtime::new().and_then(|rt| {
        rt.block_on(standalone::run(StandaloneOptions {
            codegen_addr: args.codegen_addr,
            linear_addr: args.linear_addr,
            time_scale: args.time_scale,
            linear_requests_per_hour: args.linear_requests_per_hour,
        }))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: running the sandbox simulators: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn parses_addresses_and_scale() {
        let cli = Cli::try_parse_from([
            "x",
            "--codegen-addr",
            "127.0.0.1:9000",
            "--time-scale",
            "60",
        ])
        .unwrap();
        assert_eq!(
            cli.args.codegen_addr,
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(cli.args.linear_addr, None);
        assert_eq!(cli.args.time_scale, 60.0);
    }

    #[test]
    fn rejects_negative_scale() {
        assert!(Cli::try_parse_from(["x", "--time-scale", "-1"]).is_err());
    }
}
