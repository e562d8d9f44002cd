//! Incoming webhooks: authenticity checks ([`verify`]) and typed parsing
//! ([`event`]). Both are pure so the HTTP endpoint stays a thin adapter.

pub mod event;
pub mod verify;

pub use event::{WebhookEvent, parse_event};
pub use verify::{
    MAX_BODY_BYTES, MAX_CLOCK_SKEW, VerifiedBody, VerifiedDelivery, WebhookHeaders,
    WebhookRejection, WebhookSecrets, verify, verify_body_with, verify_with,
};
