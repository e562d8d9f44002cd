//! Integration tests that run the real `cyrus` binary.

mod completions;
mod config_check;
mod support;
