//! Daily budget alerts: raised once at `budgetAlertPercent` (80 % by
//! default) and at 100 % of `maxCostPerDay`, per UTC day.

use crate::context::Ctx;

pub async fn check_day(ctx: &Ctx) {
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
