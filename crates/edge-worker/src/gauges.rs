//! Gauges read from the store when `/metrics` is scraped, so every replica
//! reports the fleet's state rather than its own view.

use crate::context::Ctx;

pub async fn refresh(ctx: &Ctx) {
    if let Ok(counts) = ctx.store.count_tasks_by_state().await {
        for state in cyrus_core::lifecycle::TaskState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map(|(_, n)| *n)
                .unwrap_or(0);
            metrics::gauge!("cyrus_tasks", "state" => state.as_str()).set(n as f64);
        }
    }
    if let Ok(spent) = ctx.store.spend_for_day(ctx.today()).await {
        metrics::gauge!("cyrus_spend_today_micro_dollars").set(spent.0 as f64);
    }
    if let Ok(active) = ctx.store.count_active_runs().await {
        metrics::gauge!("cyrus_active_runs").set(active as f64);
    }
}
