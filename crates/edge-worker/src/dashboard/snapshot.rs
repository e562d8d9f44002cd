//! Everything the dashboard shows, read from the store and the upstream
//! clients in one pass. The HTML page and `/api/status` render the same
//! [`Snapshot`], so what an operator sees and what `cyrus status` reads never
//! disagree.
//!
//! A section whose read fails is left empty and named in
//! [`Snapshot::errors`], so a partial outage shows up as such instead of as
//! an empty (reassuring) table.

use crate::context::Ctx;
use crate::task_data::TaskData;
use chrono::{Duration as Days, NaiveDate};
use cyrus_store::{CostBucket, CostDimension, Task, TaskFilter};
use serde::Serialize;

/// How many days of spend the chart shows.
pub const SPEND_DAYS: i64 = 30;
/// How many finished tasks "recent history" lists.
const HISTORY_ROWS: i64 = 30;
/// Upper bound on the active runs listed (the queue counts show the rest).
const ACTIVE_ROWS: i64 = 200;

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub generated_at_ms: i64,
    /// Every state with its task count, in state-machine order.
    pub queue: Vec<StateCount>,
    /// Tasks that are not terminal, oldest first.
    pub active: Vec<TaskRow>,
    /// The most recently finished tasks, newest first.
    pub history: Vec<TaskRow>,
    pub spend: Spend,
    pub rate_limits: RateLimits,
    pub alerts: Vec<AlertRow>,
    /// Connected Linear workspaces (OAuth installations; never a token).
    pub workspaces: Vec<WorkspaceRow>,
    /// Sections that could not be read, with the reason.
    pub errors: Vec<String>,
}

/// One connected Linear workspace as an operator needs to see it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkspaceRow {
    pub workspace: String,
    pub url_key: String,
    pub agent: String,
    /// `active`, `needs_reconnect` or `revoked`.
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub access_expires_at_ms: i64,
    /// The agent's newest team-access change (`PermissionChange` webhook).
    pub last_permission_change: Option<PermissionRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PermissionRow {
    pub changed_at_ms: i64,
    pub added_team_ids: Vec<String>,
    pub removed_team_ids: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StateCount {
    pub state: &'static str,
    pub count: i64,
}

/// One task as a person needs to see it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskRow {
    pub task_id: String,
    pub issue_identifier: String,
    /// The Linear issue's web address, when the issue has been fetched.
    pub issue_url: Option<String>,
    pub task_type: Option<&'static str>,
    pub state: String,
    /// Human-readable detail (e.g. why it waits).
    pub detail: Option<String>,
    pub outcome: Option<String>,
    pub repository: Option<String>,
    /// `None` = the configured default model.
    pub model: Option<String>,
    /// Estimated cost so far, micro-dollars (an estimate, never a bill).
    pub estimated_cost_micro: i64,
    /// Codegen's page for the run.
    pub codegen_url: Option<String>,
    pub pr_urls: Vec<String>,
    pub created_at_ms: i64,
    /// Since creation for active tasks; creation to finish for finished ones.
    pub age_secs: i64,
    pub last_error: Option<String>,
    /// The orchestration this task is a sub-issue of (its parent's task).
    pub parent_task_id: Option<String>,
    /// 1 when listed under its parent (an orchestration shown as a tree).
    pub depth: u8,
}

