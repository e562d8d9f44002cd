//! Shared helpers: start a simulator and a client wired to it, with retry
//! delays short enough for tests and every detail printed on failure.

use cyrus_codegen_executor::{ClientConfig, CodegenClient, RateLimit, RateLimits, RetryPolicy};
use cyrus_sandbox::codegen::{CodegenSim, SimOptions};
use secrecy::SecretString;
use std::time::Duration;

pub struct Harness {
    pub sim: CodegenSim,
    pub client: CodegenClient,
}

/// Retries quickly: the tests are about *whether* we retry, not how long.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retries: 4,
        max_total_wait: Duration::from_secs(2),
    }
}

pub fn config_for(sim: &CodegenSim) -> ClientConfig {
    let mut config = ClientConfig::new(
        sim.url(),
        sim.org_id(),
        SecretString::from(sim.token().to_string()),
    );
    config.retry = fast_retry();
    config.request_timeout = Duration::from_secs(5);
    // The simulator allows 10 creates a minute; let tests use them at once
    // instead of waiting on our steady-rate refill.
    config.rate_limits.create.burst = 10;
    config
}

/// Limits with tiny windows, so waiting out a 429 "window" takes milliseconds.
pub fn tiny_windows() -> RateLimits {
    let w = |max| RateLimit {
        max,
        per: Duration::from_millis(50),
        burst: max / 2,
    };
    RateLimits {
        create: w(10),
        read: w(60),
        logs: w(60),
    }
}

pub async fn start(opts: SimOptions) -> Harness {
    let sim = CodegenSim::start(opts).await.expect("simulator starts");
    let client = CodegenClient::new(config_for(&sim)).expect("client builds");
    Harness { sim, client }
}

/// Frozen simulated time (advanced explicitly by tests).
pub fn frozen() -> SimOptions {
    SimOptions {
        time_scale: 0.0,
        ..SimOptions::default()
    }
}

impl Harness {
    /// Everything the simulator saw, for failure messages.
    pub fn dump(&self) -> String {
        let control = self.sim.control();
        format!("stats: {:#?}\nruns: {:#?}", control.stats(), control.runs())
    }
}
