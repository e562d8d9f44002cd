//! Writing the audit log: one row per decision, with who and why. A row's
//! key names the decision (the task and what was decided), so a step that
//! is retried after a crash records it once. Pruned by the reconciliation
//! loop after `audit.retentionDays`.

use crate::context::Ctx;
use cyrus_store::{AuditEntry, AuditKind, StoreError, Task};
use serde_json::Value;

/// A decision about a task. `key` tells this decision apart from the
/// task's others of the same kind (a run attempt, a follow-up id); `actor`
/// is who it is about or by.
pub(crate) async fn task(
    ctx: &Ctx,
    task: &Task,
    kind: AuditKind,
    key: &str,
    actor: Option<&str>,
    reason: &str,
    detail: Option<Value>,
) -> Result<(), StoreError> {
    let entry = AuditEntry {
        dedupe_key: format!("{kind}:{}:{key}", task.id),
        at: ctx.now_ms(),
        kind,
        organization_id: Some(task.organization_id.clone()),
        issue_id: Some(task.issue_id.clone()),
        issue_identifier: Some(task.issue_identifier.clone()).filter(|i| !i.is_empty()),
        task_id: Some(task.id.clone()),
        actor: actor.map(str::to_string),
        reason: reason.to_string(),
        detail,
    };
    record(ctx, &entry).await
}

/// Any decision (one not tied to a task: triage, reconnects).
pub(crate) async fn record(ctx: &Ctx, entry: &AuditEntry) -> Result<(), StoreError> {
    ctx.store.record_audit(entry).await?;
    metrics::counter!("cyrus_audit_decisions_total", "kind" => entry.kind.as_str()).increment(1);
    Ok(())
}

/// Deletes rows past the retention; returns how many.
pub(crate) async fn prune(ctx: &Ctx) -> Result<u64, StoreError> {
    let before = ctx.retention_cutoff_ms(ctx.config.audit.retention_days);
    ctx.store.prune_audit(before).await
}
