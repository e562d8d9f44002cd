//! Webhook authenticity: signature, freshness, size and the delivery id.
//!
//! Everything here is a pure function of the headers, the raw body bytes, the
//! workspace secrets and the current time, so the endpoint can be tested
//! without a server and the rules cannot drift between call sites.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Largest body we accept. Linear's payloads are a few tens of KiB; anything
/// near a mebibyte is abuse or a bug and must not be buffered further.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Allowed distance between `webhookTimestamp` and our clock. Linear's own
/// SDK uses the same window; it bounds how long a captured delivery can be
/// replayed.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The headers the verification needs, already extracted from whatever HTTP
/// type the caller uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `Linear-Signature`: lower-case hex HMAC-SHA256 of the raw body.
    pub signature: Option<String>,
    /// `Linear-Delivery`: unique per delivery; the primary dedupe key.
    pub delivery_id: Option<String>,
    /// `Linear-Event`: the event type (informational; the body is authoritative).
    pub event: Option<String>,
}

impl WebhookHeaders {
    /// Extracts the Linear headers from an `http` header map. Non-UTF-8
    /// values are treated as absent (they can never be valid).
    pub fn from_header_map(headers: &http::HeaderMap) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Self {
            signature: get("linear-signature"),
            delivery_id: get("linear-delivery"),
            event: get("linear-event"),
        }
    }
}

/// A delivery that passed every check. Only this type may be stored and
/// processed; the raw body is kept so nothing is lost if parsing rules change.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedDelivery {
    /// `Linear-Delivery` header (dedupe key; never the body's `webhookId`).
    pub delivery_id: String,
    /// Body `organizationId`: which workspace the delivery belongs to.
    pub organization_id: String,
    /// Body `type` (e.g. `AgentSessionEvent`, `Issue`).
    pub event_type: String,
    /// Body `action` (e.g. `created`, `update`); empty when absent.
    pub action: String,
    /// Body `webhookTimestamp`, converted from Unix milliseconds.
    pub sent_at: DateTime<Utc>,
    /// The parsed JSON body.
    pub payload: serde_json::Value,
}

impl VerifiedDelivery {
    /// Body `oauthClientId`, on the event types that carry it: with
    /// `organization_id` it names the installation a delivery is for.
    pub fn oauth_client_id(&self) -> Option<&str> {
        self.payload.get("oauthClientId").and_then(|v| v.as_str())
    }
}

/// Why a delivery was refused. Each variant has an HTTP status and a stable
/// machine-readable reason (used in the JSON error body and metric labels).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("body is not a JSON object: {0}")]
    MalformedJson(String),
    #[error("body has no organizationId")]
    MissingOrganization,
    #[error("no webhook secret is configured for organization {0}")]
    UnknownWorkspace(String),
    #[error("Linear-Signature header is missing")]
    MissingSignature,
    #[error("Linear-Signature does not match the body")]
    BadSignature,
    #[error("webhookTimestamp is missing or not a number")]
    MissingTimestamp,
    #[error("webhookTimestamp is {skew_secs} s away from our clock")]
    StaleTimestamp { skew_secs: i64 },
    #[error("Linear-Delivery header is missing")]
    MissingDeliveryId,
}

impl WebhookRejection {
    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::MissingSignature | Self::BadSignature | Self::UnknownWorkspace(_) => 401,
            Self::MalformedJson(_)
            | Self::MissingOrganization
            | Self::MissingTimestamp
            | Self::StaleTimestamp { .. }
            | Self::MissingDeliveryId => 400,
        }
    }

    /// Stable snake_case reason for JSON bodies and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "payload_too_large",
            Self::MalformedJson(_) => "malformed_json",
            Self::MissingOrganization => "missing_organization",
            Self::UnknownWorkspace(_) => "unknown_workspace",
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::MissingTimestamp => "missing_timestamp",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::MissingDeliveryId => "missing_delivery_id",
        }
    }
}

/// Webhook secrets per workspace (each installing workspace gets its own
/// webhook and secret), with an optional default for single-workspace setups
/// that do not know their organization id yet.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    by_organization: HashMap<String, SecretString>,
    default: Option<SecretString>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets; the organization ids are enough to debug.
        f.debug_struct("WebhookSecrets")
            .field(
                "organizations",
                &self.by_organization.keys().collect::<Vec<_>>(),
            )
            .field("has_default", &self.default.is_some())
            .finish()
    }
}

