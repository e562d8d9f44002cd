//! Faults a test can inject into the GraphQL endpoint, and request counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultKind {
    /// Linear's HTTP 400 `RATELIMITED` answer.
    RateLimited,
    /// An HTTP 5xx with an internal-error body.
    ServerError { status: u16 },
    /// Delay the answer (the request then proceeds normally).
    Latency { millis: u64 },
    /// HTTP 401 `AUTHENTICATION_ERROR` even with a good key.
    AuthError,
}

/// A fault applied to the next `times` matching requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub times: u32,
    /// Only requests whose operation (name, else first root field) is this.
    #[serde(default)]
    pub operation: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            times: 1,
            operation: None,
        }
    }
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }
    pub fn on(mut self, operation: &str) -> Fault {
        self.operation = Some(operation.into());
        self
    }
}

/// Takes the first pending fault matching `operation`, using up one of its
/// `times`.
pub fn take_fault(faults: &mut Vec<Fault>, operation: &str) -> Option<FaultKind> {
    let idx = faults
        .iter()
        .position(|f| f.times > 0 && f.operation.as_deref().is_none_or(|o| o == operation))?;
    let kind = faults[idx].kind.clone();
    faults[idx].times -= 1;
    if faults[idx].times == 0 {
        faults.remove(idx);
    }
    Some(kind)
}

/// GraphQL requests received (every request, failed ones included).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    pub total: u64,
    pub by_operation: BTreeMap<String, u64>,
    /// Requests that touched a session directly or through its issue.
    pub by_session: BTreeMap<String, u64>,
}
