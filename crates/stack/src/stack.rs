//! Simulators, a store and an in-process worker on free local ports, wired
//! together — what `cyrus demo` runs and what the end-to-end tests start,
//! each with its own ports and database.

use crate::simulators::{delegate_issue, send_webhooks_to};
use crate::{Simulators, StackOptions};
use anyhow::Context as _;
use cyrus_edge_worker::{Worker, install};
use cyrus_sandbox::codegen::CodegenSim;
use cyrus_sandbox::linear::LinearSim;
use cyrus_store::{InstallationInfo, Keyring, SecretKey, Store};
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
    /// The key Linear tokens are encrypted with: one per stack, shared by
    /// every worker the stack starts (replicas, restarts).
    pub keys: Keyring,
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
        let keys = Keyring::new(SecretKey::generate(), None);
        let worker = start_worker_with_keys(&config_json, &store_url, &keys, listener).await?;
        send_webhooks_to(&linear, addr);
        Ok(Stack {
            codegen,
            linear,
            worker,
            config_json,
            team_id,
            store_url,
            keys,
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
        let fresh =
            start_worker_with_keys(&self.config_json, &self.store_url, &self.keys, listener)
                .await?;
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

    /// A second connection to the stack's store, able to read installation
    /// tokens (the stack's key).
    pub async fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::connect(&self.store_url)
            .await
            .context("opening the stack's store")?
            .with_secret_keys(self.keys.clone()))
    }

    /// Installs the OAuth app in `organization` (the simulator's first one
    /// when `None`) the way an admin does: the authorize URL from
    /// `cyrus_edge_worker::install::begin`, the simulator's consent, and its
    /// redirect to the worker's `GET /oauth/callback`. Needs
    /// [`crate::LinearAuth::OAuth`].
    pub async fn connect_workspace(
        &self,
        organization: Option<&str>,
    ) -> anyhow::Result<InstallationInfo> {
        let loaded = cyrus_core::config::parse(&self.config_json.to_string(), &Default::default())
            .map_err(|e| anyhow::anyhow!("the stack's configuration is invalid: {e}"))?;
        let app = install::OAuthApp::from_config(&loaded.config)?;
        self.linear
            .control()
            .install_into(organization)
            .map_err(|e| anyhow::anyhow!("choosing the workspace to install into: {e:?}"))?;
        let store = self.store().await?;
        let url = install::begin(&store, &app, organization.is_some(), now_ms()).await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let consent = http
            .get(url)
            .send()
            .await
            .context("opening the authorize URL")?;
        let callback = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the consent answered {} without a redirect",
                    consent.status()
                )
            })?;
        let page = http
            .get(&callback)
            .send()
            .await
            .context("following the callback")?;
        let status = page.status();
        let body = page.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "the callback answered {status}: {body}"
        );
        let infos = store.list_installation_infos().await?;
        let wanted = match organization {
            Some(o) => self
                .linear
                .control()
                .organization(o)
                .map(|c| c.current_organization().id)
                .ok_or_else(|| anyhow::anyhow!("no simulated organization {o}"))?,
            None => self.linear.organization_id().to_string(),
        };
        infos
            .into_iter()
            .find(|i| i.workspace_id == wanted)
            .ok_or_else(|| anyhow::anyhow!("the callback stored no installation for {wanted}"))
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
/// starts a worker on `listener`, with a fresh key for Linear tokens.
pub async fn start_worker(
    config_json: &Value,
    store_url: &str,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Worker> {
    let keys = Keyring::new(SecretKey::generate(), None);
    start_worker_with_keys(config_json, store_url, &keys, listener).await
}

/// [`start_worker`] with the given key (replicas of one store share it).
pub async fn start_worker_with_keys(
    config_json: &Value,
    store_url: &str,
    keys: &Keyring,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Worker> {
    let loaded = cyrus_core::config::parse(&config_json.to_string(), &Default::default())
        .map_err(|e| anyhow::anyhow!("the stack's configuration is invalid: {e}"))?;
    let store = Store::connect(store_url)
        .await
        .context("opening the stack's store")?
        .with_secret_keys(keys.clone());
    Worker::start(loaded.config, store, listener).await
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
