//! Bad input: webhook verification and parsing never panic, whatever the
//! headers and bytes; a delivery is either a typed rejection or a typed
//! event. Mirrors `fuzz/fuzz_targets/*` for environments without nightly.

use cyrus_linear::webhook::verify::sign;
use cyrus_linear::webhook::{WebhookHeaders, parse_event, verify};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{Value, json};

fn secret() -> SecretString {
    SecretString::from("prop-secret".to_string())
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("issue".to_string()),
                    Just("agentSession".to_string()),
                    Just("agentActivity".to_string()),
                    Just("content".to_string()),
                    Just("data".to_string()),
                    Just("updatedFrom".to_string()),
                    "[a-zA-Z]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A webhook envelope with plausible type/action and arbitrary content.
fn envelope() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("AgentSessionEvent"),
            Just("Issue"),
            Just("Comment"),
            Just("AppUserNotification"),
            Just("Other")
        ],
        prop_oneof![
            Just("created"),
            Just("prompted"),
            Just("update"),
            Just("remove"),
            Just("issueUnassignedFromYou"),
            Just("")
        ],
        any_json(),
        any_json(),
        any_json(),
    )
        .prop_map(|(ty, action, session, data, extra)| {
            json!({
                "type": ty, "action": action, "organizationId": "org",
                "webhookTimestamp": 1_772_460_311_613_i64,
                "agentSession": session, "data": data, "agentActivity": extra.clone(),
                "notification": extra, "updatedFrom": {"stateId": "s1"}
            })
        })
}

fn at_body_time(body: &[u8]) -> chrono::DateTime<chrono::Utc> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("webhookTimestamp")?.as_i64())
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary header bytes and body: no panic, and an unsigned or wrongly
    /// signed body is never accepted.
    #[test]
    fn arbitrary_bytes_are_rejected_or_parsed(
        signature in prop::collection::vec(any::<u8>(), 0..80),
        delivery in prop::collection::vec(any::<u8>(), 0..40),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut map = http::HeaderMap::new();
        for (name, value) in [("linear-signature", &signature), ("linear-delivery", &delivery)] {
            if let Ok(v) = http::HeaderValue::from_bytes(value) {
                map.insert(name, v);
            }
        }
        let headers = WebhookHeaders::from_header_map(&map);
        let result = verify(&headers, &body, &secret(), at_body_time(&body));
        if let Ok(delivery) = &result {
            // Only possible with the right signature.
            prop_assert_eq!(headers.signature.clone(), Some(sign(&body, &secret())));
            let _ = parse_event(delivery);
        }
    }

    /// Correctly signed, fresh deliveries with hostile content reach the
    /// parser, which answers with an event or a typed error — never a panic.
    #[test]
    fn signed_hostile_json_parses_or_errors(value in envelope()) {
        let body = serde_json::to_vec(&value).unwrap();
        let headers = WebhookHeaders {
            signature: Some(sign(&body, &secret())),
            delivery_id: Some("d1".into()),
            event: None,
        };
        let delivery = verify(&headers, &body, &secret(), at_body_time(&body));
        prop_assert!(delivery.is_ok(), "a signed fresh delivery verifies: {:?}", delivery);
        let _ = parse_event(&delivery.unwrap());
    }
}

/// The fuzz seeds are valid deliveries that parse (so the fuzzer starts
/// from inputs that reach deep into `parse_event`).
#[test]
fn fuzz_seeds_verify_and_parse() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/webhook_parse");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz seeds exist") {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        let headers = WebhookHeaders {
            signature: Some(sign(&body, &secret())),
            delivery_id: Some("d1".into()),
            event: None,
        };
        let delivery = verify(&headers, &body, &secret(), at_body_time(&body))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parse_event(&delivery).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        seen += 1;
    }
    assert!(seen >= 3, "expected the seed files in {}", dir.display());
}
