//! How a simulator instance is configured.

use std::net::SocketAddr;
use std::time::Duration;

use super::oauth::OAuthApp;
use super::status::SessionTiming;

/// Linear's request and complexity budget (`linear-agent-api.md` §9). The
/// real numbers change; these are what an API key was seen to get.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub requests_per_window: u32,
    pub complexity_per_window: u64,
    pub window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            requests_per_window: 2_500,
            complexity_per_window: 3_000_000,
            window: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinearSimOptions {
    /// `None`: 127.0.0.1 on a free port.
    pub addr: Option<SocketAddr>,
    /// The first organization's static API key, accepted as
    /// `Authorization: <key>` or `Bearer <key>`; it keeps working whatever
    /// happens to OAuth installations.
    pub api_key: String,
    pub webhook_secret: String,
    /// Where webhooks go; settable later through the control API.
    pub webhook_url: Option<String>,
    pub agent_user_id: String,
    /// The app's display name (used in the session root comment).
    pub agent_name: String,
    pub organization_id: String,
    pub organization_name: String,
    pub organization_url_key: String,
    /// The default OAuth app (its client id is the `oauthClientId` of every
    /// webhook). More apps can be registered through the control API.
    pub oauth_app: OAuthApp,
    /// How fast the OAuth clock (token and code lifetimes) runs: 1 = real
    /// time, 0 = frozen (only `advance` moves it).
    pub time_scale: f64,
    /// Delays before retries 1, 2, 3: Linear's ~1 min, 1 h, 6 h.
    pub webhook_retry_delays: Vec<Duration>,
    /// A receiver slower than this failed the attempt (Linear: 5 s).
    pub webhook_timeout: Duration,
    pub session_timing: SessionTiming,
    pub rate_limits: RateLimits,
}

impl Default for LinearSimOptions {
    fn default() -> Self {
        LinearSimOptions {
            addr: None,
            api_key: "lin_api_sandbox0000000000000000000000000000000".into(),
            webhook_secret: "lin_wh_sandbox_secret".into(),
            webhook_url: None,
            agent_user_id: "5d2f7b1e-8c4a-4f3b-9e6d-2a1c0b9e8f7d".into(),
            agent_name: "cyrus".into(),
            organization_id: "0b6c2a54-3f0e-4c1e-9a55-7f1d2e8c9a01".into(),
            organization_name: "Acme".into(),
            organization_url_key: "acme".into(),
            oauth_app: OAuthApp::default(),
            time_scale: 1.0,
            webhook_retry_delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(3600),
                Duration::from_secs(6 * 3600),
            ],
            webhook_timeout: Duration::from_secs(5),
            session_timing: SessionTiming::default(),
            rate_limits: RateLimits::default(),
        }
    }
}

impl LinearSimOptions {
    /// Divides every Linear timing (webhook retries and timeout, the 10 s
    /// unresponsive and 30 min stale thresholds) by `factor`, and runs the
    /// OAuth clock `factor` times faster, so tests see an hour of Linear
    /// behaviour in milliseconds.
    pub fn time_scaled(mut self, factor: u32) -> Self {
        let factor = factor.max(1);
        self.time_scale *= f64::from(factor);
        self.webhook_retry_delays = self
            .webhook_retry_delays
            .iter()
            .map(|d| *d / factor)
            .collect();
        self.webhook_timeout /= factor;
        let scale = |d: chrono::Duration| d / factor as i32;
        self.session_timing.unresponsive_after = scale(self.session_timing.unresponsive_after);
        self.session_timing.stale_after = scale(self.session_timing.stale_after);
        self
    }
}
