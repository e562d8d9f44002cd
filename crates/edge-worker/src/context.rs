//! What every part of the worker shares: configuration, the store, the
//! upstream clients, wake-up signals and the shutdown token.

use cyrus_codegen_executor::{AgentRun, CodegenClient};
use cyrus_core::config::Config;
use cyrus_linear::ActivityPolicy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::alerts::AlertSink;
pub use crate::linear_hub::LinearHub;

/// Cheap to clone; every loop and handler holds one.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub store: cyrus_store::Store,
    pub codegen: CodegenClient,
    pub linear: LinearHub,
    /// This process's identity for leases (unique per start).
    pub owner: String,
    pub alerts: AlertSink,
    pub shutdown: CancellationToken,
    /// Wakes the scheduler (a task became due).
    pub scheduler_wake: Arc<Notify>,
    /// Wakes the outbox sender (something was enqueued).
    pub outbox_wake: Arc<Notify>,
    /// Wakes the delivery processor (a webhook was stored).
    pub intake_wake: Arc<Notify>,
    /// Commands to the run tracker (follow / forget a Codegen run).
    pub tracker: mpsc::UnboundedSender<crate::tracker::Command>,
    /// The newest view of each followed run, filled by the tracker; an
    /// optimisation only (the store is the truth).
    pub runs_seen: Arc<Mutex<HashMap<i64, AgentRun>>>,
    /// Progress-posting state per task (rate shaping only; rebuilt after a
    /// restart).
    pub policies: Arc<Mutex<HashMap<String, ActivityPolicy>>>,
    /// Serialises Codegen creates on this replica so runs start in claim
    /// order (priority, then FIFO).
    pub start_lane: Arc<tokio::sync::Mutex<()>>,
    /// Set once the HTTP listener and loops are up.
    pub started_at_ms: i64,
}

impl Ctx {
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

    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive()
    }
}
