//! The periodic alert evaluation: every condition that is not raised at the
//! moment it happens is checked here, and every alert whose condition has
//! ended is cleared here (with a "resolved" notification).
//!
//! | Key | Raised | Cleared |
//! |---|---|---|
//! | `budget_day_<pct>:<day>` | spend reaches the warning share / 100 % of `maxCostPerDay` (`budget.rs`) | when the UTC day ends |
//! | `failure_rate` | more than 5 % of the tasks finished in the last hour failed, with at least 5 finished | when that is no longer true |
//! | `codegen_402` | Codegen refused a create with 402 (`steps/start.rs`) | once a Codegen run has started after it |
//! | `dead_letter:<task>` | a task was dead-lettered (`scheduler.rs`) | once the task left `dead_letter` (or is gone) |
//! | `linear_rate_low:<org>` | under 10 % of Linear's budget left for a workspace | when it is back at 10 % or more |
//! | `linear_reconnect:<org>` | a workspace's installation is `needs_reconnect` (its refresh token died) or `revoked` (also raised at once by the `OAuthApp` webhook) | once it is `active` again (`cyrus linear connect`) |
//!
//! Raising and clearing go through the store, so an alert is notified once
//! across replicas and restarts, however often this runs.

use crate::alerts;
use crate::context::Ctx;
use cyrus_core::lifecycle::TaskState;
use cyrus_store::TaskTiming;
use std::time::Duration;

/// How often the loop evaluates (the spawned loop's default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The failure-rate window.
pub const FAILURE_WINDOW_MS: i64 = 3_600_000;
/// Fewer finished tasks than this in the window say nothing about a rate.
pub const FAILURE_MIN_SAMPLE: usize = 5;
/// Alert when strictly more than this percentage failed.
pub const FAILURE_MAX_PERCENT: usize = 5;
/// Alert when less than this share of a Linear budget is left.
pub const LINEAR_HEADROOM_FLOOR: f64 = 0.10;
/// Tasks finishing within the window are looked up among those created this
/// long before it (runs longer than a day are not expected).
const CREATED_LOOKBACK_MS: i64 = 24 * 3_600_000;

pub const FAILURE_RATE_KEY: &str = "failure_rate";
pub const CODEGEN_402_KEY: &str = "codegen_402";
pub const DEAD_LETTER_PREFIX: &str = "dead_letter:";
pub const LINEAR_RATE_PREFIX: &str = "linear_rate_low:";

/// What one evaluation changed (for logs and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Keys newly raised (and notified) by this evaluation.
    pub raised: Vec<String>,
    /// Keys cleared (and announced resolved) by this evaluation.
    pub cleared: Vec<String>,
}

