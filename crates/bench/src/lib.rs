//! `cyrus-bench`: Cyrus's performance and reliability figures, measured
//! against the sandbox simulators on 127.0.0.1 (see `BENCHMARKS.md`).
//!
//! - [`rig`]: the stack's simulators + a worker (in-process or a `cyrus
//!   start` child).
//! - [`scenarios`]: one module per measured figure.
//! - [`report`] and [`stats`]: figures with goals, percentiles, the table.

pub mod report;
pub mod rig;
pub mod scenarios;
pub mod stats;
