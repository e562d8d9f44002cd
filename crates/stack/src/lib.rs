//! The whole Cyrus loop on one machine: both simulators, a store and a worker
//! on free local ports, wired together. `cyrus demo`, the benchmarks and the
//! end-to-end tests all build their stacks here, so the production worker
//! (`cyrus-edge-worker`) does not link the simulators.
//!
//! - [`StackOptions`]: what a stack may choose (store, simulator options and
//!   limits, the worker's budgets, a configuration patch, faults).
//! - [`Simulators`] and [`config_for`]: the simulators and a worker
//!   configuration pointing at them, for callers that run the worker
//!   themselves (a real `cyrus start` process).
//! - [`Stack`]: simulators, store and an in-process worker.
//! - [`demo`]: the demo's scenarios.

mod config;
pub mod demo;
mod options;
mod simulators;
mod stack;

pub use config::{config_for, merge};
pub use options::{LinearAuth, StackOptions, StoreLocation, sqlite_url};
pub use simulators::Simulators;
pub use stack::{Stack, start_worker, start_worker_with_keys};
