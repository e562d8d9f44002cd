//! What every part of the worker shares, grouped by what its users need:
//! configuration and the store, the upstream clients, wake-up signals, the
//! run tracker's handle, and in-memory caches (optimisations only: the
//! store is the truth). The lease identity is private: it is fixed for the
//! life of the process, and every lease this process takes is under one of
//! [`Ctx::lease_owners`].

use cyrus_codegen_executor::{AgentRun, CodegenClient, RunStatus};
use cyrus_core::config::Config;
use cyrus_linear::ActivityPolicy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::alert_sink::AlertSink;
pub use crate::linear_hub::LinearHub;

/// Cheap to clone; every loop and handler holds one.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub store: cyrus_store::Store,
    pub codegen: CodegenClient,
    pub linear: LinearHub,
    pub(crate) alerts: AlertSink,
    pub(crate) shutdown: CancellationToken,
    pub(crate) wake: Wake,
    pub(crate) tracker: TrackerHandle,
    pub(crate) cache: Caches,
    /// Fetches issue images under the configured rules (one client).
    pub(crate) images: cyrus_linear::uploads::ImageFetcher,
    /// Serialises Codegen creates on this replica so runs start in claim
    /// order (priority, then FIFO).
    pub(crate) start_lane: Arc<tokio::sync::Mutex<()>>,
    /// Accepts new sessions of one issue one at a time (`issue_gate`).
    pub(crate) issue_gate: Arc<crate::issue_gate::IssueGate>,
    /// Webhooks arriving, which deferrable work yields to (`intake_first`).
    pub(crate) intake_load: Arc<crate::intake_first::IntakeLoad>,
    /// This process's identity for leases (unique per start).
    owner: String,
    /// Set once the HTTP listener and loops are up.
    started_at_ms: i64,
}

/// Wake-up signals: each loop sleeps on its own until there is work.
#[derive(Clone, Default)]
pub(crate) struct Wake {
    /// A task became due.
    pub scheduler: Arc<Notify>,
    /// Something was enqueued for Linear.
    pub outbox: Arc<Notify>,
    /// A webhook was stored.
    pub intake: Arc<Notify>,
}

/// The newest view of each followed run (filled by the tracker and by
/// create/resume answers), the progress-posting state per task (rate
/// shaping only; rebuilt after a restart) and Codegen's MCP catalog.
#[derive(Clone, Default)]
pub(crate) struct Caches {
    pub runs_seen: Arc<Mutex<HashMap<i64, AgentRun>>>,
    pub policies: Arc<Mutex<HashMap<String, ActivityPolicy>>>,
    /// Codegen's MCP providers and integrations (`mcp_check`).
    pub mcp: Arc<crate::mcp_check::McpCache>,
    /// People as the access policy last saw them, by (workspace, user id),
    /// with when they were read.
    pub people: Arc<Mutex<HashMap<(String, String), SeenPerson>>>,
}

/// A person as the access policy read them, and when.
pub(crate) type SeenPerson = (std::time::Instant, cyrus_core::access::Person);

/// What the run tracker is told.
#[derive(Clone, Debug)]
pub(crate) enum TrackerCommand {
    /// Follow a run; `known` is its status as last read (a create or resume
    /// answer), so an unchanged first poll wakes nobody.
    Track {
        run_id: i64,
        task_id: String,
        known: Option<RunStatus>,
    },
    Untrack {
        run_id: i64,
    },
}

/// Sends commands to the run tracker; a tracker that has stopped (shutdown)
/// ignores them.
#[derive(Clone)]
pub(crate) struct TrackerHandle(mpsc::UnboundedSender<TrackerCommand>);

impl TrackerHandle {
    pub fn channel() -> (TrackerHandle, mpsc::UnboundedReceiver<TrackerCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (TrackerHandle(tx), rx)
    }

    pub fn track(&self, run_id: i64, task_id: &str, known: RunStatus) {
        let _ = self.0.send(TrackerCommand::Track {
            run_id,
            task_id: task_id.to_string(),
            known: Some(known),
        });
    }

    pub fn untrack(&self, run_id: i64) {
        let _ = self.0.send(TrackerCommand::Untrack { run_id });
    }
}

/// The parts a [`Ctx`] is built from (see `worker.rs`).
pub(crate) struct Parts {
    pub config: Arc<Config>,
    pub store: cyrus_store::Store,
    pub codegen: CodegenClient,
    pub linear: LinearHub,
    pub alerts: AlertSink,
    pub tracker: TrackerHandle,
    pub images: cyrus_linear::uploads::ImageFetcher,
    pub owner: String,
}

impl Ctx {
    pub(crate) fn new(parts: Parts) -> Ctx {
        Ctx {
            config: parts.config,
            store: parts.store,
            codegen: parts.codegen,
            linear: parts.linear,
            alerts: parts.alerts,
            shutdown: CancellationToken::new(),
            wake: Wake::default(),
            tracker: parts.tracker,
            cache: Caches::default(),
            images: parts.images,
            start_lane: Default::default(),
            issue_gate: Default::default(),
            intake_load: Default::default(),
            owner: parts.owner,
            started_at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    /// The lease owner of this process's task claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn started_at_ms(&self) -> i64 {
        self.started_at_ms
    }

    /// The lease owners this process claims under: tasks, webhook
    /// deliveries, outbox items (one name each, so a shutdown releases all).
    pub fn lease_owners(&self) -> [String; 3] {
        [self.owner.clone(), self.intake_owner(), self.outbox_owner()]
    }

    pub fn intake_owner(&self) -> String {
        format!("{}-intake", self.owner)
    }

    pub fn outbox_owner(&self) -> String {
        format!("{}-outbox", self.owner)
    }

    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// The time (Unix ms) before which rows kept `days` days are pruned.
    pub(crate) fn retention_cutoff_ms(&self, days: u32) -> i64 {
        self.now_ms() - i64::from(days) * 86_400_000
    }

    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive()
    }
}
