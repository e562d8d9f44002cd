//! The edge worker: Linear's webhooks in, Codegen runs followed, answers
//! back into Linear — durably. `ARCHITECTURE.md` has the map and the state
//! machine.
//!
//! The public surface is small on purpose:
//! - [`Worker`]: start a worker on a store and a listener, stop it
//!   gracefully; [`Worker::context`] gives tests the shared [`Ctx`].
//! - [`experiment_report`]: an experiment's report from the store (used by
//!   `cyrus experiments report` and the dashboard).
//! - [`install`]: connecting a Linear workspace (used by
//!   `cyrus linear connect` and the worker's `/oauth/callback`).
//! - What tests drive directly: [`alert_watch::evaluate`],
//!   [`reconcile::pass`], [`http::serve::HEADER_READ_TIMEOUT`] and the run
//!   marker key [`MARKER_KEY`].
//!
//! Everything else is private to the crate: `http` (webhook intake,
//! health, metrics, the OAuth callback), `intake` (stored deliveries → task
//! changes), `scheduler` and `steps` (the work of each task state),
//! `tracker` (one poller for every active run), `outbox` (durable delivery
//! of every write to Linear), `linear_hub` and `installation_tokens` (the
//! workspaces served and their tokens).

mod access;
mod alert_sink;
pub mod alert_watch;
mod alerts;
mod audit;
mod context;
mod dashboard;
pub mod experiment_report;
mod gauges;
pub mod http;
pub mod install;
mod installation_tokens;
mod intake;
mod intake_first;
mod issue_gate;
mod linear_hub;
mod mcp_check;
mod orchestration;
mod outbox;
pub mod reconcile;
mod requests;
mod scheduler;
mod shared_rate;
mod steps;
mod task_data;
mod telemetry;
mod tracker;
mod triage;
mod worker;

pub use context::{Ctx, LinearHub};
pub use steps::runs::MARKER_KEY;
pub use worker::Worker;
