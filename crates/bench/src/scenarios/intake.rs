//! Durable webhook intake: signed POSTs to `/webhooks/linear`, each answered
//! 200 only after the delivery is committed to the store. Throughput is
//! accepted deliveries per second of wall time, with `concurrency` senders.
//! The deliveries are `Issue` updates for unknown issues, so the intake
//! processor (running meanwhile, as in production) has little work per row.

use crate::report::Figure;
use crate::rig::{self, Rig};
use cyrus_stack::StoreLocation;
use futures::StreamExt as _;
use secrecy::SecretString;
use serde_json::json;

pub struct IntakeOptions {
    pub deliveries: usize,
    pub concurrency: usize,
    /// `None` = SQLite.
    pub store_url: Option<String>,
}

pub async fn run(opts: IntakeOptions) -> anyhow::Result<Vec<Figure>> {
    let backend = if opts.store_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let scenario = format!("intake {backend}");
    let store = match &opts.store_url {
        Some(url) => StoreLocation::Url(url.clone()),
        None => StoreLocation::TempSqlite,
    };
    let mut rig = Rig::prepare(rig::options().store(store)).await?;
    let worker = rig.start_worker().await?;
    let url = format!("http://{}/webhooks/linear", rig.addr);
    let secret = SecretString::from(rig.linear.webhook_secret().to_string());
    let org = rig.linear.organization_id().to_string();
    let client = reqwest::Client::new();

    let started = std::time::Instant::now();
    let results: Vec<Result<u16, String>> = futures::stream::iter(0..opts.deliveries)
        .map(|i| {
            let (client, url, secret, org) = (&client, &url, &secret, &org);
            async move {
                let body = serde_json::to_vec(&json!({
                    "type": "Issue", "action": "update", "organizationId": org,
                    "webhookTimestamp": chrono::Utc::now().timestamp_millis(),
                    "webhookId": uuid::Uuid::new_v4().to_string(),
                    "data": {"id": format!("bench-issue-{i}"), "title": "bench"},
                    "updatedFrom": {"title": "old"}
                }))
                .map_err(|e| e.to_string())?;
                let signature = cyrus_linear::webhook::verify::sign(&body, secret);
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("linear-signature", signature)
                    .header("linear-delivery", uuid::Uuid::new_v4().to_string())
                    .header("linear-event", "Issue")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    worker.shutdown().await;
    rig.shutdown().await;

    let accepted = results.iter().filter(|r| matches!(r, Ok(200))).count();
    let failed = results.len() - accepted;
    let first_error = results
        .iter()
        .find(|r| !matches!(r, Ok(200)))
        .map(|r| format!("; first failure: {r:?}"))
        .unwrap_or_default();
    Ok(vec![
        Figure::new(
            &scenario,
            "committed",
            Some(accepted as f64 / secs),
            "deliveries/s",
        )
        .note(format!(
            "{accepted} of {} accepted in {secs:.1} s, {} concurrent senders{first_error}",
            opts.deliveries, opts.concurrency
        )),
        Figure::new(&scenario, "not accepted", Some(failed as f64), "deliveries"),
    ])
}
