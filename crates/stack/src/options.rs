//! What differs between stacks: where the store is, how the simulators
//! behave, the worker's limits, and the faults to start with.

use anyhow::Context as _;
use cyrus_sandbox::codegen::{Faults, SimOptions};
use cyrus_sandbox::linear::{Fault, LinearSimOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the worker's store lives.
#[derive(Clone, Debug, Default)]
pub enum StoreLocation {
    /// A fresh SQLite file in a temporary directory, removed with the stack.
    #[default]
    TempSqlite,
    /// This SQLite file (created if missing, kept afterwards).
    SqliteFile(PathBuf),
    /// Any store URL the worker accepts, e.g. `postgres://…`.
    Url(String),
}

impl StoreLocation {
    /// The store URL, and the temporary directory that must outlive its use.
    pub fn resolve(&self) -> anyhow::Result<(String, Option<tempfile::TempDir>)> {
        match self {
            StoreLocation::TempSqlite => {
                let dir = tempfile::tempdir()
                    .context("creating a temporary directory for the SQLite store")?;
                Ok((sqlite_url(&dir.path().join("cyrus.db")), Some(dir)))
            }
            StoreLocation::SqliteFile(path) => Ok((sqlite_url(path), None)),
            StoreLocation::Url(url) => Ok((url.clone(), None)),
        }
    }
}

impl StoreLocation {
    /// A new, empty PostgreSQL database on the test server named by
    /// `CYRUS_TEST_POSTGRES_URL`, for a test of its own. `None` — with a
    /// loud notice — when the variable is unset, except under CI
    /// (`CI=true`), where the PostgreSQL tests must run.
    pub async fn fresh_postgres() -> anyhow::Result<Option<StoreLocation>> {
        use sqlx::Connection as _;
        let admin = match std::env::var("CYRUS_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                anyhow::bail!(
                    "CYRUS_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL tests"
                )
            }
            _ => {
                eprintln!(
                    "SKIPPED: CYRUS_TEST_POSTGRES_URL is not set; a PostgreSQL test did not run"
                );
                return Ok(None);
            }
        };
        let name = format!("cyrus_stack_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .context("connecting to CYRUS_TEST_POSTGRES_URL")?;
        // `name` is generated above from a UUID: nothing to inject.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .context("creating a test database")?;
        let mut url = url::Url::parse(&admin).context("CYRUS_TEST_POSTGRES_URL is not a URL")?;
        url.set_path(&format!("/{name}"));
        Ok(Some(StoreLocation::Url(url.to_string())))
    }
}

/// The store URL of a SQLite file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// How the worker authenticates to the Linear simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinearAuth {
    /// A static token and agent user id in the configuration (what a script
    /// or a simulator run uses).
    #[default]
    StaticToken,
    /// The OAuth app only (`linear.oauth`): no token or id in the
    /// configuration; workspaces are connected with
    /// [`crate::Stack::connect_workspace`], as `cyrus linear connect` does.
    OAuth,
}

/// What a stack chooses; `Default` is the demo's setting. The fields are
/// public so a caller states exactly what differs, e.g.
/// `StackOptions { max_concurrent_runs: 20, ..StackOptions::default().time_scale(30.0) }`.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub store: StoreLocation,
    /// The Codegen simulator: its clock (`time_scale`, simulated seconds per
    /// real second), rate limits, run allowance.
    pub codegen: SimOptions,
    /// The Linear simulator: rate limits, webhook retries.
    pub linear: LinearSimOptions,
    pub max_cost_per_task: f64,
    pub max_cost_per_day: f64,
    pub max_concurrent_runs: u32,
    /// Deep-merged into the generated configuration JSON before it is parsed.
    pub config_patch: Option<Value>,
    /// Codegen faults set once its simulator is up (default: none).
    pub codegen_faults: Faults,
    /// Linear faults queued once its simulator is up.
    pub linear_faults: Vec<Fault>,
    pub linear_auth: LinearAuth,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            store: StoreLocation::TempSqlite,
            codegen: SimOptions::default(),
            linear: LinearSimOptions {
                // Webhook retries compressed like Linear's 1 min / 1 h / 6 h.
                webhook_retry_delays: vec![
                    Duration::from_millis(500),
                    Duration::from_secs(2),
                    Duration::from_secs(5),
                ],
                ..LinearSimOptions::default()
            },
            max_cost_per_task: 2.0,
            max_cost_per_day: 100.0,
            max_concurrent_runs: 10,
            config_patch: None,
            codegen_faults: Faults::default(),
            linear_faults: Vec::new(),
            linear_auth: LinearAuth::StaticToken,
        }
    }
}

impl StackOptions {
    /// Simulated Codegen seconds per real second.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.codegen.time_scale = scale;
        self
    }

    /// Connects Linear through the OAuth app instead of a static token.
    pub fn oauth(mut self) -> Self {
        self.linear_auth = LinearAuth::OAuth;
        self
    }

    pub fn store(mut self, store: StoreLocation) -> Self {
        self.store = store;
        self
    }

    /// Merges `patch` into the configuration patch (later patches win).
    pub fn patch(mut self, patch: Value) -> Self {
        match &mut self.config_patch {
            Some(existing) => crate::merge(existing, &patch),
            None => self.config_patch = Some(patch),
        }
        self
    }
}