#[derive(Clone, Debug, Serialize)]
pub struct Spend {
    /// Always true: costs are estimated from run logs and pricing tables.
    pub estimate: bool,
    pub today_micro: i64,
    pub max_per_day_micro: i64,
    /// The last [`SPEND_DAYS`] UTC days, oldest first, zero-filled.
    pub days: Vec<DaySpend>,
    pub by_repository: Vec<Bucket>,
    pub by_model: Vec<Bucket>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DaySpend {
    pub day: NaiveDate,
    pub micro: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bucket {
    pub key: String,
    pub micro: i64,
    pub entries: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RateLimits {
    pub codegen: Vec<CodegenHeadroom>,
    pub linear: Vec<LinearHeadroom>,
}

/// Codegen's budget for one endpoint class, as our own limiter counts it.
#[derive(Clone, Debug, Serialize)]
pub struct CodegenHeadroom {
    pub class: &'static str,
    pub remaining: u32,
    pub max: u32,
    pub window_secs: u64,
}

/// Linear's budget for one workspace token, from its rate-limit headers.
#[derive(Clone, Debug, Serialize)]
pub struct LinearHeadroom {
    pub organization: String,
    /// The smaller of the request and complexity shares left, 0.0–1.0 (1.0
    /// until Linear has told us otherwise).
    pub headroom: f64,
    pub requests_remaining: Option<u64>,
    pub requests_limit: Option<u64>,
    pub paused_until_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AlertRow {
    pub key: String,
    pub message: String,
    pub raised_at_ms: i64,
}

impl Snapshot {
    /// Reads everything; never fails (see [`Snapshot::errors`]).
    pub async fn gather(ctx: &Ctx) -> Snapshot {
        let now_ms = ctx.now_ms();
        let today = ctx.today();
        let mut errors = Vec::new();
        let e = &mut errors;

        let counts = keep(ctx.store.count_tasks_by_state().await, "queue", e);
        let queue = cyrus_core::lifecycle::TaskState::ALL
            .iter()
            .map(|state| StateCount {
                state: state.as_str(),
                count: counts
                    .iter()
                    .find(|(s, _)| s == state.as_str())
                    .map_or(0, |(_, n)| *n),
            })
            .collect();

        let active_filter = TaskFilter {
            active_only: true,
            limit: Some(ACTIVE_ROWS),
            ..Default::default()
        };
        let mut active: Vec<TaskRow> =
            keep(ctx.store.list_tasks(&active_filter).await, "active runs", e)
                .iter()
                .map(|t| TaskRow::from_task(t, now_ms))
                .collect();
        active.sort_by_key(|r| r.created_at_ms);
        let active = as_tree(active);

        // Newest first; finished tasks are a subset of the newest rows, so
        // read generously and keep the finished ones.
        let recent_filter = TaskFilter {
            limit: Some(ACTIVE_ROWS + HISTORY_ROWS),
            ..Default::default()
        };
        let history = as_tree(
            keep(ctx.store.list_tasks(&recent_filter).await, "history", e)
                .iter()
                .filter(|t| t.finished_at.is_some())
                .take(HISTORY_ROWS as usize)
                .map(|t| TaskRow::from_task(t, now_ms))
                .collect(),
        );

        let from = today - Days::days(SPEND_DAYS - 1);
        let spend = |by| ctx.store.cost_breakdown(from, today, by);
        let by_day = keep(spend(CostDimension::Day).await, "spend per day", e);
        let by_repository = keep(
            spend(CostDimension::Repository).await,
            "spend by repository",
            e,
        );
        let by_model = keep(spend(CostDimension::Model).await, "spend by model", e);
        let days = fill_days(&by_day, from, today);
        let today_micro = days.last().map_or(0, |d| d.micro);

        let alerts = keep(ctx.store.active_alerts().await, "alerts", e)
            .into_iter()
            .map(|a| AlertRow {
                key: a.key,
                message: a.message,
                raised_at_ms: a.raised_at,
            })
            .collect();

        let installations = keep(
            ctx.store.list_installation_infos().await,
            "Linear workspaces",
            e,
        );
        let mut workspaces = Vec::with_capacity(installations.len());
        for i in installations {
            let change = keep(
                ctx.store
                    .list_permission_changes(Some(&i.workspace_id), 1)
                    .await,
                "permission changes",
                e,
            );
            workspaces.push(WorkspaceRow {
                workspace: i.workspace_name,
                url_key: i.url_key,
                agent: i.app_user_name,
                status: i.status.as_str(),
                status_reason: i.status_reason,
                access_expires_at_ms: i.access_expires_at,
                last_permission_change: change.into_iter().next().map(|c| PermissionRow {
                    changed_at_ms: c.changed_at,
                    added_team_ids: c.added_team_ids,
                    removed_team_ids: c.removed_team_ids,
                }),
            });
        }

        Snapshot {
            generated_at_ms: now_ms,
            queue,
            active,
            history,
            spend: Spend {
                estimate: true,
                today_micro,
                max_per_day_micro: ctx.config.codegen.max_cost_per_day.0,
                days,
                by_repository: by_repository.into_iter().map(Bucket::from).collect(),
                by_model: by_model.into_iter().map(Bucket::from).collect(),
            },
            rate_limits: rate_limits(ctx),
            alerts,
            workspaces,
            errors,
        }
    }
}

/// The value of a store read, or its default with the failure noted.
fn keep<T: Default>(
    result: Result<T, cyrus_store::StoreError>,
    section: &str,
    errors: &mut Vec<String>,
) -> T {
    result.unwrap_or_else(|err| {
        tracing::warn!(section, error = %err, "dashboard: a section could not be read");
        errors.push(format!("{section}: {err}"));
        T::default()
    })
}

/// The rate-limit headroom both upstreams have left right now.
pub fn rate_limits(ctx: &Ctx) -> RateLimits {
    let codegen = ctx
        .codegen
        .rate_permit()
        .headroom()
        .into_iter()
        .map(|h| CodegenHeadroom {
            class: h.class.as_str(),
            remaining: h.remaining(),
            max: h.limit.max,
            window_secs: h.limit.per.as_secs(),
        })
        .collect();
    let now = chrono::Utc::now();
    let mut linear: Vec<LinearHeadroom> = ctx
        .linear
        .all()
        .into_iter()
        .map(|(org, client)| {
            let snap = client.rate_limit();
            LinearHeadroom {
                organization: org.clone(),
                headroom: snap.headroom(now),
                requests_remaining: snap.requests.remaining,
                requests_limit: snap.requests.limit,
                paused_until_ms: snap
                    .paused_until
                    .filter(|u| *u > now)
                    .map(|u| u.timestamp_millis()),
            }
        })
        .collect();
    linear.sort_by(|a, b| a.organization.cmp(&b.organization));
    RateLimits { codegen, linear }
}

impl From<CostBucket> for Bucket {
    fn from(b: CostBucket) -> Bucket {
        Bucket {
            key: b.key,
            micro: b.total.0,
            entries: b.entries,
        }
    }
}

impl TaskRow {
    fn from_task(t: &Task, now_ms: i64) -> TaskRow {
        let data = TaskData::from_value(&t.data);
        let end = t.finished_at.unwrap_or(now_ms);
        TaskRow {
            task_id: t.id.clone(),
            issue_identifier: t.issue_identifier.clone(),
            issue_url: data.issue_url.clone(),
            task_type: t.task_type.map(|k| k.as_str()),
            state: t.state.to_string(),
            detail: t.detail.clone(),
            outcome: t.outcome.clone(),
            repository: data.repository_name.clone().or(data.repository.clone()),
            model: t.model.clone(),
            estimated_cost_micro: t.estimated_cost.map_or(0, |c| c.0),
            codegen_url: data.web_url.clone(),
            pr_urls: data.pr_urls.clone(),
            created_at_ms: t.created_at,
            age_secs: (end - t.created_at).max(0) / 1000,
            last_error: t.last_error.clone(),
            parent_task_id: data.orchestration_parent.clone(),
            depth: 0,
        }
    }
}

/// Lists each orchestration's sub-issue tasks right under their parent
/// (depth 1), keeping the order otherwise; a child whose parent is not in
/// the list stays where it is.
fn as_tree(rows: Vec<TaskRow>) -> Vec<TaskRow> {
    let ids: std::collections::BTreeSet<String> = rows.iter().map(|r| r.task_id.clone()).collect();
    let (children, top): (Vec<TaskRow>, Vec<TaskRow>) = rows
        .into_iter()
        .partition(|r| r.parent_task_id.as_ref().is_some_and(|p| ids.contains(p)));
    let mut out = Vec::with_capacity(top.len() + children.len());
    for row in top {
        let id = row.task_id.clone();
        out.push(row);
        for child in children
            .iter()
            .filter(|c| c.parent_task_id.as_deref() == Some(id.as_str()))
        {
            let mut child = child.clone();
            child.depth = 1;
            out.push(child);
        }
    }
    out
}

/// One entry per day of `from..=to`, zero where nothing was spent (days
/// without spend are missing from the breakdown).
pub fn fill_days(by_day: &[CostBucket], from: NaiveDate, to: NaiveDate) -> Vec<DaySpend> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|day| DaySpend {
            day,
            micro: by_day
                .iter()
                .find(|b| b.key == day.format("%Y-%m-%d").to_string())
                .map_or(0, |b| b.total.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cyrus_core::MicroDollars;

    #[test]
    fn an_orchestration_is_listed_as_a_tree() {
        let row = |id: &str, parent: Option<&str>| TaskRow {
            task_id: id.into(),
            issue_identifier: id.into(),
            issue_url: None,
            task_type: None,
            state: "running".into(),
            detail: None,
            outcome: None,
            repository: None,
            model: None,
            estimated_cost_micro: 0,
            codegen_url: None,
            pr_urls: vec![],
            created_at_ms: 0,
            age_secs: 0,
            last_error: None,
            parent_task_id: parent.map(str::to_string),
            depth: 0,
        };
        let rows = vec![
            row("a", Some("p")),
            row("x", None),
            row("p", None),
            row("b", Some("p")),
            row("orphan", Some("gone")),
        ];
        let tree: Vec<(String, u8)> = as_tree(rows)
            .into_iter()
            .map(|r| (r.task_id, r.depth))
            .collect();
        let want = [("x", 0), ("p", 0), ("a", 1), ("b", 1), ("orphan", 0)];
        assert_eq!(
            tree,
            want.iter()
                .map(|(i, d)| (i.to_string(), *d))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn fill_days_zero_fills_and_keeps_order() {
        let from = NaiveDate::from_ymd_opt(2026, 2, 27).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let buckets = vec![
            CostBucket {
                key: "2026-03-01".into(),
                total: MicroDollars(5),
                entries: 1,
            },
            CostBucket {
                key: "2026-02-27".into(),
                total: MicroDollars(7),
                entries: 2,
            },
        ];
        let days = fill_days(&buckets, from, to);
        let got: Vec<(String, i64)> = days.iter().map(|d| (d.day.to_string(), d.micro)).collect();
        assert_eq!(
            got,
            vec![
                ("2026-02-27".to_string(), 7),
                ("2026-02-28".to_string(), 0),
                ("2026-03-01".to_string(), 5),
                ("2026-03-02".to_string(), 0),
            ]
        );
    }
}
