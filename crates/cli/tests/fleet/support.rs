//! The fleet harness: the stack's in-process simulators and configuration
//! (`cyrus-stack`), real `cyrus start` processes (each logging to its own
//! file), a round-robin forwarder in front of them standing in for the load
//! balancer, and a driver that delegates a planned mix of tasks and checks
//! that each one ends exactly as often as it should.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cyrus_sandbox::codegen::{CodegenSim, RunRecord};
use cyrus_sandbox::linear::{LinearSim, NewIssue, SessionView};
use cyrus_stack::{Simulators, StackOptions};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Simulated Codegen seconds per real second in these tests.
///
/// Codegen's windows are in simulated time: at 60×, its "10 creates per
/// 60 s" is 10 per real second. The worker keeps Codegen's documented
/// counts (10 / 60 s, 60 / 30 s, 60 / 60 s) and divides its sliding windows
/// by the same factor (`codegen.rateLimits.timeScale`), so in simulated
/// time it runs exactly its production limits (with the 2 % window margin).
pub const TIME_SCALE: f64 = 60.0;
pub const CREATE_PER_MINUTE: u32 = 10;
pub const READS_PER_30S: u32 = 60;
pub const LOGS_PER_MINUTE: u32 = 60;
/// Codegen's documented creation limit, in simulated time.
pub const CODEGEN_CREATES_PER_WINDOW: usize = 10;
pub const CODEGEN_CREATE_WINDOW_MS: u64 = 60_000;

/// PostgreSQL URL for tests; `None` (with a loud message) when unset outside
/// CI. Under `CI=true` a missing URL fails the test.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CYRUS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CYRUS_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL tests")
        }
        _ => {
            eprintln!(
                "SKIPPED: CYRUS_TEST_POSTGRES_URL is not set; the PostgreSQL fleet test did not run"
            );
            None
        }
    }
}

/// A fresh database on the server of `admin_url`, dropped by [`drop_database`].
pub async fn create_database(admin_url: &str) -> (String, String) {
    use sqlx::Connection as _;
    let name = format!("cyrus_t_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connecting to CYRUS_TEST_POSTGRES_URL");
    // `name` is generated here from [a-z]: nothing to inject.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin_url).expect("postgres URL");
    url.set_path(&format!("/{name}"));
    (name, url.to_string())
}

pub async fn drop_database(admin_url: &str, name: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

fn uuid_like() -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// The seed for a test's random choices: `CYRUS_FLEET_SEED` to replay one,
/// otherwise fresh. Always printed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("CYRUS_FLEET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: seed {seed} (replay with CYRUS_FLEET_SEED={seed})");
    seed
}

/// Both simulators and the forwarder Linear's webhooks go to.
pub struct World {
    pub codegen: CodegenSim,
    pub linear: LinearSim,
    pub team_id: String,
    pub balancer: Balancer,
    pub dir: tempfile::TempDir,
}

/// The stack options of these tests: time-compressed Codegen, Linear's
/// budgets out of the way, Codegen's documented counts on the client.
fn options() -> StackOptions {
    let mut opts = StackOptions {
        max_cost_per_task: 2.0,
        max_cost_per_day: 100_000.0,
        config_patch: Some(json!({
            "codegen": {"rateLimits": {
                "createPerMinute": CREATE_PER_MINUTE,
                "readsPer30s": READS_PER_30S,
                "logsPerMinute": LOGS_PER_MINUTE,
                "timeScale": TIME_SCALE as u32
            }}
        })),
        ..StackOptions::default().time_scale(TIME_SCALE)
    };
    // Linear retries a failed webhook after ~1 min, 1 h, 6 h; here quickly
    // (the stack's default), so a delivery that hit a dead replica is
    // retried while the test runs. Hundreds of tasks in minutes are far
    // above Linear's hourly budget, which is not what these tests are about.
    opts.linear.rate_limits = cyrus_sandbox::linear::RateLimits {
        requests_per_window: 1_000_000,
        complexity_per_window: 1_000_000_000,
        window: Duration::from_secs(3600),
    };
    opts
}

