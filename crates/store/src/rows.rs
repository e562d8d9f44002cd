//! Row shapes as stored, and their conversion into the public records. The
//! derives are generic over the backend, so one struct decodes both.

use cyrus_core::{MicroDollars, TaskType};
use serde_json::Value;
use sqlx::types::Json;

use crate::{
    Activity, Delivery, FollowUp, FollowUpKind, InstallationInfo, PermissionChange, Result,
    RunIntent, StoreError, Task,
};

/// Claim order: Linear priority 1 (urgent) … 4 (low) first, 0 (none) last.
pub(crate) fn priority_rank(priority: i64) -> i64 {
    if (1..=4).contains(&priority) {
        priority
    } else {
        5
    }
}

pub(crate) fn parse_task_type(raw: Option<String>) -> Result<Option<TaskType>> {
    raw.map(|t| t.parse::<TaskType>().map_err(StoreError::Corrupt))
        .transpose()
}

/// Milliseconds of a lease, saturating (a lease is never negative).
pub(crate) fn lease_ms(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4)
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: String,
    agent_session_id: String,
    issue_id: String,
    issue_identifier: String,
    organization_id: String,
    state: String,
    step: Option<String>,
    detail: Option<String>,
    priority: i64,
    created_at: i64,
    run_at: i64,
    attempts: i64,
    max_attempts: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    codegen_run_id: Option<i64>,
    repository_id: Option<i64>,
    task_type: Option<String>,
    model: Option<String>,
    estimated_cost_micros: Option<i64>,
    last_error: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    outcome: Option<String>,
    cancel_requested_at: Option<i64>,
    api_calls: i64,
    data: Json<Value>,
    version: i64,
}

impl TryFrom<TaskRow> for Task {
    type Error = StoreError;
    fn try_from(r: TaskRow) -> Result<Task> {
        Ok(Task {
            id: r.id,
            agent_session_id: r.agent_session_id,
            issue_id: r.issue_id,
            issue_identifier: r.issue_identifier,
            organization_id: r.organization_id,
            state: r.state.parse().map_err(StoreError::Corrupt)?,
            step: r
                .step
                .map(|s| s.parse().map_err(StoreError::Corrupt))
                .transpose()?,
            detail: r.detail,
            priority: r.priority,
            created_at: r.created_at,
            run_at: r.run_at,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
            codegen_run_id: r.codegen_run_id,
            repository_id: r.repository_id,
            task_type: parse_task_type(r.task_type)?,
            model: r.model,
            estimated_cost: r.estimated_cost_micros.map(MicroDollars),
            last_error: r.last_error,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            cancel_requested_at: r.cancel_requested_at,
            api_calls: r.api_calls,
            data: r.data.0,
            version: r.version,
        })
    }
}

pub(crate) fn tasks(rows: Vec<TaskRow>) -> Result<Vec<Task>> {
    rows.into_iter().map(Task::try_from).collect()
}

/// A delivery's row; its body is in `delivery_bodies` (SQLite, by `seq`)
/// or `delivery_payloads` (PostgreSQL, by id).
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    pub(crate) delivery_id: String,
    organization_id: String,
    event_type: String,
    action: Option<String>,
    received_at: i64,
    attempts: i64,
    processed_at: Option<i64>,
    outcome: Option<String>,
}

