//! Alerts: raised once per condition, cleared when the condition ends, logged,
//! and POSTed to `alerts.webhookUrl` (Slack-compatible `{"text": …}`) when set.
//!
//! "Once" is kept in the store (`raise_alert` answers whether the alert is
//! new), so several replicas and restarts do not repeat a notification.

use crate::context::Ctx;

/// Raises `key` and notifies, only if it was not already active. Returns
/// whether a notification went out. A store failure is logged and counts as
/// "not raised" (the next evaluation tries again).
pub async fn raise(ctx: &Ctx, key: &str, text: &str, now_ms: i64) -> bool {
    match ctx.store.raise_alert(key, text, now_ms).await {
        Ok(true) => {
            ctx.alerts.notify(key, text).await;
            true
        }
        Ok(false) => false,
        Err(err) => {
            tracing::error!(alert = key, error = %err, "could not record an alert");
            false
        }
    }
}

/// Clears `key` and announces it, only if it was active. Returns whether it
/// was.
pub async fn clear(ctx: &Ctx, key: &str, text: &str, now_ms: i64) -> bool {
    match ctx.store.clear_alert(key, now_ms).await {
        Ok(true) => {
            ctx.alerts.resolved(key, text).await;
            true
        }
        Ok(false) => false,
        Err(err) => {
            tracing::error!(alert = key, error = %err, "could not clear an alert");
            false
        }
    }
}
