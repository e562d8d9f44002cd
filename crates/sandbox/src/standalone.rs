//! Runs the simulators as a standalone process (`cyrus sandbox`), for manual
//! testing and for clients in other languages.
//!
//! The first stdout line is one JSON object with every URL and credential a
//! client needs, so scripts can read it with a single `head -n1`.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::codegen::{CodegenSim, SimOptions};
use crate::linear::{LinearSim, LinearSimOptions};

/// What `cyrus sandbox` can set.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    /// Codegen simulator address; `None` = 127.0.0.1 on a free port.
    pub codegen_addr: Option<SocketAddr>,
    /// Linear simulator address; `None` = 127.0.0.1 on a free port.
    pub linear_addr: Option<SocketAddr>,
    /// Simulated seconds per real second (1 = real time).
    pub time_scale: f64,
    /// Linear's request budget per hour; `None` = Linear's documented one.
    /// Load tests raise it so the budget is not what they measure.
    pub linear_requests_per_hour: Option<u32>,
}

impl Default for StandaloneOptions {
    fn default() -> Self {
        Self {
            codegen_addr: None,
            linear_addr: None,
            time_scale: 1.0,
            linear_requests_per_hour: None,
        }
    }
}

/// The running simulators.
pub struct Standalone {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
}

impl Standalone {
    pub async fn start(opts: StandaloneOptions) -> std::io::Result<Standalone> {
        let codegen = CodegenSim::start(SimOptions {
            addr: opts.codegen_addr,
            time_scale: opts.time_scale,
            ..SimOptions::default()
        })
        .await?;
        let mut linear_opts = LinearSimOptions {
            addr: opts.linear_addr,
            ..LinearSimOptions::default()
        };
        if let Some(n) = opts.linear_requests_per_hour {
            linear_opts.rate_limits.requests_per_window = n;
            // Complexity scales with the requests (Linear's ratio).
            linear_opts.rate_limits.complexity_per_window = u64::from(n) * 1_200;
        }
        let linear = match LinearSim::start(linear_opts).await {
            Ok(linear) => linear,
            Err(e) => {
                codegen.shutdown().await;
                return Err(e);
            }
        };
        Ok(Standalone { codegen, linear })
    }

    /// The start-up line: URLs and credentials. Webhooks have no target until
    /// one is set through the Linear control API.
    pub fn info(&self) -> Value {
        json!({
            "codegen_url": self.codegen.url(),
            "codegen_org_id": self.codegen.org_id(),
            "codegen_token": self.codegen.token(),
            "codegen_control_url": format!("{}/_control", self.codegen.url()),
            "linear_url": self.linear.url(),
            "linear_api_key": self.linear.api_key(),
            "linear_webhook_secret": self.linear.webhook_secret(),
            "linear_organization_id": self.linear.organization_id(),
            "linear_agent_user_id": self.linear.agent_user_id(),
            "linear_control_url": format!("{}/_control", self.linear.base_url()),
        })
    }

    pub async fn shutdown(self) {
        self.codegen.shutdown().await;
        self.linear.shutdown().await;
    }
}

/// Starts the simulators, prints [`Standalone::info`] as the first stdout
/// line, and serves until SIGINT or SIGTERM.
pub async fn run(opts: StandaloneOptions) -> std::io::Result<()> {
    let sims = Standalone::start(opts).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", sims.info())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    tracing::info!("signal received; stopping simulators");
    sims.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
