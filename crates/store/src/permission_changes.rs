//! `PermissionChange` webhooks (`teamAccessChanged`): which teams an
//! installation gained or lost, recorded to be shown.

use sqlx::types::Json;

use crate::connect::{on_pool, on_read_pool};
use crate::rows::PermissionChangeRow;
use crate::{Insert, PermissionChange, Result, Store};

impl Store {
    /// Records a permission change once per `dedupe_key` (a redelivered or
    /// reprocessed webhook adds nothing).
    pub async fn record_permission_change(&self, change: &PermissionChange) -> Result<Insert> {
        let n = on_pool!(self, p => sqlx::query(
            "INSERT INTO permission_changes (dedupe_key, workspace_id, changed_at, added_team_ids,
                 removed_team_ids)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(&change.dedupe_key)
        .bind(&change.workspace_id)
        .bind(change.changed_at)
        .bind(Json(&change.added_team_ids))
        .bind(Json(&change.removed_team_ids))
        .execute(p)
        .await?
        .rows_affected());
        Ok(if n == 1 {
            Insert::Inserted
        } else {
            Insert::Duplicate
        })
    }

    /// The newest `limit` permission changes, of one workspace or (with
    /// `None`) of all, newest first.
    pub async fn list_permission_changes(
        &self,
        workspace_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PermissionChange>> {
        let rows: Vec<PermissionChangeRow> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT dedupe_key, workspace_id, changed_at, added_team_ids, removed_team_ids
             FROM permission_changes WHERE ($1 IS NULL OR workspace_id = $1)
             ORDER BY changed_at DESC, id DESC LIMIT $2",
        )
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(PermissionChange::from).collect())
    }
}