impl DeliveryRow {
    pub(crate) fn with_payload(self, payload: Value) -> Delivery {
        let r = self;
        Delivery {
            delivery_id: r.delivery_id,
            organization_id: r.organization_id,
            event_type: r.event_type,
            action: r.action,
            payload,
            received_at: r.received_at,
            attempts: r.attempts,
            processed_at: r.processed_at,
            outcome: r.outcome,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: i64,
    task_id: String,
    attempt: i64,
    marker: String,
    codegen_run_id: Option<i64>,
    status: String,
    created_at: i64,
    finished_at: Option<i64>,
    pr_urls: Json<Vec<String>>,
}

impl From<RunRow> for RunIntent {
    fn from(r: RunRow) -> RunIntent {
        RunIntent {
            id: r.id,
            task_id: r.task_id,
            attempt: r.attempt,
            marker: r.marker,
            codegen_run_id: r.codegen_run_id,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
            pr_urls: r.pr_urls.0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ActivityRow {
    id: i64,
    session_id: String,
    kind: String,
    body: Json<Value>,
    ephemeral: bool,
    dedupe_key: String,
    not_before: i64,
    attempts: i64,
    status: String,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

impl From<ActivityRow> for Activity {
    fn from(r: ActivityRow) -> Activity {
        Activity {
            id: r.id,
            session_id: r.session_id,
            kind: r.kind,
            body: r.body.0,
            ephemeral: r.ephemeral,
            dedupe_key: r.dedupe_key,
            not_before: r.not_before,
            attempts: r.attempts,
            status: r.status,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FollowUpRow {
    id: i64,
    task_id: String,
    activity_id: String,
    kind: String,
    body: String,
    received_at: i64,
    delivered_at: Option<i64>,
}

impl From<FollowUpRow> for FollowUp {
    fn from(r: FollowUpRow) -> FollowUp {
        FollowUp {
            id: r.id,
            task_id: r.task_id,
            activity_id: r.activity_id,
            // Written only by this crate; anything but a stop is a prompt.
            kind: if r.kind == FollowUpKind::Stop.as_str() {
                FollowUpKind::Stop
            } else {
                FollowUpKind::Prompt
            },
            body: r.body,
            received_at: r.received_at,
            delivered_at: r.delivered_at,
        }
    }
}

/// An installation as stored: token columns still sealed.
#[derive(sqlx::FromRow)]
pub(crate) struct InstallationRow {
    pub(crate) workspace_id: String,
    workspace_name: String,
    url_key: String,
    app_user_id: String,
    app_user_name: String,
    oauth_client_id: String,
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    access_expires_at: i64,
    scopes: Json<Vec<String>>,
    grant_kind: String,
    status: String,
    status_reason: Option<String>,
    status_changed_at: i64,
    installed_at: i64,
    refreshed_at: Option<i64>,
    revoked_at: Option<i64>,
    refresh_lease_owner: Option<String>,
    refresh_lease_until: Option<i64>,
    pub(crate) token_version: i64,
}

impl InstallationRow {
    /// Everything but the tokens.
    pub(crate) fn info(&self) -> Result<InstallationInfo> {
        Ok(InstallationInfo {
            workspace_id: self.workspace_id.clone(),
            workspace_name: self.workspace_name.clone(),
            url_key: self.url_key.clone(),
            app_user_id: self.app_user_id.clone(),
            app_user_name: self.app_user_name.clone(),
            oauth_client_id: self.oauth_client_id.clone(),
            scopes: self.scopes.0.clone(),
            grant: self.grant_kind.parse().map_err(StoreError::Corrupt)?,
            status: self.status.parse().map_err(StoreError::Corrupt)?,
            status_reason: self.status_reason.clone(),
            status_changed_at: self.status_changed_at,
            access_expires_at: self.access_expires_at,
            installed_at: self.installed_at,
            refreshed_at: self.refreshed_at,
            revoked_at: self.revoked_at,
            refresh_lease_owner: self.refresh_lease_owner.clone(),
            refresh_lease_until: self.refresh_lease_until,
            token_version: self.token_version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PermissionChangeRow {
    dedupe_key: String,
    workspace_id: String,
    changed_at: i64,
    added_team_ids: Json<Vec<String>>,
    removed_team_ids: Json<Vec<String>>,
}

impl From<PermissionChangeRow> for PermissionChange {
    fn from(r: PermissionChangeRow) -> PermissionChange {
        PermissionChange {
            dedupe_key: r.dedupe_key,
            workspace_id: r.workspace_id,
            changed_at: r.changed_at,
            added_team_ids: r.added_team_ids.0,
            removed_team_ids: r.removed_team_ids.0,
        }
    }
}
