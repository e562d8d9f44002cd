//! Integration tests that run the real `cyrus` binary.

mod completions;
mod config_check;
mod doctor;
mod migrate;
mod operator;
mod setup;
mod status_stats;
mod support;
