//! Shared fixtures for the operator-command tests: a Codegen simulator in
//! this process, a store filled through the `Store` API, and configs that
//! point at both.

use crate::support::{Outcome, cyrus};
use cyrus_core::lifecycle::TaskState;
use cyrus_sandbox::codegen::{CodegenSim, SimOptions};
use cyrus_store::{CostEntry, NewTask, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs the binary off the async runtime, so the simulator keeps serving.
pub async fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let home = home.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cyrus(&home, &args, &env)
    })
    .await
    .expect("cyrus runner")
}

pub async fn sim() -> CodegenSim {
    CodegenSim::start(SimOptions::default())
        .await
        .expect("start the Codegen simulator")
}

/// A free loopback port nobody listens on (bound, then released).
pub fn free_listen() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A complete, valid config for the simulator and a SQLite store in `dir`.
pub fn config(dir: &Path, sim: &CodegenSim, token: &str) -> (PathBuf, String) {
    let db = dir.join("cyrus.db");
    let store_url = format!("sqlite://{}", db.display());
    let text = json!({
        "repositories": [{
            "id": "web", "name": "web", "linearWorkspaceId": "org-1",
            "linearToken": "lin_api_test", "codegenRepoId": 7, "teamKeys": ["ENG"]
        }],
        "codegen": {
            "orgId": sim.org_id(), "apiToken": token, "baseUrl": sim.url(),
            "maxCostPerDay": 50.0
        },
        "linear": {"webhookSecret": "whsec_test", "apiUrl": "http://127.0.0.1:9/graphql"},
        "server": {"listen": free_listen()},
        "store": {"url": store_url}
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    (path, store_url)
}

/// One realistic task: created `age` ago, started `start_ms` later, finished
/// after `run` with `outcome` (or still running when `None`).
pub struct Seed {
    pub issue: &'static str,
    pub repo: &'static str,
    pub model: &'static str,
    pub start_ms: i64,
    pub run: Duration,
    pub outcome: Option<&'static str>,
    pub error: Option<&'static str>,
    pub cost_micros: i64,
    pub api_calls: i64,
}

/// Writes the seeds through the `Store` API the worker uses; returns "now".
pub async fn fill(store_url: &str, seeds: &[Seed]) -> i64 {
    let store = Store::connect(store_url).await.expect("open store");
    let now = chrono::Utc::now();
    let now_ms = cyrus_store::millis(now);
    for (i, s) in seeds.iter().enumerate() {
        let created = now_ms - 3_600_000 + i as i64 * 1000;
        let (task, _) = store
            .create_task_if_absent(&NewTask {
                agent_session_id: format!("session-{i}"),
                issue_id: format!("issue-{i}"),
                issue_identifier: s.issue.to_owned(),
                organization_id: "org-1".into(),
                state: TaskState::Received,
                priority: 2,
                created_at: created,
                run_at: created,
                max_attempts: 3,
                data: json!({}),
            })
            .await
            .unwrap();
        let claimed = store
            .claim_due_tasks("test", Duration::from_secs(60), now_ms, 100)
            .await
            .unwrap();
        let mut t = claimed.into_iter().find(|t| t.id == task.id).unwrap();
        t.model = Some(s.model.to_owned());
        t.started_at = Some(created + s.start_ms);
        t.codegen_run_id = Some(100 + i as i64);
        t.estimated_cost = Some(cyrus_core::MicroDollars(s.cost_micros));
        t.data = json!({
            "repository": s.repo, "repository_name": s.repo,
            "web_url": format!("https://codegen.example/run/{}", 100 + i)
        });
        match s.outcome {
            Some(o) => {
                t.state = o.parse().expect("a task state");
                t.outcome = Some(o.to_owned());
                t.finished_at = Some(created + s.start_ms + s.run.as_millis() as i64);
                t.last_error = s.error.map(str::to_owned);
            }
            None => t.state = TaskState::Running,
        }
        store.update_task(&t, "test").await.unwrap();
        store.release_task(&t.id, "test").await.unwrap();
        store.add_api_calls(&t.id, s.api_calls).await.unwrap();
        store
            .add_cost(&CostEntry {
                task_id: t.id.clone(),
                seq: 1,
                repository: s.repo.to_owned(),
                model: s.model.to_owned(),
                task_type: None,
                day: now.date_naive(),
                amount: cyrus_core::MicroDollars(s.cost_micros),
                recorded_at: now_ms,
            })
            .await
            .unwrap();
    }
    store.close().await;
    now_ms
}