impl WebhookSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// One secret for every delivery whose organization has no own entry.
    pub fn with_default(secret: SecretString) -> Self {
        Self {
            by_organization: HashMap::new(),
            default: Some(secret),
        }
    }

    /// Registers (or replaces) the secret of one workspace.
    pub fn insert(&mut self, organization_id: impl Into<String>, secret: SecretString) {
        self.by_organization.insert(organization_id.into(), secret);
    }

    /// The secret for `organization_id`, falling back to the default.
    pub fn secret_for(&self, organization_id: &str) -> Option<&SecretString> {
        self.by_organization
            .get(organization_id)
            .or(self.default.as_ref())
    }

    /// Verifies a delivery against the secret of the workspace it names.
    pub fn verify(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedDelivery, WebhookRejection> {
        verify_with(headers, body, now, |org| self.secret_for(org).cloned())
    }

    /// [`WebhookSecrets::verify`] without parsing the payload.
    pub fn verify_body(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedBody, WebhookRejection> {
        verify_body_with(headers, body, now, |org| self.secret_for(org).cloned())
    }
}

/// Verifies a delivery for a single workspace with a known secret.
pub fn verify(
    headers: &WebhookHeaders,
    body: &[u8],
    secret: &SecretString,
    now: DateTime<Utc>,
) -> Result<VerifiedDelivery, WebhookRejection> {
    verify_with(headers, body, now, |_| Some(secret.clone()))
}

/// Verifies a delivery, looking the secret up by the body's `organizationId`,
/// and parses its payload (see [`verify_body_with`] for the checks).
pub fn verify_with(
    headers: &WebhookHeaders,
    body: &[u8],
    now: DateTime<Utc>,
    lookup: impl FnOnce(&str) -> Option<SecretString>,
) -> Result<VerifiedDelivery, WebhookRejection> {
    verify_body_with(headers, body, now, lookup)?.parse()
}

/// A delivery that passed every check, with its body kept as the text that
/// was signed rather than parsed: what the webhook endpoint stores. Only the
/// fields the checks and the store need were read.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedBody {
    /// `Linear-Delivery` header (dedupe key; never the body's `webhookId`).
    pub delivery_id: String,
    /// Body `organizationId`.
    pub organization_id: String,
    /// Body `type`.
    pub event_type: String,
    /// Body `action`; empty when absent.
    pub action: String,
    /// Body `webhookTimestamp`.
    pub sent_at: DateTime<Utc>,
    /// The body as received: UTF-8 text of a JSON object (both checked).
    pub body: String,
    /// The names of the fields in the body's `updatedFrom` (which fields
    /// an update changed), read without parsing their old values; empty
    /// when there is none. `None` when it names more than
    /// [`MAX_UPDATED_FIELDS`]: no edit does, and the caller must then
    /// assume that any field changed.
    pub updated_fields: Option<Vec<String>>,
}

impl VerifiedBody {
    /// The delivery with its payload parsed, for a caller that acts on it.
    /// The body stays here (the webhook endpoint stores it as received);
    /// only the short fields are copied.
    pub fn parse(&self) -> Result<VerifiedDelivery, WebhookRejection> {
        Ok(VerifiedDelivery {
            delivery_id: self.delivery_id.clone(),
            organization_id: self.organization_id.clone(),
            event_type: self.event_type.clone(),
            action: self.action.clone(),
            sent_at: self.sent_at,
            payload: serde_json::from_str(&self.body)
                .map_err(|e| WebhookRejection::MalformedJson(e.to_string()))?,
        })
    }
}

/// The body fields the checks read. The rest of the body is checked to be
/// JSON and skipped without building a tree (most of a delivery's cost at
/// high rates was that tree and its re-serialisation for the store). Each
/// field is a loose [`serde_json::Value`] so a wrongly typed one is
/// reported as that field's problem, not as malformed JSON.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "organizationId", default)]
    organization_id: Option<serde_json::Value>,
    #[serde(rename = "type", default)]
    event_type: Option<serde_json::Value>,
    #[serde(default)]
    action: Option<serde_json::Value>,
    #[serde(rename = "webhookTimestamp", default)]
    webhook_timestamp: Option<serde_json::Value>,
    #[serde(rename = "updatedFrom", default)]
    updated_from: Option<FieldNames>,
}

