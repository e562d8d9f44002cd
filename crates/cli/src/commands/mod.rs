//! One module per subcommand.

pub mod completions;
pub mod config;
pub mod sandbox;
