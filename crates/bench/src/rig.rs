//! A benchmark rig: the stack's simulators and configuration
//! (`cyrus-stack`), with the worker either in this process
//! ([`Rig::start_worker`]) or as a real `cyrus start` child (what the memory
//! scenario measures).

use anyhow::Context as _;
use cyrus_edge_worker::Worker;
use cyrus_sandbox::codegen::CodegenSim;
use cyrus_sandbox::linear::{LinearSim, NewIssue};
use cyrus_stack::{Simulators, StackOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The benchmarks' starting point: the demo's stack with the daily budget
/// out of the way (1 000 reservations must not wait) and Linear's webhook
/// retries after 1 s and 5 s.
pub fn options() -> StackOptions {
    let mut opts = StackOptions {
        max_cost_per_task: 2.0,
        max_cost_per_day: 1_000_000.0,
        ..StackOptions::default()
    };
    opts.linear.webhook_retry_delays = vec![Duration::from_secs(1), Duration::from_secs(5)];
    opts
}

pub struct Rig {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    pub team_id: String,
    pub config_json: Value,
    pub addr: SocketAddr,
    pub store_url: String,
    listener: Option<tokio::net::TcpListener>,
    /// The child's configuration file and log.
    pub dir: tempfile::TempDir,
    _store_dir: Option<tempfile::TempDir>,
}

impl Rig {
    /// Starts both simulators and prepares the configuration; no worker yet.
    pub async fn prepare(opts: StackOptions) -> anyhow::Result<Rig> {
        let sims = Simulators::start(&opts).await?;
        let (store_url, store_dir) = opts.store.resolve()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config_json = sims.config(&store_url, addr, &opts);
        sims.send_webhooks_to(addr);
        let Simulators {
            codegen,
            linear,
            team_id,
        } = sims;
        Ok(Rig {
            codegen,
            linear,
            team_id,
            config_json,
            addr,
            store_url,
            listener: Some(listener),
            dir: tempfile::tempdir()?,
            _store_dir: store_dir,
        })
    }

    /// Starts the worker in this process.
    pub async fn start_worker(&mut self) -> anyhow::Result<Worker> {
        let listener = self.listener.take().context("worker already started")?;
        cyrus_stack::start_worker(&self.config_json, &self.store_url, listener).await
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

/// A `/proc/<pid>/status` figure given in KiB (`VmRSS:`, `VmHWM:`).
pub(crate) fn proc_status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
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
