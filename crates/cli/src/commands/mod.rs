//! One module per subcommand.

pub mod completions;
pub mod config;
pub mod sandbox;
pub mod doctor;
pub mod man;
pub mod migrate;
pub mod setup;
pub mod stats;
pub mod status;
