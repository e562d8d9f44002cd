//! Start-up configuration of the Codegen simulator.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One sliding window: at most `max` requests per `window`, per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub max: u32,
    #[serde(with = "secs")]
    pub window: Duration,
}

/// Per-token rate limits, in simulated time. Defaults are Codegen's documented
/// numbers (codegen-api.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Off switch for tests that hammer the simulator on purpose.
    pub enabled: bool,
    /// `POST …/agent/run`: 10 per minute.
    pub create: Window,
    /// Every other endpoint except logs and `/v1/mcp-providers`: 60 per 30 s.
    pub standard: Window,
    /// Log endpoints: 60 per 60 s.
    pub logs: Window,
}

impl RateLimits {
    /// Codegen's documented limits with every count and every window
    /// multiplied by `factor`: the same average rate, enforced over longer
    /// windows. A client whose own windows are divided by `factor` (for a
    /// time-compressed run) is then at least as strict in every such window,
    /// so a 429 means it exceeded what it was configured to respect.
    pub fn scaled(factor: u32) -> RateLimits {
        let documented = RateLimits::default();
        let scale = |w: Window| Window {
            max: w.max * factor,
            window: w.window * factor,
        };
        RateLimits {
            enabled: documented.enabled,
            create: scale(documented.create),
            standard: scale(documented.standard),
            logs: scale(documented.logs),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            create: Window {
                max: 10,
                window: Duration::from_secs(60),
            },
            standard: Window {
                max: 60,
                window: Duration::from_secs(30),
            },
            logs: Window {
                max: 60,
                window: Duration::from_secs(60),
            },
        }
    }
}

impl RateLimits {
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// A repository the simulated organization has connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimRepo {
    pub id: i64,
    /// `owner/name`.
    pub full_name: String,
}

/// A provider `/v1/mcp-providers` lists (an `oauth_providers` row with
/// `is_mcp = true`); ids are assigned in list order from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMcpProvider {
    pub name: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// Nullable in the contract.
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    /// Nullable free-form object in the contract.
    #[serde(default)]
    pub meta: Option<serde_json::Map<String, serde_json::Value>>,
}

impl SimMcpProvider {
    /// A provider named `name` with plausible OAuth endpoints on
    /// `https://{name}.example`.
    pub fn named(name: &str) -> SimMcpProvider {
        let host = format!("https://{name}.example");
        SimMcpProvider {
            name: name.to_owned(),
            issuer: host.clone(),
            authorization_endpoint: format!("{host}/oauth/authorize"),
            token_endpoint: format!("{host}/oauth/token"),
            default_scopes: Some(vec!["read".to_owned(), "write".to_owned()]),
            meta: None,
        }
    }
}

/// Start-up options. `Default` gives a realistic organization with the
/// documented rate limits on and real-time runs of a few seconds.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; `None` = 127.0.0.1 on a free port.
    pub addr: Option<SocketAddr>,
    /// The one organization the token belongs to.
    pub org_id: i64,
    pub org_name: String,
    /// The valid API token (Bearer). Any other token gets 401.
    pub token: String,
    /// Simulated seconds per real second; 0 freezes time (advance it through
    /// the control API). Default 1.
    pub time_scale: f64,
    pub rate_limits: RateLimits,
    /// Runs that may still be created before 402; `None` = unlimited.
    pub run_allowance: Option<u32>,
    /// Simulated time a default run spends `ACTIVE` before `COMPLETE`.
    pub default_run_duration: Duration,
    /// Progress log entries a default run emits.
    pub default_log_count: u32,
    /// Repositories; empty makes create answer 404 "No repos found".
    pub repos: Vec<SimRepo>,
    /// `(integration_type, active)` pairs for `…/integrations`.
    pub integrations: Vec<(String, bool)>,
    /// What `/v1/mcp-providers` lists.
    pub mcp_providers: Vec<SimMcpProvider>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            addr: None,
            org_id: 42,
            org_name: "Acme".to_owned(),
            token: "sim-codegen-token".to_owned(),
            time_scale: 1.0,
            rate_limits: RateLimits::default(),
            run_allowance: None,
            default_run_duration: Duration::from_secs(5),
            default_log_count: 6,
            repos: vec![
                SimRepo {
                    id: 7,
                    full_name: "acme/web".to_owned(),
                },
                SimRepo {
                    id: 8,
                    full_name: "acme/api".to_owned(),
                },
            ],
            integrations: vec![
                ("github".to_owned(), true),
                ("linear".to_owned(), false),
                ("slack".to_owned(), false),
            ],
            mcp_providers: vec![
                SimMcpProvider::named("linear"),
                SimMcpProvider::named("notion"),
                SimMcpProvider::named("sentry"),
            ],
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_limits_keep_the_average_rate_over_longer_windows() {
        let s = RateLimits::scaled(30);
        assert_eq!(
            s.create,
            Window {
                max: 300,
                window: Duration::from_secs(30 * 60)
            }
        );
        assert_eq!(s.standard.max, 1_800);
        assert_eq!(s.standard.window, Duration::from_secs(900));
        assert_eq!(s.logs.max, 1_800);
        assert_eq!(s.logs.window, Duration::from_secs(1_800));
        assert!(s.enabled);
    }
}
