//! Alerts: raised once per condition, cleared when the condition ends, logged,
//! and POSTed to `alerts.webhookUrl` (Slack-compatible `{"text": …}`) when set.
//!
//! "Once" is kept in the store (`raise_alert` answers whether the alert is
//! new), so several replicas and restarts do not repeat a notification.

use crate::context::Ctx;
use serde_json::json;
use std::time::Duration;

/// Sends alert texts to an optional Slack-compatible webhook.
#[derive(Clone)]
pub struct AlertSink {
    webhook_url: Option<String>,
    http: reqwest::Client,
}

impl AlertSink {
    pub fn new(webhook_url: Option<String>) -> AlertSink {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with a timeout builds");
        AlertSink { webhook_url, http }
    }

    /// Logs the alert and, when a webhook is configured, POSTs it. A failed
    /// POST is logged, never propagated: an alert must not stop the worker.
    pub async fn notify(&self, key: &str, text: &str) {
        tracing::warn!(alert = key, "{text}");
        metrics::counter!("cyrus_alerts_raised_total", "alert" => alert_kind(key)).increment(1);
        let Some(url) = &self.webhook_url else {
            return;
        };
        let body = json!({ "text": format!(":rotating_light: Cyrus: {text}") });
        match self.http.post(url).json(&body).send().await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => {
                tracing::error!(alert = key, status = %resp.status(), "alert webhook refused the alert")
            }
            Err(err) => tracing::error!(alert = key, error = %err, "alert webhook unreachable"),
        }
    }

    /// Announces that a condition has ended.
    pub async fn resolved(&self, key: &str, text: &str) {
        tracing::info!(alert = key, "resolved: {text}");
        metrics::counter!("cyrus_alerts_resolved_total", "alert" => alert_kind(key)).increment(1);
        let Some(url) = &self.webhook_url else {
            return;
        };
        let body = json!({ "text": format!(":white_check_mark: Cyrus: resolved: {text}") });
        match self.http.post(url).json(&body).send().await {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => {
                tracing::error!(alert = key, status = %resp.status(), "alert webhook refused the resolution")
            }
            Err(err) => tracing::error!(alert = key, error = %err, "alert webhook unreachable"),
        }
    }
}

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

/// The metric label for an alert key such as `budget_day_80:2026-11-25`: the
/// part before the colon, so labels stay low-cardinality.
fn alert_kind(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_string()
}
