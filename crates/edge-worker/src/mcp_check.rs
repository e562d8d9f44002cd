//! Whether the MCP servers a repository names (`mcpServers`) are usable at
//! Codegen right now, for the routing thought. Codegen's catalog (its MCP
//! providers and the organization's integrations) is cached for a few
//! minutes and refreshed by one task at a time, so tasks do not each call
//! Codegen. The check only informs: a failed or slow lookup says nothing
//! rather than delay or fail the task.

use crate::context::Ctx;
use cyrus_codegen_executor::{McpAvailability, McpCatalog};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a read catalog is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(300);
/// After a failed read, how long to go without the check before trying
/// again (so an outage does not add a lookup to every task).
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(60);
/// The most a lookup may add to routing.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The last catalog read (or the failure to read one) and when.
#[derive(Default)]
pub(crate) struct McpCache {
    slot: tokio::sync::Mutex<Option<(Instant, Option<Arc<McpCatalog>>)>>,
}

impl McpCache {
    /// The catalog, read through the Codegen client when the cached one is
    /// stale; `None` when Codegen could not be read recently.
    async fn catalog(&self, ctx: &Ctx) -> Option<Arc<McpCatalog>> {
        // Held across the read: concurrent tasks wait for one refresh
        // instead of each starting their own.
        let mut slot = self.slot.lock().await;
        if let Some((at, cached)) = slot.as_ref() {
            let ttl = if cached.is_some() {
                FRESH_FOR
            } else {
                RETRY_FAILED_AFTER
            };
            if at.elapsed() < ttl {
                return cached.clone();
            }
        }
        let read = match tokio::time::timeout(LOOKUP_TIMEOUT, ctx.codegen.mcp_catalog()).await {
            Ok(Ok(catalog)) => Some(Arc::new(catalog)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read Codegen's MCP providers and integrations; MCP servers go unchecked for now");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "Codegen's MCP providers and integrations took too long to read; MCP servers go unchecked for now"
                );
                None
            }
        };
        *slot = Some((Instant::now(), read.clone()));
        read
    }
}

/// The MCP servers `repository_id` names that a run could not use, with
/// why; empty when all are usable, none are named, or Codegen could not be
/// read.
pub(crate) async fn missing_for(ctx: &Ctx, repository_id: &str) -> Vec<(String, McpAvailability)> {
    let Some(repo) = ctx.config.repository(repository_id) else {
        return Vec::new();
    };
    if repo.mcp_servers.is_empty() {
        return Vec::new();
    }
    match ctx.cache.mcp.catalog(ctx).await {
        Some(catalog) => catalog.unusable(&repo.mcp_servers),
        None => Vec::new(),
    }
}

/// The sentence for the routing thought, when something is missing.
pub(crate) async fn note_for(ctx: &Ctx, repository_id: &str) -> Option<String> {
    let missing = missing_for(ctx, repository_id).await;
    if missing.is_empty() {
        return None;
    }
    let list = missing
        .iter()
        .map(|(server, a)| format!("{server} ({})", a.describe()))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "This repository expects MCP servers Codegen cannot provide right now: {list}. The run goes ahead without them; an admin can connect them in Codegen's integration settings (`cyrus doctor` says how)."
    ))
}
