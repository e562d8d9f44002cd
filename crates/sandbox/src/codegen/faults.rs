//! Faults injected into API responses on demand (never into `/_control`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// A one-shot or repeating forced failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedFailure {
    /// HTTP status to answer with (e.g. 500, 502, 503, 429, 402). 429, 402,
    /// 403 and 404 use Codegen's documented bodies; others a `{message,
    /// status_code}` body.
    pub status: u16,
    /// How many matching requests fail; then the rule is spent.
    pub count: u32,
    /// Only requests to this endpoint; `None` = any API endpoint.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
}

/// Connections to cut without any response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedConnections {
    pub count: u32,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
}

/// Requests that are performed and whose answer is then lost on the way
/// back, as when a proxy or the network fails after Codegen acted: a create
/// made this way leaves a run the client never heard of. Only successful
/// answers are lost (a request refused anyway keeps the rule armed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostAnswers {
    pub count: u32,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// How the answer is lost.
    #[serde(default)]
    pub loss: AnswerLoss,
}

/// What the client sees instead of the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerLoss {
    /// A 502 from "the gateway", as a load balancer answers when the
    /// upstream's reply did not reach it.
    #[default]
    BadGateway,
    /// The connection closes with no response at all.
    Cut,
}

/// The full fault set. `Default` = no faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability (0..=1) that any API request gets a 500.
    pub error_rate: f64,
    /// Real delay added before every API response.
    #[serde(with = "millis")]
    pub added_latency: Duration,
    /// Forced failures, applied first-match in order.
    pub fail_next: Vec<ForcedFailure>,
    /// Connections dropped before a response is written.
    pub drop_next: Vec<DroppedConnections>,
    /// Requests performed whose answer is then lost.
    pub lose_answer_next: Vec<LostAnswers>,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