/// Most field names kept from a body's `updatedFrom`. They are read before
/// the signature is checked, so an unauthenticated body of a million tiny
/// fields must not become a million strings; an edit in Linear changes a
/// handful.
pub const MAX_UPDATED_FIELDS: usize = 64;

/// The names of an object's fields, their values skipped unparsed (`None`
/// past [`MAX_UPDATED_FIELDS`]). Anything but an object (an odd
/// `updatedFrom`) names no fields rather than failing the delivery: the
/// checks do not depend on it.
struct FieldNames(Option<Vec<String>>);

impl<'de> serde::Deserialize<'de> for FieldNames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = FieldNames;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldNames, A::Error> {
                let mut names = Some(Vec::new());
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    map.next_value::<IgnoredAny>()?;
                    match &mut names {
                        Some(kept) if kept.len() < MAX_UPDATED_FIELDS => {
                            kept.push(name.into_owned())
                        }
                        _ => names = None,
                    }
                }
                Ok(FieldNames(names))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldNames, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_unit<E>(self) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_i64<E>(self, _: i64) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_u64<E>(self, _: u64) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_f64<E>(self, _: f64) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
            fn visit_str<E>(self, _: &str) -> Result<FieldNames, E> {
                Ok(FieldNames(Some(Vec::new())))
            }
        }
        d.deserialize_any(Names)
    }
}

/// Verifies a delivery, looking the secret up by the body's `organizationId`,
/// without parsing the payload.
///
/// Order of checks: size (cheap, before touching the body), JSON shape (the
/// organization id picks the secret), signature (nothing else is trusted
/// before it), timestamp, delivery id. Unauthenticated senders therefore learn
/// nothing beyond "401".
pub fn verify_body_with(
    headers: &WebhookHeaders,
    body: &[u8],
    now: DateTime<Utc>,
    lookup: impl FnOnce(&str) -> Option<SecretString>,
) -> Result<VerifiedBody, WebhookRejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookRejection::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| WebhookRejection::MalformedJson(format!("body is not UTF-8: {e}")))?;
    if !text.trim_start().starts_with('{') {
        return Err(WebhookRejection::MalformedJson(
            "top level is not an object".into(),
        ));
    }
    let head: Head =
        serde_json::from_str(text).map_err(|e| WebhookRejection::MalformedJson(e.to_string()))?;
    let string = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    let organization_id = string(head.organization_id);
    if organization_id.is_empty() {
        return Err(WebhookRejection::MissingOrganization);
    }
    let secret = lookup(&organization_id)
        .ok_or_else(|| WebhookRejection::UnknownWorkspace(organization_id.clone()))?;

    let signature = headers
        .signature
        .as_deref()
        .ok_or(WebhookRejection::MissingSignature)?;
    check_signature(signature, body, &secret)?;

    let timestamp_ms = head
        .webhook_timestamp
        .as_ref()
        .and_then(|v| v.as_f64())
        .filter(|ms| ms.is_finite())
        .ok_or(WebhookRejection::MissingTimestamp)?;
    let sent_at = DateTime::<Utc>::from_timestamp_millis(timestamp_ms as i64)
        .ok_or(WebhookRejection::MissingTimestamp)?;
    let skew = now.signed_duration_since(sent_at);
    let max_skew_ms = MAX_CLOCK_SKEW.as_millis() as i64;
    if skew.num_milliseconds().abs() > max_skew_ms {
        return Err(WebhookRejection::StaleTimestamp {
            skew_secs: skew.num_seconds(),
        });
    }

    let delivery_id = headers
        .delivery_id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or(WebhookRejection::MissingDeliveryId)?;

    Ok(VerifiedBody {
        delivery_id,
        event_type: string(head.event_type),
        action: string(head.action),
        organization_id,
        sent_at,
        body: text.to_owned(),
        updated_fields: head.updated_from.map_or(Some(Vec::new()), |f| f.0),
    })
}

fn check_signature(
    signature_hex: &str,
    body: &[u8],
    secret: &SecretString,
) -> Result<(), WebhookRejection> {
    let expected = hex::decode(signature_hex.trim()).map_err(|_| WebhookRejection::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| WebhookRejection::BadSignature)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| WebhookRejection::BadSignature)
}

