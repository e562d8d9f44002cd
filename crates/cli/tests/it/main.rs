//! Integration tests that run the real `cyrus` binary.

mod audit;
mod completions;
mod config_check;
mod doctor;
mod experiments;
mod linear_connect;
mod linear_install;
mod mcp;
mod migrate;
mod operator;
mod setup;
mod setup_interactive;
mod status_stats;
mod support;
