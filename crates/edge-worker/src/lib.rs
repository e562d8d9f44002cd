//! The edge worker: Linear's webhooks in, Codegen runs followed, answers
//! back into Linear — durably. See `ARCHITECTURE.md` for the state machine.
//!
//! - [`http`]: webhook intake (verify → store → 200), health, metrics,
//!   dashboard.
//! - [`intake`]: stored deliveries → task changes.
//! - [`scheduler`] and [`steps`]: the work of each task state.
//! - [`tracker`]: one poller for every active run.
//! - [`outbox`]: durable delivery of every write to Linear.

pub mod alert_watch;
pub mod alerts;
pub mod budget;
pub mod context;
pub mod dashboard;
mod gauges;
pub mod http;
pub mod install;
mod installation_tokens;
pub mod intake;
mod linear_hub;
pub mod outbox;
pub mod reconcile;
mod requests;
mod runs;
mod scheduler;
pub mod shared_rate;
mod steps;
pub mod task_data;
pub mod telemetry;
pub mod tracker;
mod worker;

pub use context::Ctx;
pub use runs::MARKER_KEY;
pub use worker::Worker;
