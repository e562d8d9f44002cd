//! In-process control of a running simulator; `/_control` mirrors it over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::endpoint::Endpoint;
use super::faults::{AnswerLoss, DroppedConnections, Faults, ForcedFailure, LostAnswers};
use super::options::{RateLimits, SimMcpProvider};
use super::script::RunScript;
use super::state::Shared;

/// Cheap-to-clone handle on a simulator's state.
#[derive(Clone)]
pub struct CodegenControl {
    pub(crate) shared: Arc<Shared>,
}

/// What a test can see of one created run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub prompt: String,
    /// Prompts sent through resume, in order.
    pub follow_ups: Vec<String>,
    pub metadata: Option<Value>,
    pub repo_id: Option<i64>,
    pub model: Option<String>,
    pub agent_type: Option<String>,
    /// The images sent with the create request.
    pub images: Vec<String>,
    /// Status at the current simulated time.
    pub status: String,
    pub pull_request_urls: Vec<String>,
    pub banned: bool,
    /// Simulated milliseconds at creation (the clock `now()` reads), so
    /// tests can check creation rates in the simulator's own windows.
    pub created_ms: u64,
}

/// Request counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub requests: BTreeMap<Endpoint, u64>,
    /// 429s served, whether from the limiter or forced.
    pub rate_limited: u64,
    /// Successful answers lost on purpose (`lose_answer_next`).
    pub answers_lost: u64,
}

/// Bad input to the control API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("invalid control request: {0}")]
    BadRequest(String),
    #[error("error rate must be within 0..=1, got {0}")]
    ErrorRate(f64),
    #[error("time scale must be finite and >= 0, got {0}")]
    TimeScale(f64),
}

impl CodegenControl {
    /// Replaces every fault setting at once.
    pub fn set_faults(&self, faults: Faults) -> Result<(), ControlError> {
        if !(0.0..=1.0).contains(&faults.error_rate) {
            return Err(ControlError::ErrorRate(faults.error_rate));
        }
        self.shared.lock().faults = faults;
        Ok(())
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    /// Probability (0..=1) of a 500 on any API request.
    pub fn set_error_rate(&self, rate: f64) -> Result<(), ControlError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ControlError::ErrorRate(rate));
        }
        self.shared.lock().faults.error_rate = rate;
        Ok(())
    }

    /// Real delay added before every API response.
    pub fn set_added_latency(&self, latency: Duration) {
        self.shared.lock().faults.added_latency = latency;
    }

    /// The next `count` requests (to `endpoint`, or any) answer `status`
    /// with Codegen's body for it: 5xx, 429, 402, 403, 404…
    pub fn fail_next(&self, status: u16, count: u32, endpoint: Option<Endpoint>) {
        self.shared.lock().faults.fail_next.push(ForcedFailure {
            status,
            count,
            endpoint,
        });
    }

    /// The next `count` requests (to `endpoint`, or any) get their
    /// connection cut with no response.
    pub fn drop_next(&self, count: u32, endpoint: Option<Endpoint>) {
        self.shared
            .lock()
            .faults
            .drop_next
            .push(DroppedConnections { count, endpoint });
    }

    /// The next `count` successful requests (to `endpoint`, or any) are
    /// performed, and then their answer is lost as `loss` says: for a create,
    /// the run exists at Codegen but the client never learns its id.
    pub fn lose_next_answer(&self, count: u32, endpoint: Option<Endpoint>, loss: AnswerLoss) {
        self.shared
            .lock()
            .faults
            .lose_answer_next
            .push(LostAnswers {
                count,
                endpoint,
                loss,
            });
    }

    /// Runs that may still be created before 402; `None` = unlimited.
    pub fn set_run_allowance(&self, remaining: Option<u32>) {
        self.shared.lock().allowance = remaining;
    }

    pub fn set_rate_limits(&self, limits: RateLimits) {
        let mut inner = self.shared.lock();
        inner.rate_limits = limits;
        inner.limiter.reset();
    }

    /// Marks an integration (`github`, `linear`, …) active or not.
    pub fn set_integration(&self, kind: &str, active: bool) {
        let mut inner = self.shared.lock();
        match inner.integrations.iter_mut().find(|(k, _)| k == kind) {
            Some(entry) => entry.1 = active,
            None => inner.integrations.push((kind.to_owned(), active)),
        }
    }

    /// Removes an integration from `…/integrations` (the organization never
    /// connected it).
    pub fn remove_integration(&self, kind: &str) {
        self.shared.lock().integrations.retain(|(k, _)| k != kind);
    }

    /// Replaces what `/v1/mcp-providers` lists.
    pub fn set_mcp_providers(&self, providers: Vec<SimMcpProvider>) {
        self.shared.lock().mcp_providers = providers;
    }

    pub fn mcp_providers(&self) -> Vec<SimMcpProvider> {
        self.shared.lock().mcp_providers.clone()
    }

    /// Queues a script for the next created run (FIFO).
    pub fn script_next_run(&self, script: RunScript) {
        self.shared.lock().next_scripts.push_back(script);
    }

    /// Scripts run `id`: its creation if it does not exist yet, otherwise
    /// its next resume.
    pub fn script_run(&self, id: i64, script: RunScript) {
        self.shared.lock().run_scripts.insert(id, script);
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    pub fn set_time_scale(&self, scale: f64) -> Result<(), ControlError> {
        if !scale.is_finite() || scale < 0.0 {
            return Err(ControlError::TimeScale(scale));
        }
        self.shared.clock.set_scale(scale);
        Ok(())
    }

    /// Simulated time since start.
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.shared.clock.now())
    }

    /// Every run created so far, oldest first, settled to the current time.
    pub fn runs(&self) -> Vec<RunRecord> {
        let mut inner = self.shared.lock();
        self.shared.settle_all(&mut inner);
        inner
            .runs
            .values()
            .map(|r| RunRecord {
                id: r.id,
                prompt: r.prompt.clone(),
                follow_ups: r.follow_ups.clone(),
                metadata: r.metadata.clone(),
                repo_id: r.repo_id,
                model: r.model.clone(),
                agent_type: r.agent_type.clone(),
                images: r.images.clone(),
                status: r.status.clone(),
                pull_request_urls: r.prs.iter().map(|p| p.url.clone()).collect(),
                banned: r.banned,
                created_ms: r.created_ms,
            })
            .collect()
    }

    pub fn run(&self, id: i64) -> Option<RunRecord> {
        self.runs().into_iter().find(|r| r.id == id)
    }

    pub fn stats(&self) -> Stats {
        let inner = self.shared.lock();
        Stats {
            requests: inner.requests.clone(),
            rate_limited: inner.served_429,
            answers_lost: inner.answers_lost,
        }
    }

    /// Requests received for one endpoint (including faulted and refused ones).
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.shared
            .lock()
            .requests
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// 429s served so far.
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.lock().served_429
    }
}
