//! Cyrus's pure domain: configuration, routing, prompt building, the cost model
//! and the task state machine. No I/O and no async live here, so every rule in
//! this crate is testable as a plain function.

pub mod access;
pub mod config;
pub mod cost;
pub mod experiments;
pub mod lifecycle;
pub mod money;
pub mod prompt;
pub mod routing;
pub mod task_type;

pub use money::MicroDollars;
pub use task_type::TaskType;
