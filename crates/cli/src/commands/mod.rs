//! One module per subcommand.

pub mod audit;
pub mod completions;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod experiments;
pub mod linear;
pub mod man;
pub mod mcp;
pub mod migrate;
pub mod sandbox;
pub mod setup;
pub mod start;
pub mod stats;
pub mod status;
