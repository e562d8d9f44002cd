//! The reconciliation pass: catches what webhooks missed. Linear delivers at
//! least once but not always (an outage longer than its retries, a
//! misconfigured webhook), so every few minutes each live task's issue is
//! read once and compared with what the task assumes: still delegated to us,
//! not closed, not deleted. A mismatch becomes the same stop request the
//! webhook would have made. It costs one Linear read per live task per pass,
//! with a query of plain fields (`IssueStatus`, a few complexity points):
//! the full `IssueForAgent` costs hundreds, which over 1 000 live tasks and
//! six passes an hour would be Linear's whole hourly complexity budget.
//! The same loop prunes the audit log and processed deliveries, and runs
//! triage's catch-up.

use crate::context::Ctx;
use cyrus_core::lifecycle::TaskState;
use cyrus_linear::LinearError;
use std::time::Duration;

/// Time between passes; the first runs one interval after start-up.
pub const INTERVAL: Duration = Duration::from_secs(10 * 60);

pub async fn run(ctx: Ctx, interval: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        if let Err(err) = pass(&ctx).await {
            tracing::warn!(error = %err, "reconciliation pass failed");
        }
        if let Err(err) = triage_pass(&ctx).await {
            tracing::warn!(error = %err, "triage catch-up failed");
        }
        match crate::audit::prune(&ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "audit log: pruned rows past the retention"),
            Err(err) => tracing::warn!(error = %err, "audit log: pruning failed"),
        }
        match crate::intake::prune(&ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                rows = n,
                "deliveries: pruned processed ones past the retention"
            ),
            Err(err) => tracing::warn!(error = %err, "deliveries: pruning failed"),
        }
    }
}

/// One pass over the live tasks. Returns how many stops it requested.
pub async fn pass(ctx: &Ctx) -> Result<usize, cyrus_store::StoreError> {
    let filter = cyrus_store::TaskFilter {
        active_only: true,
        ..Default::default()
    };
    let mut stopped = 0;
    for task in ctx.store.list_tasks(&filter).await? {
        let live = !task.state.is_settled() && task.state != TaskState::Received;
        if !live || task.cancel_requested_at.is_some() {
            continue;
        }
        let Some(linear) = ctx.linear.client(&task.organization_id) else {
            continue;
        };
        let agent = ctx.linear.app_user_id(&task.organization_id);
        let reason = match linear.issue_status(&task.issue_id).await {
            Ok(issue) => {
                let _ = ctx.store.add_api_calls(&task.id, 1).await;
                let closed = issue.state.as_ref().is_some_and(|s| s.is_terminal());
                let undelegated = match (&agent, &issue.delegate) {
                    (Some(agent), Some(delegate)) => &delegate.id != agent,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if closed {
                    Some("The issue was closed, so I've stopped working on it.")
                } else if undelegated {
                    Some("I'm no longer delegated on this issue, so I've stopped working on it.")
                } else {
                    None
                }
            }
            Err(LinearError::Permanent { message, .. })
                if message.to_ascii_lowercase().contains("not found") =>
            {
                Some("The issue was deleted, so I've stopped working on it.")
            }
            Err(err) => {
                tracing::debug!(task = %task.id, error = %err, "reconcile: issue unavailable; trying next pass");
                None
            }
        };
        if let Some(reason) = reason {
            tracing::info!(task = %task.id, issue = %task.issue_identifier, "reconcile: {reason}");
            crate::requests::request_stop(
                ctx,
                &task,
                &format!("stop:reconcile:{}", task.id),
                reason,
                "cyrus",
            )
            .await?;
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Proactive triage's catch-up for missed `Issue` webhooks (see
/// `triage::catch_up`). Returns how many recent issues it looked at.
pub async fn triage_pass(ctx: &Ctx) -> Result<usize, String> {
    crate::triage::catch_up(ctx)
        .await
        .map_err(|e| e.to_string())
}
