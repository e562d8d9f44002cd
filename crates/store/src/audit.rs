//! The audit log: decisions with who and why, kept for a configurable
//! number of days.

use sqlx::Row;

use crate::connect::{on_pool, on_read_pool};
use crate::{AuditEntry, AuditFilter, AuditKind, Insert, Result, Store, StoreError};

impl Store {
    /// Records a decision once per `dedupe_key`.
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<Insert> {
        let detail = entry.detail.as_ref().map(|d| d.to_string());
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (dedupe_key, at, kind, organization_id, issue_id,
                 issue_identifier, task_id, actor, reason, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(&entry.dedupe_key)
        .bind(entry.at)
        .bind(entry.kind.as_str())
        .bind(&entry.organization_id)
        .bind(&entry.issue_id)
        .bind(&entry.issue_identifier)
        .bind(&entry.task_id)
        .bind(&entry.actor)
        .bind(&entry.reason)
        .bind(detail)
        .execute(p)
        .await?
        .rows_affected());
        Ok(if n == 1 {
            Insert::Inserted
        } else {
            Insert::Duplicate
        })
    }

    /// Matching rows, oldest first (the newest `limit` of them).
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = filter.limit.unwrap_or(1000).max(1);
        let rows = on_read_pool!(self, p => sqlx::query(
            "SELECT dedupe_key, at, kind, organization_id, issue_id, issue_identifier, task_id,
                    actor, reason, detail
             FROM audit_log
             WHERE ($1 IS NULL OR at >= $1)
               AND ($2 IS NULL OR issue_identifier = $2 OR issue_id = $2)
               AND ($3 IS NULL OR kind = $3)
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(filter.since)
        .bind(&filter.issue)
        .bind(filter.kind.map(AuditKind::as_str))
        .bind(limit)
        .fetch_all(p)
        .await?
        .into_iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let detail: Option<String> = r.try_get("detail")?;
            Ok::<_, StoreError>(AuditEntry {
                dedupe_key: r.try_get("dedupe_key")?,
                at: r.try_get("at")?,
                kind: AuditKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown audit kind {kind:?}")))?,
                organization_id: r.try_get("organization_id")?,
                issue_id: r.try_get("issue_id")?,
                issue_identifier: r.try_get("issue_identifier")?,
                task_id: r.try_get("task_id")?,
                actor: r.try_get("actor")?,
                reason: r.try_get("reason")?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })
        .collect::<Result<Vec<_>>>()?);
        let mut rows = rows;
        rows.reverse();
        Ok(rows)
    }

    /// Deletes rows older than `before`; returns how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(p)
            .await?
            .rows_affected()),
        )
    }
}
