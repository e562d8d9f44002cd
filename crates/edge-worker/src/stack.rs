//! The whole loop on one machine: both simulators, a store and a worker on
//! free local ports, wired together — what `cyrus demo` runs and what the
//! end-to-end tests start, each with its own ports and database.

use crate::Worker;
use anyhow::Context as _;
use cyrus_sandbox::codegen::{CodegenSim, SimOptions};
use cyrus_sandbox::linear::{LinearSim, LinearSimOptions};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// What differs between stacks; `Default` is the demo's setting.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The SQLite file; `None` = a fresh temporary file.
    pub db_path: Option<PathBuf>,
    /// Simulated Codegen seconds per real second.
    pub time_scale: f64,
    pub max_cost_per_task: f64,
    pub max_cost_per_day: f64,
    pub max_concurrent_runs: u32,
    /// Applied to the generated configuration JSON before it is parsed.
    pub config_patch: Option<Value>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            db_path: None,
            time_scale: 1.0,
            max_cost_per_task: 2.0,
            max_cost_per_day: 100.0,
            max_concurrent_runs: 10,
            config_patch: None,
        }
    }
}

pub struct Stack {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    pub worker: Worker,
    /// The configuration the worker runs with, as JSON (secrets included:
    /// these are the simulators' throwaway credentials).
    pub config_json: Value,
    pub team_id: String,
    pub db_path: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        let codegen = CodegenSim::start(SimOptions {
            time_scale: opts.time_scale,
            ..SimOptions::default()
        })
        .await
        .context("starting the Codegen simulator")?;
        let linear = LinearSim::start(LinearSimOptions {
            // Webhook retries compressed like Linear's 1 min / 1 h / 6 h.
            webhook_retry_delays: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
            ..LinearSimOptions::default()
        })
        .await
        .context("starting the Linear simulator")?;
        let (db_path, tempdir) = match opts.db_path.clone() {
            Some(path) => (path, None),
            None => {
                let dir = tempfile::tempdir()?;
                (dir.path().join("cyrus.db"), Some(dir))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut config_json = config_for(&codegen, &linear, &db_path, addr, &opts);
        if let Some(patch) = &opts.config_patch {
            merge(&mut config_json, patch);
        }
        let loaded = cyrus_core::config::parse(&config_json.to_string(), &Default::default())
            .map_err(|e| anyhow::anyhow!("demo configuration is invalid: {e}"))?;
        let store = cyrus_store::Store::connect(&format!("sqlite://{}", db_path.display()))
            .await
            .context("opening the store")?;
        let worker = Worker::start(loaded.config, store, listener).await?;
        linear
            .control()
            .set_webhook_url(Some(format!("http://{addr}/webhooks/linear")));
        let team = linear
            .control()
            .create_team(cyrus_sandbox::linear::NewTeam {
                key: "ENG".into(),
                name: "Engineering".into(),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating the demo team: {e:?}"))?;
        Ok(Stack {
            codegen,
            linear,
            worker,
            config_json,
            team_id: team.id,
            db_path,
            _tempdir: tempdir,
        })
    }

    /// Stops the worker gracefully and starts a fresh one (new port, same
    /// store and configuration), as after a deploy or restart.
    pub async fn restart_worker(&mut self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        self.config_json["server"]["listen"] = serde_json::json!(addr.to_string());
        let loaded = cyrus_core::config::parse(&self.config_json.to_string(), &Default::default())
            .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))?;
        let store =
            cyrus_store::Store::connect(&format!("sqlite://{}", self.db_path.display())).await?;
        let fresh = Worker::start(loaded.config, store, listener).await?;
        let old = std::mem::replace(&mut self.worker, fresh);
        old.shutdown().await;
        self.linear
            .control()
            .set_webhook_url(Some(format!("http://{addr}/webhooks/linear")));
        Ok(())
    }

    pub fn worker_url(&self) -> String {
        format!("http://{}", self.worker.addr())
    }

    /// Creates an issue in the demo team and delegates it to the agent.
    /// Returns the issue id and the agent session id.
    pub fn delegate_issue(
        &self,
        title: &str,
        description: &str,
        labels: &[&str],
    ) -> anyhow::Result<(String, String)> {
        let control = self.linear.control();
        let mut label_ids = Vec::new();
        for name in labels {
            let label = control
                .create_label(cyrus_sandbox::linear::NewLabel {
                    name: name.to_string(),
                    ..Default::default()
                })
                .map_err(|e| anyhow::anyhow!("creating label {name}: {e:?}"))?;
            label_ids.push(label.id);
        }
        let issue = control
            .create_issue(cyrus_sandbox::linear::NewIssue {
                team_id: Some(self.team_id.clone()),
                title: title.to_string(),
                description: Some(description.to_string()),
                label_ids,
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating issue: {e:?}"))?;
        let session = control
            .delegate(&issue.id, None)
            .map_err(|e| anyhow::anyhow!("delegating: {e:?}"))?;
        Ok((issue.id, session))
    }

    pub async fn shutdown(self) {
        self.worker.shutdown().await;
        self.codegen.shutdown().await;
        self.linear.shutdown().await;
    }
}

/// Configuration pointing a worker at the two simulators.
pub fn config_for(
    codegen: &CodegenSim,
    linear: &LinearSim,
    db_path: &std::path::Path,
    listen: std::net::SocketAddr,
    opts: &StackOptions,
) -> Value {
    let org = linear.organization_id();
    json!({
        "repositories": [
            {
                "id": "web", "name": "web", "linearWorkspaceId": org, "codegenRepoId": 7,
                "teamKeys": ["ENG"],
                "labelPrompts": {"debugger": ["Bug"], "builder": ["Feature"], "scoper": ["PRD"]},
                "allowedTools": ["Read(**)", "Edit(**)", "Bash(git:*)"], "mcpServers": ["linear", "github"]
            },
            {
                "id": "api", "name": "api", "linearWorkspaceId": org, "codegenRepoId": 8,
                "routingLabels": ["backend"]
            }
        ],
        "codegen": {
            "enabled": true, "orgId": codegen.org_id(), "apiToken": codegen.token(),
            "baseUrl": codegen.url(),
            "maxCostPerTask": opts.max_cost_per_task, "maxCostPerDay": opts.max_cost_per_day,
            "maxConcurrentRuns": opts.max_concurrent_runs,
            "defaultModel": "claude-3-5-sonnet",
            "modelByTaskType": {"debugger": "claude-3-5-sonnet", "builder": "claude-3-5-sonnet"},
            "pricing": {"claude-3-5-sonnet": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "perRun": 0.05},
            "pollIntervalSecs": 1
        },
        "linear": {
            "apiUrl": linear.url(),
            "webhookSecret": linear.webhook_secret(),
            "agentUserId": linear.agent_user_id(),
            "workspaces": [{
                "organizationId": org, "token": linear.api_key(),
                "webhookSecret": linear.webhook_secret(), "agentUserId": linear.agent_user_id()
            }]
        },
        "server": {"listen": listen.to_string()},
        "store": {"url": format!("sqlite://{}", db_path.display())}
    })
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}
