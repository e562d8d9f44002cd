//! Gauges read from the store when `/metrics` is scraped, so every replica
//! reports the fleet's state rather than its own view.

use crate::context::Ctx;

pub async fn refresh(ctx: &Ctx) {
    refresh_headroom(ctx);
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

/// Rate-limit headroom of both upstreams as this replica sees it:
/// `codegen_rate_headroom{class}` in calls left in the current window (read
/// by `cyrus status`), `linear_rate_headroom{organization}` as the share of
/// Linear's budget left (0–1).
pub fn refresh_headroom(ctx: &Ctx) {
    let limits = crate::dashboard::snapshot::rate_limits(ctx);
    for c in limits.codegen {
        metrics::gauge!("codegen_rate_headroom", "class" => c.class).set(f64::from(c.remaining));
    }
    for l in limits.linear {
        metrics::gauge!("linear_rate_headroom", "organization" => l.organization).set(l.headroom);
    }
}
