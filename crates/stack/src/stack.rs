//! Simulators, a store and an in-process worker on free local ports, wired
//! together — what `cyrus demo` runs and what the end-to-end tests start,
//! each with its own ports and database.

use crate::simulators::{delegate_issue, send_webhooks_to};
use crate::{Simulators, StackOptions};
use anyhow::Context as _;
use cyrus_edge_worker::Worker;
use cyrus_sandbox::codegen::CodegenSim;
use cyrus_sandbox::linear::LinearSim;
use serde_json::Value;

pub struct Stack {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    pub worker: Worker,
    /// The configuration the worker runs with, as JSON (secrets included:
    /// these are the simulators' throwaway credentials).
    pub config_json: Value,
    pub team_id: String,
    /// The store the worker uses (`sqlite://…` or `postgres://…`).
    pub store_url: String,
    _tempdir: Option<tempfile::TempDir>,
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        let Simulators {
            codegen,
            linear,
            team_id,
        } = Simulators::start(&opts).await?;
        let (store_url, tempdir) = opts.store.resolve()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config_json = crate::config_for(&codegen, &linear, &store_url, addr, &opts);
        let worker = start_worker(&config_json, &store_url, listener).await?;
        send_webhooks_to(&linear, addr);
        Ok(Stack {
            codegen,
            linear,
            worker,
            config_json,
            team_id,
            store_url,
            _tempdir: tempdir,
        })
    }

    /// Starts a fresh worker (new port, same store and configuration), sends
    /// the webhooks to it, and returns the old one still running: shut it
    /// down for a deploy, drop it for a crash.
    pub async fn replace_worker(&mut self) -> anyhow::Result<Worker> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        self.config_json["server"]["listen"] = serde_json::json!(addr.to_string());
        let fresh = start_worker(&self.config_json, &self.store_url, listener).await?;
        let old = std::mem::replace(&mut self.worker, fresh);
        send_webhooks_to(&self.linear, addr);
        Ok(old)
    }

    /// Stops the worker gracefully and starts a fresh one (new port, same
    /// store and configuration), as after a deploy or restart.
    pub async fn restart_worker(&mut self) -> anyhow::Result<()> {
        self.replace_worker().await?.shutdown().await;
        Ok(())
    }

    pub fn worker_url(&self) -> String {
        format!("http://{}", self.worker.addr())
    }

    /// Creates an issue in the team and delegates it to the agent. Returns
    /// the issue id and the agent session id.
    pub fn delegate_issue(
        &self,
        title: &str,
        description: &str,
        labels: &[&str],
    ) -> anyhow::Result<(String, String)> {
        delegate_issue(&self.linear, &self.team_id, title, description, labels)
    }

    pub async fn shutdown(self) {
        self.worker.shutdown().await;
        self.codegen.shutdown().await;
        self.linear.shutdown().await;
    }
}

/// Parses `config_json`, opens the store at `store_url` (migrating it) and
/// starts a worker on `listener`.
pub async fn start_worker(
    config_json: &Value,
    store_url: &str,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Worker> {
    let loaded = cyrus_core::config::parse(&config_json.to_string(), &Default::default())
        .map_err(|e| anyhow::anyhow!("the stack's configuration is invalid: {e}"))?;
    let store = cyrus_store::Store::connect(store_url)
        .await
        .context("opening the stack's store")?;
    Worker::start(loaded.config, store, listener).await
}
