//! Codegen REST API simulator, written from `codegen-openapi.json` and
//! `codegen-api.md` (§11–13), never from our client.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cyrus_sandbox::codegen::{CodegenSim, SimOptions};
//! let sim = CodegenSim::start(SimOptions { time_scale: 60.0, ..SimOptions::default() }).await?;
//! println!("{} org {} token {}", sim.url(), sim.org_id(), sim.token());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod clock;
mod control;
mod control_http;
mod endpoint;
mod errors;
mod faults;
mod listener;
mod options;
mod rate_limit;
mod run;
mod script;
mod state;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use control::{CodegenControl, ControlError, RunRecord, Stats};
pub use endpoint::Endpoint;
pub use faults::{AnswerLoss, DroppedConnections, Faults, ForcedFailure, LostAnswers};
pub use options::{RateLimits, SimMcpProvider, SimOptions, SimRepo, Window};
pub use script::{MarkerError, RunScript};

/// A running simulator. Dropping it without [`CodegenSim::shutdown`] leaves
/// the server task running until the runtime ends.
pub struct CodegenSim {
    addr: SocketAddr,
    control: CodegenControl,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl CodegenSim {
    /// Binds `opts.addr` (default 127.0.0.1:0) and starts serving.
    pub async fn start(opts: SimOptions) -> std::io::Result<CodegenSim> {
        let bind = opts
            .addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let tcp = tokio::net::TcpListener::bind(bind).await?;
        let addr = tcp.local_addr()?;
        let shared = Arc::new(state::Shared::new(&opts));
        let control = CodegenControl {
            shared: shared.clone(),
        };
        let app = api::router(shared).merge(control_http::router(control.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let service = app.into_make_service_with_connect_info::<listener::Conn>();
        let task = tokio::spawn(async move {
            axum::serve(listener::KillableListener(tcp), service)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "codegen simulator listening");
        Ok(CodegenSim {
            addr,
            control,
            stop,
            task,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn org_id(&self) -> i64 {
        self.control.shared.org_id
    }

    pub fn token(&self) -> &str {
        &self.control.shared.token
    }

    pub fn control(&self) -> CodegenControl {
        self.control.clone()
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "codegen simulator ended with an error"),
            Err(e) => tracing::warn!(error = %e, "codegen simulator task failed"),
        }
    }
}
