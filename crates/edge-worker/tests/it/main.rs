//! End-to-end tests: a real worker over real HTTP against both simulators.
//! Each test starts its own stack (ports, SQLite file, simulators).

mod access;
mod alerts;
mod browser;
mod dashboard;
mod demo;
mod experiments;
mod faults;
mod harness;
mod installations;
mod lifecycle;
mod mcp;
mod metrics;
mod state_props;
mod triage;
mod webhooks;