/// Signs a body the way Linear does. Public so simulators, the demo and
/// tests of the HTTP endpoint can produce valid deliveries.
pub fn sign(body: &[u8], secret: &SecretString) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORG: &str = "0b6c2a54-3f0e-4c1e-9a55-7f1d2e8c9a01";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_772_460_311_613).unwrap()
    }

    fn body_at(ts_ms: serde_json::Value, org: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "AgentSessionEvent",
            "action": "created",
            "organizationId": org,
            "webhookId": "e4a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
            "webhookTimestamp": ts_ms,
        }))
        .unwrap()
    }

    fn signed_headers(body: &[u8], key: &str) -> WebhookHeaders {
        WebhookHeaders {
            signature: Some(sign(body, &secret(key))),
            delivery_id: Some("2f1c5a1e-8b53-4d0e-9a3c-7c1d2e3f4a5b".into()),
            event: Some("AgentSessionEvent".into()),
        }
    }

    #[test]
    fn accepts_a_good_delivery() {
        let body = body_at(json!(1_772_460_311_613_i64), ORG);
        let headers = signed_headers(&body, "s3cret");
        let d = verify(&headers, &body, &secret("s3cret"), now()).unwrap();
        assert_eq!(d.delivery_id, "2f1c5a1e-8b53-4d0e-9a3c-7c1d2e3f4a5b");
        assert_eq!(d.organization_id, ORG);
        assert_eq!(d.event_type, "AgentSessionEvent");
        assert_eq!(d.action, "created");
        assert_eq!(d.sent_at, now());
    }

    #[test]
    fn signature_is_over_raw_bytes_not_reserialised_json() {
        // Extra whitespace changes the bytes; a re-serialising verifier would
        // compute a different MAC and wrongly reject (or accept) this.
        let body =
            format!("{{ \"organizationId\" : \"{ORG}\",  \"webhookTimestamp\": 1772460311613 }}")
                .into_bytes();
        let headers = signed_headers(&body, "k");
        assert!(verify(&headers, &body, &secret("k"), now()).is_ok());
    }

    #[test]
    fn rejects_bad_and_missing_signatures_with_401() {
        let body = body_at(json!(1_772_460_311_613_i64), ORG);
        let mut headers = signed_headers(&body, "other-secret");
        let err = verify(&headers, &body, &secret("s3cret"), now()).unwrap_err();
        assert_eq!(err, WebhookRejection::BadSignature);
        assert_eq!((err.http_status(), err.reason()), (401, "bad_signature"));

        headers.signature = Some("not hex at all".into());
        assert_eq!(
            verify(&headers, &body, &secret("s3cret"), now()).unwrap_err(),
            WebhookRejection::BadSignature
        );

        headers.signature = None;
        let err = verify(&headers, &body, &secret("s3cret"), now()).unwrap_err();
        assert_eq!(
            (err.http_status(), err.reason()),
            (401, "missing_signature")
        );
    }

    #[test]
    fn tampered_body_fails_signature() {
        let body = body_at(json!(1_772_460_311_613_i64), ORG);
        let headers = signed_headers(&body, "k");
        let mut tampered = body.clone();
        let pos = tampered.iter().position(|b| *b == b'c').unwrap();
        tampered[pos] = b'd';
        assert_eq!(
            verify(&headers, &tampered, &secret("k"), now()).unwrap_err(),
            WebhookRejection::BadSignature
        );
    }

    #[test]
    fn rejects_stale_and_future_timestamps_but_accepts_inside_window() {
        let base = 1_772_460_311_613_i64;
        for (offset_ms, ok) in [
            (-61_000, false),
            (61_000, false),
            (-59_000, true),
            (59_000, true),
        ] {
            let body = body_at(json!(base + offset_ms), ORG);
            let headers = signed_headers(&body, "k");
            let result = verify(&headers, &body, &secret("k"), now());
            assert_eq!(result.is_ok(), ok, "offset {offset_ms}: {result:?}");
            if let Err(err) = result {
                assert_eq!((err.http_status(), err.reason()), (400, "stale_timestamp"));
            }
        }
    }

    #[test]
    fn timestamp_must_be_a_number() {
        for ts in [json!("1772460311613"), serde_json::Value::Null] {
            let body = body_at(ts, ORG);
            let headers = signed_headers(&body, "k");
            let err = verify(&headers, &body, &secret("k"), now()).unwrap_err();
            assert_eq!(
                (err.http_status(), err.reason()),
                (400, "missing_timestamp")
            );
        }
    }

    #[test]
    fn rejects_too_large_before_parsing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let err = verify(&WebhookHeaders::default(), &body, &secret("k"), now()).unwrap_err();
        assert_eq!(
            (err.http_status(), err.reason()),
            (413, "payload_too_large")
        );
    }

    #[test]
    fn rejects_malformed_json() {
        for body in [&b"{not json"[..], b"[1,2,3]", b""] {
            let headers = signed_headers(body, "k");
            let err = verify(&headers, body, &secret("k"), now()).unwrap_err();
            assert_eq!(
                (err.http_status(), err.reason()),
                (400, "malformed_json"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn requires_the_delivery_header_and_never_falls_back_to_webhook_id() {
        let body = body_at(json!(1_772_460_311_613_i64), ORG);
        let mut headers = signed_headers(&body, "k");
        headers.delivery_id = None;
        let err = verify(&headers, &body, &secret("k"), now()).unwrap_err();
        assert_eq!(
            (err.http_status(), err.reason()),
            (400, "missing_delivery_id")
        );
    }

    #[test]
    fn multi_workspace_picks_the_secret_by_organization() {
        let mut secrets = WebhookSecrets::new();
        secrets.insert("org-a", secret("secret-a"));
        secrets.insert("org-b", secret("secret-b"));

        let body_b = body_at(json!(1_772_460_311_613_i64), "org-b");
        let ok = secrets.verify(&signed_headers(&body_b, "secret-b"), &body_b, now());
        assert_eq!(ok.unwrap().organization_id, "org-b");

        // Signed with workspace A's secret but claiming to be B: refused.
        let err = secrets
            .verify(&signed_headers(&body_b, "secret-a"), &body_b, now())
            .unwrap_err();
        assert_eq!(err, WebhookRejection::BadSignature);

        let body_c = body_at(json!(1_772_460_311_613_i64), "org-c");
        let err = secrets
            .verify(&signed_headers(&body_c, "secret-a"), &body_c, now())
            .unwrap_err();
        assert_eq!(
            (err.http_status(), err.reason()),
            (401, "unknown_workspace")
        );

        let with_default = WebhookSecrets::with_default(secret("d"));
        assert!(
            with_default
                .verify(&signed_headers(&body_c, "d"), &body_c, now())
                .is_ok()
        );
        assert!(!format!("{secrets:?}").contains("secret-a"));
    }

    #[test]
    fn header_map_extraction_is_case_insensitive_and_trims() {
        let mut map = http::HeaderMap::new();
        map.insert("Linear-Signature", " abc ".parse().unwrap());
        map.insert("linear-delivery", "d-1".parse().unwrap());
        let h = WebhookHeaders::from_header_map(&map);
        assert_eq!(h.signature.as_deref(), Some("abc"));
        assert_eq!(h.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(h.event, None);
    }

    #[test]
    fn names_the_fields_an_update_changed_and_tolerates_odd_ones() {
        let names = |updated_from: serde_json::Value| {
            let body = serde_json::to_vec(&json!({
                "type": "Issue", "action": "update", "organizationId": ORG,
                "webhookTimestamp": 1_772_460_311_613_i64,
                "updatedFrom": updated_from,
            }))
            .unwrap();
            let headers = signed_headers(&body, "k");
            verify_body_with(&headers, &body, now(), |_| Some(secret("k"))).map(|v| {
                let mut names = v.updated_fields;
                if let Some(names) = &mut names {
                    names.sort();
                }
                names
            })
        };
        assert_eq!(
            names(json!({"priority": 3, "description": {"long": ["old", "text"]}})).unwrap(),
            Some(vec!["description".to_string(), "priority".to_string()])
        );
        for odd in [
            json!(null),
            json!([1, 2]),
            json!("x"),
            json!(7),
            json!(true),
        ] {
            assert_eq!(names(odd.clone()).unwrap(), Some(Vec::new()), "{odd}");
        }
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_UPDATED_FIELDS)
            .map(|i| (format!("f{i}"), json!(0)))
            .collect();
        assert_eq!(
            names(serde_json::Value::Object(many)).unwrap(),
            None,
            "past the cap no names are kept, so none is wrongly missing"
        );
        let body = body_at(json!(1_772_460_311_613_i64), ORG);
        let headers = signed_headers(&body, "k");
        let verified = verify_body_with(&headers, &body, now(), |_| Some(secret("k"))).unwrap();
        assert_eq!(verified.updated_fields, Some(Vec::new()));
    }
}