impl World {
    pub async fn start() -> World {
        let Simulators {
            codegen,
            linear,
            team_id,
        } = Simulators::start(&options())
            .await
            .expect("the simulators start");
        let balancer = Balancer::start().await;
        linear
            .control()
            .set_webhook_url(Some(format!("http://{}/webhooks/linear", balancer.addr)));
        World {
            codegen,
            linear,
            team_id,
            balancer,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The worker configuration for `store_url` (listen address filled in
    /// per replica).
    pub fn config(&self, store_url: &str, max_concurrent_runs: u32) -> Value {
        let placeholder: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let opts = StackOptions {
            max_concurrent_runs,
            ..options()
        };
        cyrus_stack::config_for(&self.codegen, &self.linear, store_url, placeholder, &opts)
    }

    pub fn delegate(&self, title: &str, description: &str) -> String {
        let control = self.linear.control();
        let issue = control
            .create_issue(NewIssue {
                team_id: Some(self.team_id.clone()),
                title: title.into(),
                description: Some(description.into()),
                ..Default::default()
            })
            .expect("issue");
        control.delegate(&issue.id, None).expect("delegate")
    }

    pub fn session(&self, id: &str) -> SessionView {
        self.linear.control().session(id).expect("session exists")
    }
}

/// A round-robin HTTP forwarder, like a load balancer: tries each backend in
/// turn, skips ones that refuse the connection, answers 502 when none
/// answers (Linear then retries the webhook later).
pub struct Balancer {
    pub addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

struct BalancerState {
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    next: AtomicUsize,
    http: reqwest::Client,
}

impl Balancer {
    async fn start() -> Balancer {
        let backends = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(BalancerState {
            backends: backends.clone(),
            next: AtomicUsize::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Balancer {
            addr,
            backends,
            task,
        }
    }

    pub fn set_backends(&self, addrs: Vec<SocketAddr>) {
        *self.backends.lock().expect("backends") = addrs;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(lb): State<Arc<BalancerState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes): Result<Bytes, _> = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let backends = lb.backends.lock().expect("backends").clone();
    let start = lb.next.fetch_add(1, Ordering::Relaxed);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    for i in 0..backends.len() {
        let addr = backends[(start + i) % backends.len()];
        let mut request = lb
            .http
            .request(parts.method.clone(), format!("http://{addr}{path}"))
            .body(bytes.clone());
        for (name, value) in &parts.headers {
            if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        if let Ok(resp) = request.send().await {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            return (status, body).into_response();
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}

/// One real `cyrus start` process.
pub struct Replica {
    pub name: String,
    pub addr: SocketAddr,
    pub log: PathBuf,
    config_path: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Replica {
    /// Writes the configuration (with a free port) and starts the process.
    pub fn spawn(name: &str, config: &Value, dir: &Path) -> Replica {
        let addr = free_port();
        let mut config = config.clone();
        config["server"]["listen"] = json!(addr.to_string());
        let config_path = dir.join(format!("{name}.json"));
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("writing the config");
        let mut replica = Replica {
            name: name.into(),
            addr,
            log: dir.join(format!("{name}.log")),
            config_path,
            dir: dir.to_path_buf(),
            child: None,
            starts: 0,
        };
        replica.start_process();
        replica
    }

    fn start_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        use std::io::Write as _;
        let mut marker = log.try_clone().expect("log");
        let _ = writeln!(marker, "===== start #{} =====", self.starts + 1);
        let child = Command::new(env!("CARGO_BIN_EXE_cyrus"))
            .args(["start", "--config"])
            .arg(&self.config_path)
            .env_clear()
            .env("HOME", &self.dir)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn,hyper=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning cyrus start");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Waits until `/readyz` answers 200; panics with the log otherwise.
    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited during start-up ({status})\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if let Ok(resp) = http
                .get(format!("http://{}/readyz", self.addr))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && resp.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("{} not ready within 60 s\n{}", self.name, self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown handler runs, leases stay until they expire.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and configuration.
    pub async fn restart(&mut self) {
        self.kill();
        self.start_process();
        self.wait_ready().await;
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's last `lines` lines, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "----- {} ({}) last {} lines -----\n{}",
            self.name,
            self.log.display(),
            all.len() - from,
            all[from..].join("\n")
        )
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// What a planned task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Completes with a pull request: one `response`.
    Pr,
    /// Codegen reports FAILED: one final activity.
    Failed,
    /// Completes, then the user asks for more: one final per round (2).
    FollowUp,
    /// Never finishes; the user stops it: one final.
    Stop,
}

impl Kind {
    pub fn pick(roll: u32) -> Kind {
        match roll % 10 {
            0..=3 => Kind::Pr,
            4..=5 => Kind::Failed,
            6..=7 => Kind::FollowUp,
            _ => Kind::Stop,
        }
    }

    pub fn description(self, run_secs: u32) -> String {
        match self {
            Kind::Pr => {
                format!("Add the endpoint. [sim outcome=COMPLETE prs=1 duration={run_secs}s]")
            }
            Kind::Failed => format!("Fix the flake. [sim outcome=FAILED duration={run_secs}s]"),
            Kind::FollowUp => {
                format!("Write the docs. [sim outcome=COMPLETE duration={run_secs}s]")
            }
            Kind::Stop => "Refactor everything. [sim never_finish]".into(),
        }
    }

    pub fn rounds(self) -> usize {
        match self {
            Kind::FollowUp => 2,
            _ => 1,
        }
    }
}

/// One delegated task and what the driver has done to it.
#[derive(Debug)]
pub struct Planned {
    pub kind: Kind,
    pub session: String,
    pub follow_up_sent: bool,
    pub stop_sent: bool,
    pub delegated_at: Instant,
}

/// Final activities (`response` / `error`) of a session.
pub fn finals(view: &SessionView) -> usize {
    view.activities
        .iter()
        .filter(|a| matches!(a.kind(), "response" | "error"))
        .count()
}

/// Runs the session's user actions that are due (the follow-up after the
/// first answer, the stop once the run exists). Returns whether the task has
/// all the final activities it should end with.
pub fn drive(world: &World, task: &mut Planned, runs_by_session: &HashMap<String, usize>) -> bool {
    let view = world.session(&task.session);
    let done = finals(&view);
    match task.kind {
        Kind::FollowUp if done >= 1 && !task.follow_up_sent => {
            world
                .linear
                .control()
                .prompt(
                    &task.session,
                    "Also cover the error cases. [sim outcome=COMPLETE duration=60s]",
                    false,
                )
                .expect("follow-up prompt");
            task.follow_up_sent = true;
            false
        }
        Kind::Stop
            if !task.stop_sent
                && (runs_by_session.contains_key(&task.session)
                    || task.delegated_at.elapsed() > Duration::from_secs(20)) =>
        {
            world
                .linear
                .control()
                .prompt(&task.session, "stop", true)
                .expect("stop signal");
            task.stop_sent = true;
            false
        }
        _ => {
            let sent_all = match task.kind {
                Kind::FollowUp => task.follow_up_sent,
                Kind::Stop => task.stop_sent,
                _ => true,
            };
            sent_all && done >= task.kind.rounds()
        }
    }
}

/// Runs per Linear session, from the marker metadata the worker sets.
pub fn runs_by_session(runs: &[RunRecord]) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for run in runs {
        if let Some(s) = run
            .metadata
            .as_ref()
            .and_then(|m| m.get("linear_session"))
            .and_then(Value::as_str)
        {
            *map.entry(s.to_string()).or_insert(0) += 1;
        }
    }
    map
}

/// Every exactly-once property, as a list of violations (empty = fine).
pub fn violations(world: &World, tasks: &[Planned]) -> Vec<String> {
    let mut problems = Vec::new();
    let runs = world.codegen.control().runs();
    let mut by_marker: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for run in &runs {
        match run
            .metadata
            .as_ref()
            .and_then(|m| m.get("cyrus_marker"))
            .and_then(Value::as_str)
        {
            Some(marker) => by_marker.entry(marker.into()).or_default().push(run.id),
            None => problems.push(format!("run {} has no cyrus_marker", run.id)),
        }
    }
    for (marker, ids) in &by_marker {
        if ids.len() != 1 {
            problems.push(format!("marker {marker} is on {} runs: {ids:?}", ids.len()));
        }
    }
    for task in tasks {
        let view = world.session(&task.session);
        let n = finals(&view);
        if n != task.kind.rounds() {
            problems.push(format!(
                "session {} ({:?}) has {n} final activities, expected {}:\n{}",
                task.session,
                task.kind,
                task.kind.rounds(),
                describe(&view)
            ));
        }
    }
    problems
}

pub fn describe(view: &SessionView) -> String {
    view.activities
        .iter()
        .map(|a| {
            format!(
                "  {} {:<11} {}",
                a.created_at.format("%H:%M:%S%.3f"),
                a.kind(),
                a.content
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .replace('\n', " ")
                    .chars()
                    .take(160)
                    .collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The largest number of creates in any window of Codegen's creation limit,
/// from the simulator's own creation timestamps (simulated time).
pub fn max_creates_per_window(runs: &[RunRecord]) -> usize {
    let mut times: Vec<u64> = runs.iter().map(|r| r.created_ms).collect();
    times.sort_unstable();
    let mut best = 0;
    let mut from = 0;
    for (i, t) in times.iter().enumerate() {
        while t - times[from] >= CODEGEN_CREATE_WINDOW_MS {
            from += 1;
        }
        best = best.max(i + 1 - from);
    }
    best
}
