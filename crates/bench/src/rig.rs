//! A benchmark rig: both simulators on loopback and a worker pointed at them,
//! either in this process ([`Rig::start_worker`]) or as a real `cyrus start`
//! child (what the memory scenario measures).
//!
//! Unlike `edge_worker::stack::Stack`, the rig chooses the store (SQLite or
//! PostgreSQL) and the simulators' limits, which the scenarios need to state
//! explicitly.

use anyhow::Context as _;
use cyrus_edge_worker::Worker;
use cyrus_edge_worker::stack::{StackOptions, config_for, merge};
use cyrus_sandbox::codegen::{CodegenSim, SimOptions};
use cyrus_sandbox::linear::{LinearSim, LinearSimOptions, NewIssue, NewTeam};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RigOptions {
    /// Simulated Codegen seconds per real second.
    pub time_scale: f64,
    /// `None` = SQLite in a temporary directory.
    pub store_url: Option<String>,
    /// The Codegen simulator's limits (documented ones by default).
    pub codegen_limits: cyrus_sandbox::codegen::RateLimits,
    /// The Linear simulator's request budget per hour.
    pub linear_requests_per_hour: u32,
    /// The Linear simulator's complexity budget per hour (query points).
    pub linear_complexity_per_hour: u64,
    /// The Linear simulator's rate-limit window (Linear's is an hour). A
    /// `RATELIMITED` answer tells the client to wait until the window ends,
    /// so scenarios that force rate limits shorten it.
    pub linear_window: Duration,
    pub max_concurrent_runs: u32,
    /// Merged into the worker's configuration.
    pub config_patch: Value,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            time_scale: 1.0,
            store_url: None,
            codegen_limits: Default::default(),
            linear_requests_per_hour: LinearSimOptions::default().rate_limits.requests_per_window,
            linear_complexity_per_hour: LinearSimOptions::default()
                .rate_limits
                .complexity_per_window,
            linear_window: LinearSimOptions::default().rate_limits.window,
            max_concurrent_runs: 10,
            config_patch: json!({}),
        }
    }
}

pub struct Rig {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    pub team_id: String,
    pub config_json: Value,
    pub addr: SocketAddr,
    pub store_url: String,
    listener: Option<tokio::net::TcpListener>,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// Starts both simulators and prepares the configuration; no worker yet.
    pub async fn prepare(opts: RigOptions) -> anyhow::Result<Rig> {
        let codegen = CodegenSim::start(SimOptions {
            time_scale: opts.time_scale,
            rate_limits: opts.codegen_limits.clone(),
            ..SimOptions::default()
        })
        .await
        .context("starting the Codegen simulator")?;
        let mut linear_opts = LinearSimOptions::default();
        linear_opts.rate_limits.requests_per_window = opts.linear_requests_per_hour;
        linear_opts.rate_limits.complexity_per_window = opts.linear_complexity_per_hour;
        linear_opts.rate_limits.window = opts.linear_window;
        linear_opts.webhook_retry_delays = vec![Duration::from_secs(1), Duration::from_secs(5)];
        let linear = LinearSim::start(linear_opts)
            .await
            .context("starting the Linear simulator")?;
        let dir = tempfile::tempdir()?;
        let db_path = dir.path().join("cyrus.db");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stack_opts = StackOptions {
            time_scale: opts.time_scale,
            max_cost_per_task: 2.0,
            // Budgets are not under test: 1 000 reservations must not wait.
            max_cost_per_day: 1_000_000.0,
            max_concurrent_runs: opts.max_concurrent_runs,
            ..StackOptions::default()
        };
        let mut config_json = config_for(&codegen, &linear, &db_path, addr, &stack_opts);
        merge(&mut config_json, &opts.config_patch);
        let store_url = opts
            .store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", db_path.display()));
        config_json["store"]["url"] = json!(store_url);
        linear
            .control()
            .set_webhook_url(Some(format!("http://{addr}/webhooks/linear")));
        let team = linear
            .control()
            .create_team(NewTeam {
                key: "ENG".into(),
                name: "Engineering".into(),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating the team: {e:?}"))?;
        Ok(Rig {
            codegen,
            linear,
            team_id: team.id,
            config_json,
            addr,
            store_url,
            listener: Some(listener),
            dir,
        })
    }

    /// Starts the worker in this process.
    pub async fn start_worker(&mut self) -> anyhow::Result<Worker> {
        let loaded = cyrus_core::config::parse(&self.config_json.to_string(), &Default::default())
            .map_err(|e| anyhow::anyhow!("bench configuration is invalid: {e}"))?;
        let store = cyrus_store::Store::connect(&self.store_url)
            .await
            .context("opening the store")?;
        let listener = self.listener.take().context("worker already started")?;
        Worker::start(loaded.config, store, listener).await
    }

    /// Writes the configuration and starts `cyrus start` on the rig's port.
    pub fn spawn_cli(&mut self, cyrus_bin: &std::path::Path) -> anyhow::Result<ChildWorker> {
        // Free the port for the child (a tiny race, acceptable on loopback).
        drop(self.listener.take());
        let path = self.dir.path().join("cyrus.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&self.config_json)?)?;
        let log = std::fs::File::create(self.dir.path().join("worker.log"))?;
        let child = std::process::Command::new(cyrus_bin)
            .arg("start")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", cyrus_bin.display()))?;
        Ok(ChildWorker {
            child,
            log: self.dir.path().join("worker.log"),
        })
    }

    /// Creates `n` issues in the team (not timed), each with `description`
    /// followed by ` bench-key=<i>` so runs can be matched to sessions.
    pub fn create_issues(&self, n: usize, description: &str) -> anyhow::Result<Vec<String>> {
        let control = self.linear.control();
        (0..n)
            .map(|i| {
                control
                    .create_issue(NewIssue {
                        team_id: Some(self.team_id.clone()),
                        title: format!("Bench task {i}"),
                        description: Some(format!("{description} bench-key={i}.")),
                        ..Default::default()
                    })
                    .map(|issue| issue.id)
                    .map_err(|e| anyhow::anyhow!("creating issue {i}: {e:?}"))
            })
            .collect()
    }

    pub fn delegate(&self, issue_id: &str) -> anyhow::Result<String> {
        self.linear
            .control()
            .delegate(issue_id, None)
            .map_err(|e| anyhow::anyhow!("delegating {issue_id}: {e:?}"))
    }

    pub async fn shutdown(self) {
        self.codegen.shutdown().await;
        self.linear.shutdown().await;
    }
}

/// `cyrus start` running as a child process.
pub struct ChildWorker {
    child: std::process::Child,
    log: PathBuf,
}

impl ChildWorker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size (`VmRSS`) in KiB, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Peak resident set size (`VmHWM`) in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// The child's stderr so far (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_string()
    }

    /// `Some(status)` if the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{key} missing in /proc/{pid}/status"))
}

/// Waits until `check` holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the worker answers `/healthz`.
pub async fn wait_healthy(addr: SocketAddr, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
