//! The only crate that knows Codegen's HTTP API.
//!
//! - [`CodegenClient`]: typed calls with classified errors ([`CodegenError`]),
//!   bounded retries ([`RetryPolicy`]) and our own rate limiting
//!   ([`rate::RatePermit`], default [`rate::GovernorPermits`]).
//! - [`mcp::McpCatalog`]: what Codegen offers as MCP servers and whether
//!   the organization's integration for each is active.
//! - [`poller::RunTracker`]: one poller for every active run, preferring list
//!   pages over per-run reads.
//! - [`progress::LogFollower`]: incremental logs → typed progress events and
//!   a running cost estimate.

pub mod client;
pub mod error;
pub mod mcp;
pub mod model;
pub mod poller;
pub mod progress;
pub mod rate;
pub mod retry;
pub mod status;
pub mod timestamp;

pub use client::{ClientConfig, CodegenClient, DEFAULT_BASE_URL};
pub use error::CodegenError;
pub use mcp::{McpAvailability, McpCatalog};
pub use model::{
    AgentRun, AgentType, CreateRun, ListRuns, LogEntry, Page, PageRequest, PullRequest, ResumeRun,
    RunLogs,
};
pub use rate::{EndpointClass, Headroom, RateLimit, RateLimits, RatePermit};
pub use retry::RetryPolicy;
pub use status::{RunStatus, StatusClass};
