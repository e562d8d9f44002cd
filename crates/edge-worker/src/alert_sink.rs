//! Where alert notifications go: the log, a metric, and an optional
//! Slack-compatible webhook (`alerts.webhookUrl`). Whether an alert is new
//! is the store's answer, kept by the `alerts` module.

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

/// The metric label for an alert key such as `budget_day_80:2026-11-25`: the
/// part before the colon, so labels stay low-cardinality.
fn alert_kind(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_string()
}
