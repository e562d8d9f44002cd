//! The Linear protocol: webhook verification and parsing, the OAuth install
//! and token grants, the GraphQL client (with OAuth refresh, error
//! classification and rate-limit budgeting), and the pure policies deciding
//! what to post into an agent session and when to retry a queued write, and
//! fetching the images people paste into issues (`uploads`).
//!
//! This is the only crate that knows Linear's wire formats; the edge worker
//! calls these functions from its HTTP handlers and scheduler.

pub mod activity;
pub mod activity_policy;
pub mod client;
pub mod error;
pub mod oauth;
pub mod operations;
pub mod outbox_policy;
pub mod rate_limit;
pub mod uploads;
pub mod webhook;

pub use activity::{ActivityContent, ActivitySignal, NewActivity, SelectOption};
pub use activity_policy::{ActivityPolicy, ActivityPolicyConfig, ProgressEvent, Verbosity};
pub use client::{
    Credentials, Identity, LinearClient, LinearClientConfig, OAuthTokens, TokenPersister,
    TokenSource, is_personal_api_key,
};
pub use error::{ErrorClass, LinearError};
pub use outbox_policy::{OutboxDecision, OutboxItemKind, OutboxItemView};
pub use rate_limit::{RateBudget, RateLimitSnapshot};
pub use webhook::{
    VerifiedDelivery, WebhookEvent, WebhookHeaders, WebhookRejection, WebhookSecrets,
};