/// Evaluates every `every` until shutdown, starting at once.
pub async fn run(ctx: Ctx, every: Duration) {
    loop {
        let outcome = evaluate(&ctx, ctx.now_ms()).await;
        if outcome != Evaluation::default() {
            tracing::info!(raised = ?outcome.raised, cleared = ?outcome.cleared, "alerts evaluated");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One evaluation as of `now_ms` (passed in so tests can move the window).
pub async fn evaluate(ctx: &Ctx, now_ms: i64) -> Evaluation {
    let mut out = Evaluation::default();
    crate::steps::budget::check_day(ctx).await;
    failure_rate(ctx, now_ms, &mut out).await;
    linear_headroom(ctx, now_ms, &mut out).await;
    installations(ctx, now_ms, &mut out).await;
    ended_conditions(ctx, now_ms, &mut out).await;
    out
}

/// Finished and failed counts among tasks that finished in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRate {
    pub finished: usize,
    pub failed: usize,
}

impl FailureRate {
    /// Tasks that finished in `(now - FAILURE_WINDOW_MS, now]`. `failed` and
    /// `dead_letter` count as failures; `stopped` is the user's choice and
    /// counts as neither.
    pub fn of(timings: &[TaskTiming], now_ms: i64) -> FailureRate {
        let mut rate = FailureRate {
            finished: 0,
            failed: 0,
        };
        for t in timings {
            let Some(done) = t.finished_at else { continue };
            if done <= now_ms - FAILURE_WINDOW_MS || done > now_ms {
                continue;
            }
            match t.outcome.as_deref() {
                Some(o) if o == TaskState::Stopped.as_str() => {}
                Some(o)
                    if o == TaskState::Failed.as_str() || o == TaskState::DeadLetter.as_str() =>
                {
                    rate.finished += 1;
                    rate.failed += 1;
                }
                _ => rate.finished += 1,
            }
        }
        rate
    }

    /// More than [`FAILURE_MAX_PERCENT`] failed, over at least
    /// [`FAILURE_MIN_SAMPLE`] finished tasks.
    pub fn is_alarming(self) -> bool {
        self.finished >= FAILURE_MIN_SAMPLE
            && self.failed * 100 > self.finished * FAILURE_MAX_PERCENT
    }
}

async fn failure_rate(ctx: &Ctx, now_ms: i64, out: &mut Evaluation) {
    let from = now_ms - FAILURE_WINDOW_MS - CREATED_LOOKBACK_MS;
    let timings = match ctx.store.task_timings(from, now_ms + 1).await {
        Ok(t) => t,
        Err(err) => {
            tracing::warn!(error = %err, "alerts: task timings unreadable; failure rate not evaluated");
            return;
        }
    };
    let rate = FailureRate::of(&timings, now_ms);
    if rate.is_alarming() {
        let text = format!(
            "Task failure rate is high: {} of {} tasks that finished in the last hour failed ({}%, alert above {FAILURE_MAX_PERCENT}%).",
            rate.failed,
            rate.finished,
            rate.failed * 100 / rate.finished
        );
        if alerts::raise(ctx, FAILURE_RATE_KEY, &text, now_ms).await {
            out.raised.push(FAILURE_RATE_KEY.into());
        }
    } else {
        let text = format!(
            "Task failure rate is back to normal ({} of {} tasks failed in the last hour).",
            rate.failed, rate.finished
        );
        if alerts::clear(ctx, FAILURE_RATE_KEY, &text, now_ms).await {
            out.cleared.push(FAILURE_RATE_KEY.into());
        }
    }
}

async fn linear_headroom(ctx: &Ctx, now_ms: i64, out: &mut Evaluation) {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_else(chrono::Utc::now);
    for (org, client) in ctx.linear.all() {
        let headroom = client.rate_limit().headroom(now);
        let key = format!("{LINEAR_RATE_PREFIX}{org}");
        if headroom < LINEAR_HEADROOM_FLOOR {
            let text = format!(
                "Linear's rate limit is nearly exhausted for workspace {org}: {:.0}% left. Activities are spread out until the budget resets.",
                headroom * 100.0
            );
            if alerts::raise(ctx, &key, &text, now_ms).await {
                out.raised.push(key);
            }
        } else {
            let text = format!(
                "Linear's rate limit for workspace {org} has recovered ({:.0}% left).",
                headroom * 100.0
            );
            if alerts::clear(ctx, &key, &text, now_ms).await {
                out.cleared.push(key);
            }
        }
    }
}

/// A workspace that needs a person is an alert until it is connected again;
/// also where the worker picks up installations made while it runs.
async fn installations(ctx: &Ctx, now_ms: i64, out: &mut Evaluation) {
    let infos = match ctx.linear.sync(&ctx.store).await {
        Ok(infos) => infos,
        Err(err) => {
            tracing::warn!(error = %err, "reading Linear installations failed");
            return;
        }
    };
    for info in infos {
        audit_installation(ctx, &info).await;
        let key = crate::installation_tokens::reconnect_alert_key(&info.workspace_id);
        if info.status == cyrus_store::InstallationStatus::Active {
            let text = format!(
                "The Linear workspace {} is connected again.",
                info.workspace_name
            );
            if alerts::clear(ctx, &key, &text, now_ms).await {
                out.cleared.push(key);
            }
        } else {
            let text =
                crate::installation_tokens::reconnect_advice(&info.workspace_name, info.status);
            if alerts::raise(ctx, &key, &text, now_ms).await {
                out.raised.push(key);
            }
        }
    }
}

/// A workspace's connection status, once per change, in the audit log.
async fn audit_installation(ctx: &Ctx, info: &cyrus_store::InstallationInfo) {
    let status = format!("{:?}", info.status).to_ascii_lowercase();
    let reason = match info.status {
        cyrus_store::InstallationStatus::Active => {
            format!("workspace {} is connected", info.workspace_name)
        }
        _ => format!(
            "workspace {} needs reconnecting ({status}{})",
            info.workspace_name,
            info.status_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    };
    let entry = cyrus_store::AuditEntry {
        dedupe_key: format!(
            "reconnect:{}:{status}:{}",
            info.workspace_id, info.status_changed_at
        ),
        at: info.status_changed_at,
        kind: cyrus_store::AuditKind::Reconnect,
        organization_id: Some(info.workspace_id.clone()),
        issue_id: None,
        issue_identifier: None,
        task_id: None,
        actor: Some("linear".into()),
        reason,
        detail: Some(serde_json::json!({"status": status})),
    };
    if let Err(err) = crate::audit::record(ctx, &entry).await {
        tracing::warn!(error = %err, "audit log: recording a connection change failed");
    }
}

/// Clears the alerts raised elsewhere whose condition has ended.
async fn ended_conditions(ctx: &Ctx, now_ms: i64, out: &mut Evaluation) {
    let Ok(active) = ctx.store.active_alerts().await else {
        return;
    };
    for alert in active {
        let ended = if alert.key == CODEGEN_402_KEY {
            run_started_since(ctx, alert.raised_at).await
        } else if let Some(task_id) = alert.key.strip_prefix(DEAD_LETTER_PREFIX) {
            match ctx.store.get_task(task_id).await {
                Ok(Some(task)) => task.state != TaskState::DeadLetter,
                Ok(None) => true,
                Err(_) => false,
            }
        } else {
            false
        };
        if ended && alerts::clear(ctx, &alert.key, &alert.message, now_ms).await {
            out.cleared.push(alert.key);
        }
    }
}

/// True when some Codegen run started after `since` (Codegen accepts
/// creates again).
async fn run_started_since(ctx: &Ctx, since: i64) -> bool {
    let recent = cyrus_store::TaskFilter {
        limit: Some(200),
        ..Default::default()
    };
    ctx.store
        .list_tasks(&recent)
        .await
        .map(|tasks| {
            tasks
                .iter()
                .any(|t| t.started_at.is_some_and(|s| s > since))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10 * FAILURE_WINDOW_MS;

    fn finished(outcome: &str, at: i64) -> TaskTiming {
        TaskTiming {
            task_id: format!("t{at}{outcome}"),
            issue_identifier: "ENG-1".into(),
            outcome: Some(outcome.into()),
            task_type: None,
            created_at: at - 1000,
            started_at: Some(at - 500),
            finished_at: Some(at),
            api_calls: 0,
        }
    }

    fn many(outcome: &str, n: usize) -> Vec<TaskTiming> {
        (0..n)
            .map(|i| finished(outcome, NOW - 1000 * i as i64))
            .collect()
    }

    #[test]
    fn a_small_sample_never_alarms() {
        let rate = FailureRate::of(&many("failed", 4), NOW);
        assert_eq!(
            rate,
            FailureRate {
                finished: 4,
                failed: 4
            }
        );
        assert!(!rate.is_alarming());
    }

    #[test]
    fn more_than_five_percent_alarms_and_exactly_five_does_not() {
        let mut t = many("completed", 19);
        t.extend(many("failed", 1));
        let rate = FailureRate::of(&t, NOW);
        assert_eq!(
            rate,
            FailureRate {
                finished: 20,
                failed: 1
            }
        );
        assert!(!rate.is_alarming(), "1 of 20 is exactly 5 %");
        t.extend(many("dead_letter", 1));
        assert!(
            FailureRate::of(&t, NOW).is_alarming(),
            "2 of 21 is over 5 %"
        );
    }

    #[test]
    fn only_the_last_hour_counts_and_stops_are_ignored() {
        let mut t = many("failed", 5);
        let old = FailureRate::of(&t, NOW + FAILURE_WINDOW_MS + 10_000);
        assert_eq!(
            old,
            FailureRate {
                finished: 0,
                failed: 0
            }
        );
        t.push(finished("stopped", NOW));
        let mut running = finished("completed", NOW);
        running.finished_at = None;
        running.outcome = None;
        t.push(running);
        assert_eq!(
            FailureRate::of(&t, NOW),
            FailureRate {
                finished: 5,
                failed: 5
            }
        );
    }
}
