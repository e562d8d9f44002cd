//! Codegen simulator tests, over real HTTP.

mod api;
mod control;
mod faults;
mod schema;
mod sdk;
mod standalone;

use std::time::Duration;

use cyrus_sandbox::codegen::{CodegenSim, RateLimits, SimOptions};
use serde_json::Value;

/// A response kept whole so every assertion can print it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status and returns the JSON body, showing everything otherwise.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }
}

/// A thin client for the simulator with the simulator's credentials.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub org: i64,
}

impl Api {
    pub fn new(sim: &CodegenSim) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: sim.url(),
            token: sim.token().to_owned(),
            org: sim.org_id(),
        }
    }

    pub fn org_path(&self, rest: &str) -> String {
        format!("/v1/organizations/{}{rest}", self.org)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request reaches the simulator");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&body),
        )
        .await
    }

    pub async fn create(&self, body: Value) -> Resp {
        self.post(&self.org_path("/agent/run"), body).await
    }

    pub async fn get_run(&self, id: i64) -> Resp {
        self.get(&self.org_path(&format!("/agent/run/{id}"))).await
    }
}

/// Frozen clock (time moves only when a test advances it), no rate limits.
pub fn frozen() -> SimOptions {
    SimOptions {
        time_scale: 0.0,
        rate_limits: RateLimits::disabled(),
        ..SimOptions::default()
    }
}

pub async fn start(opts: SimOptions) -> (CodegenSim, Api) {
    let sim = CodegenSim::start(opts).await.expect("simulator starts");
    let api = Api::new(&sim);
    (sim, api)
}

pub const LONG: Duration = Duration::from_secs(3600);
