//! Money: where the per-task and per-day limits are enforced.
//!
//! A task holds its worst case (`maxCostPerTask`) against the day's budget
//! (`maxCostPerDay`) before its run is created or resumed ([`hold`]); the
//! hold is settled to the run's estimated cost when the task ends
//! ([`release`]), which may let a waiting task start. A run whose estimate
//! passes `maxCostPerTask` is stopped ([`over_task_cap`]). Alerts are raised
//! once at `budgetAlertPercent` and at 100 % per UTC day ([`check_day`]).

use super::{StepError, Work};
use crate::context::Ctx;
use crate::outbox::{ActivityKind, OutboxOp};
use cyrus_core::MicroDollars;
use cyrus_core::lifecycle::WaitReason;
use cyrus_store::{AuditKind, Reservation};

/// How often a task waiting for budget looks again (a settling task may
/// free room sooner than midnight).
const RECHECK_MS: i64 = 300_000;

/// Holds `maxCostPerTask` of today's budget for the task. When the day's
/// budget has no room, tells the user once per day why the task waits and
/// until when, parks it for [`WaitReason::BudgetWait`], and returns false.
pub(crate) async fn hold(ctx: &Ctx, work: &mut Work) -> Result<bool, StepError> {
    let now = ctx.now_ms();
    let codegen = &ctx.config.codegen;
    let today = ctx.today();
    match ctx
        .store
        .try_reserve(
            today,
            &work.task.id,
            codegen.max_cost_per_task,
            codegen.max_cost_per_day,
            now,
        )
        .await?
    {
        Reservation::Reserved => {
            let detail = serde_json::json!({
                "heldMicros": codegen.max_cost_per_task.0,
                "day": today.to_string(),
            });
            crate::audit::task(
                ctx,
                &work.task,
                AuditKind::BudgetHeld,
                &format!("run{}", work.data.run_attempt),
                Some("cyrus"),
                &format!(
                    "held {} of today's budget for the run",
                    codegen.max_cost_per_task
                ),
                Some(detail),
            )
            .await?;
            if work.task.step == Some(WaitReason::BudgetWait) {
                work.task.step = None;
                work.task.detail = None;
            }
            Ok(true)
        }
        Reservation::WouldExceed { spent, reserved } => {
            check_day(ctx).await;
            let day = today.to_string();
            if work.data.budget_notice_day.as_deref() != Some(day.as_str()) {
                let body = format!(
                    "Today's estimated Codegen spend is {spent} (plus {reserved} held for running tasks) of the {} daily budget (`maxCostPerDay`), which leaves no room for this task's reserve of {} (`maxCostPerTask`). I'll start automatically when the budget resets at 00:00 UTC, or sooner if running tasks finish under their reserve.",
                    codegen.max_cost_per_day, codegen.max_cost_per_task
                );
                ctx.enqueue(
                    work.session(),
                    format!("budget:{}:{day}", work.session()),
                    OutboxOp::activity(ActivityKind::Thought, body),
                )
                .await?;
                crate::audit::task(
                    ctx,
                    &work.task,
                    AuditKind::BudgetWait,
                    &day,
                    Some("cyrus"),
                    &format!(
                        "the daily budget has no room: spent {spent}, held {reserved} of {}",
                        codegen.max_cost_per_day
                    ),
                    Some(serde_json::json!({"spentMicros": spent.0, "reservedMicros": reserved.0})),
                )
                .await?;
                work.data.budget_notice_day = Some(day);
            }
            work.task.step = Some(WaitReason::BudgetWait);
            work.task.detail = Some(format!(
                "waiting for daily budget (spent {spent}, held {reserved})"
            ));
            // At the latest right after midnight UTC.
            work.task.run_at = (now + RECHECK_MS).min(next_utc_midnight(now) + 1_000);
            work.save(ctx).await?;
            Ok(false)
        }
    }
}

/// Returns the task's budget hold, if any (the run never started or ended),
/// and wakes the tasks waiting for budget: the unused part of the hold may
/// let one of them start now rather than at its next check.
pub(crate) async fn release(ctx: &Ctx, work: &Work) {
    match ctx
        .store
        .settle_reservation(&work.task.id, estimate_of(work))
        .await
    {
        Ok(true) => {
            if let Err(err) = crate::requests::wake_parked(ctx, WaitReason::BudgetWait).await {
                tracing::warn!(error = %err, "waking tasks that wait for budget failed");
            }
        }
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(task = %work.task.id, error = %err, "settling the budget hold failed")
        }
    }
}

/// The task's estimated cost so far (zero before any log was read).
pub(crate) fn estimate_of(work: &Work) -> MicroDollars {
    work.task.estimated_cost.unwrap_or_default()
}

/// The run's estimate passed `maxCostPerTask` (a run that already succeeded
/// is not stopped for it).
pub(crate) fn over_task_cap(ctx: &Ctx, work: &Work) -> bool {
    estimate_of(work) > ctx.config.codegen.max_cost_per_task
}

/// Raises (once per UTC day) the daily budget alerts the spend has reached,
/// and clears yesterday's.
pub(crate) async fn check_day(ctx: &Ctx) {
    let day = ctx.today();
    let Ok(spent) = ctx.store.spend_for_day(day).await else {
        return;
    };
    metrics::gauge!("cyrus_spend_today_micro_dollars").set(spent.0 as f64);
    let limit = ctx.config.codegen.max_cost_per_day;
    if limit.0 <= 0 {
        return;
    }
    let percent = spent.0.saturating_mul(100) / limit.0;
    let warn_at = i64::from(ctx.config.codegen.budget_alert_percent);
    for (threshold, label) in [(warn_at, "warning"), (100, "exhausted")] {
        let key = format!("budget_day_{threshold}:{day}");
        if percent >= threshold {
            let text = format!(
                "Daily budget {label}: estimated spend {spent} is {percent}% of maxCostPerDay {limit} ({day}, UTC). New runs wait when the budget cannot hold their reserve."
            );
            crate::alerts::raise(ctx, &key, &text, ctx.now_ms()).await;
        }
    }
    // Yesterday's budget alerts end with the day.
    if let Ok(active) = ctx.store.active_alerts().await {
        for alert in active
            .iter()
            .filter(|a| a.key.starts_with("budget_day_") && !a.key.ends_with(&day.to_string()))
        {
            crate::alerts::clear(ctx, &alert.key, &alert.message, ctx.now_ms()).await;
        }
    }
}

/// Next UTC midnight, in unix millis: when the daily budget resets.
fn next_utc_midnight(now_ms: i64) -> i64 {
    let day = 86_400_000;
    (now_ms / day + 1) * day
}
