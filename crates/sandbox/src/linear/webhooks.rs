//! Delivers webhooks the way Linear does: signed, with a per-delivery UUID
//! that stays the same on retries, retried after ~1 min, 1 h and 6 h when the
//! receiver fails, answers non-2xx or is slower than 5 s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::task::JoinSet;

use super::world::Outgoing;

/// One attempt at delivering a webhook.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The HTTP status, `None` when unreachable, timed out or no URL was set.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A webhook and what happened to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The `Linear-Delivery` header, the same on every attempt.
    pub id: String,
    /// The `Linear-Event` header.
    pub event: String,
    /// The body of the latest attempt.
    pub body: serde_json::Value,
    pub attempts: Vec<Attempt>,
    pub delivered: bool,
    /// All retries used up without success.
    pub gave_up: bool,
}

/// Where and how webhooks go.
#[derive(Clone)]
pub struct WebhookSender {
    pub target: Arc<Mutex<Option<String>>>,
    secret: Arc<str>,
    retry_delays: Arc<[Duration]>,
    timeout: Duration,
    client: reqwest::Client,
    pub log: Arc<Mutex<Vec<Delivery>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

/// Lower-case hex HMAC-SHA256 of `body` with `secret`: `Linear-Signature`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl WebhookSender {
    pub fn new(
        target: Option<String>,
        secret: &str,
        retry_delays: Vec<Duration>,
        timeout: Duration,
    ) -> Self {
        WebhookSender {
            target: Arc::new(Mutex::new(target)),
            secret: secret.into(),
            retry_delays: retry_delays.into(),
            timeout,
            client: reqwest::Client::builder()
                .user_agent("Linear-Webhook")
                .build()
                .expect("reqwest client builds"),
            log: Arc::new(Mutex::new(Vec::new())),
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        }
    }

    /// Queues each webhook for delivery on its own task, in order of the
    /// changes that caused them.
    pub fn send_all(&self, outgoing: Vec<Outgoing>) {
        for o in outgoing {
            let id = uuid::Uuid::new_v4().to_string();
            let index = {
                let mut log = self.log.lock().expect("webhook log lock");
                log.push(Delivery {
                    id: id.clone(),
                    event: o.event.clone(),
                    body: o.body.clone(),
                    attempts: vec![],
                    delivered: false,
                    gave_up: false,
                });
                log.len() - 1
            };
            let this = self.clone();
            let mut tasks = self.tasks.lock().expect("webhook tasks lock");
            // Reap finished tasks so the set does not grow without bound.
            while tasks.try_join_next().is_some() {}
            tasks.spawn(async move { this.deliver(index, id, o).await });
        }
    }

    async fn deliver(&self, index: usize, id: String, o: Outgoing) {
        for attempt in 0..=self.retry_delays.len() {
            if attempt > 0 {
                tokio::time::sleep(self.retry_delays[attempt - 1]).await;
            }
            // Each attempt carries a fresh timestamp and signature so a retry
            // passes the receiver's 60 s freshness check.
            let mut body = o.body.clone();
            body["webhookTimestamp"] = serde_json::json!(Utc::now().timestamp_millis());
            let raw = serde_json::to_vec(&body).expect("JSON serialises");
            let target = self.target.lock().expect("target lock").clone();
            let outcome = match target {
                None => Attempt {
                    at: Utc::now(),
                    status: None,
                    error: Some("no webhook URL configured".into()),
                },
                Some(url) => self.post(&url, &id, &o.event, raw).await,
            };
            let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
            {
                let mut log = self.log.lock().expect("webhook log lock");
                let d = &mut log[index];
                d.body = body;
                d.attempts.push(outcome);
                d.delivered = ok;
                d.gave_up = !ok && attempt == self.retry_delays.len();
            }
            if ok {
                return;
            }
        }
    }

    async fn post(&self, url: &str, id: &str, event: &str, raw: Vec<u8>) -> Attempt {
        let signature = sign(&self.secret, &raw);
        let result = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Accept-Charset", "utf-8")
            .header("Linear-Delivery", id)
            .header("Linear-Event", event)
            .header("Linear-Signature", signature)
            .body(raw)
            .send()
            .await;
        match result {
            Ok(resp) => Attempt {
                at: Utc::now(),
                status: Some(resp.status().as_u16()),
                error: None,
            },
            Err(e) => Attempt {
                at: Utc::now(),
                status: None,
                error: Some(if e.is_timeout() {
                    "timed out".into()
                } else {
                    e.to_string()
                }),
            },
        }
    }

    /// Stops every pending delivery and retry.
    pub fn abort_all(&self) {
        self.tasks.lock().expect("webhook tasks lock").abort_all();
    }
}
