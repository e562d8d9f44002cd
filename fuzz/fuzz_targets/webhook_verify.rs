//! Webhook verification and parsing on arbitrary input: raw header values
//! (through `http::HeaderMap`, as the endpoint sees them) and raw bytes, both
//! unsigned (must be rejected without panicking) and correctly signed (so
//! the fuzzer reaches `parse_event` with hostile JSON).

#![no_main]

use arbitrary::Arbitrary;
use cyrus_linear::webhook::verify::sign;
use cyrus_linear::webhook::{WebhookHeaders, parse_event, verify};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    signature: &'a [u8],
    delivery: &'a [u8],
    event: &'a [u8],
    body: &'a [u8],
    /// Sign the body properly, so verification can pass.
    sign_it: bool,
    /// Offset of "now" from the body's timestamp, in ms.
    skew_ms: i32,
}

fuzz_target!(|input: Input<'_>| {
    let secret = SecretString::from("fuzz-secret".to_string());
    let mut map = http::HeaderMap::new();
    for (name, value) in [
        ("linear-signature", input.signature),
        ("linear-delivery", input.delivery),
        ("linear-event", input.event),
    ] {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            map.insert(name, v);
        }
    }
    let mut headers = WebhookHeaders::from_header_map(&map);
    if input.sign_it {
        headers.signature = Some(sign(input.body, &secret));
    }
    // "Now" near the body's own timestamp, so freshness can pass too.
    let sent = serde_json::from_slice::<serde_json::Value>(input.body)
        .ok()
        .and_then(|v| v.get("webhookTimestamp")?.as_i64())
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now);
    let now = sent + chrono::Duration::milliseconds(input.skew_ms.into());
    if let Ok(delivery) = verify(&headers, input.body, &secret, now) {
        // Parsing must never panic; any error is a typed rejection.
        let _ = parse_event(&delivery);
    }
});
