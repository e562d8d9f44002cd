//! Parsing of authentic deliveries with hostile content: the input is the
//! raw body, signed with the right secret and checked at its own timestamp,
//! so every JSON object with `organizationId` and `webhookTimestamp` reaches
//! `parse_event`. Seed it with real payloads (see `fuzz/README.md`).

#![no_main]

use cyrus_linear::webhook::verify::sign;
use cyrus_linear::webhook::{WebhookHeaders, parse_event, verify};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|body: &[u8]| {
    let secret = SecretString::from("fuzz-secret".to_string());
    let headers = WebhookHeaders {
        signature: Some(sign(body, &secret)),
        delivery_id: Some("fuzz-delivery".into()),
        event: None,
    };
    let now = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("webhookTimestamp")?.as_i64())
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now);
    if let Ok(delivery) = verify(&headers, body, &secret, now) {
        let _ = parse_event(&delivery);
    }
});
