//! Rate limits and injected faults.

use std::time::Duration;

use cyrus_sandbox::codegen::{AnswerLoss, Endpoint, Faults, RateLimits, SimOptions};
use serde_json::json;

use super::{frozen, start};

#[tokio::test]
async fn create_is_limited_to_ten_per_minute_per_token() {
    let (sim, api) = start(SimOptions {
        rate_limits: RateLimits::default(),
        ..frozen()
    })
    .await;
    for i in 0..10 {
        api.create(json!({"prompt": format!("r{i}")}))
            .await
            .expect(200);
    }
    let limited = api
        .create(json!({"prompt": "one too many"}))
        .await
        .expect(429);
    assert_eq!(
        limited,
        json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429})
    );
    // Reads have their own window.
    api.get(&api.org_path("/agent/runs")).await.expect(200);
    assert_eq!(sim.control().rate_limited_count(), 1);
    assert_eq!(
        sim.control().runs().len(),
        10,
        "a refused create creates nothing"
    );
    sim.control().advance(Duration::from_secs(60));
    api.create(json!({"prompt": "after the window"}))
        .await
        .expect(200);
    assert_eq!(sim.control().request_count(Endpoint::CreateRun), 12);
    sim.shutdown().await;
}

#[tokio::test]
async fn reads_are_limited_to_sixty_per_thirty_seconds() {
    let (sim, api) = start(SimOptions {
        rate_limits: RateLimits::default(),
        ..frozen()
    })
    .await;
    for _ in 0..60 {
        api.get("/v1/users/me").await.expect(200);
    }
    api.get(&api.org_path("/repos")).await.expect(429);
    api.get("/v1/mcp-providers").await.expect(200);
    sim.control().advance(Duration::from_secs(30));
    api.get("/v1/users/me").await.expect(200);
    sim.shutdown().await;
}

#[tokio::test]
async fn allowance_runs_out_with_402() {
    let (sim, api) = start(SimOptions {
        run_allowance: Some(1),
        ..frozen()
    })
    .await;
    api.create(json!({"prompt": "a"})).await.expect(200);
    let body = api.create(json!({"prompt": "b"})).await.expect(402);
    assert_eq!(body["status_code"], 402);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Alloted agent runs"),
        "{body}"
    );
    sim.control().set_run_allowance(None);
    api.create(json!({"prompt": "c"})).await.expect(200);
    sim.shutdown().await;
}

#[tokio::test]
async fn forced_failures_hit_only_their_endpoint_and_run_out() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.fail_next(503, 2, Some(Endpoint::GetRun));
    ctl.fail_next(429, 1, None);
    let id = api.create(json!({"prompt": "a"})).await.expect(429)["status_code"].as_i64();
    assert_eq!(id, Some(429));
    let id = api.create(json!({"prompt": "a"})).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    api.get_run(id).await.expect(503);
    api.get_run(id).await.expect(503);
    api.get_run(id).await.expect(200);
    assert_eq!(ctl.rate_limited_count(), 1);
    assert_eq!(ctl.faults(), Faults::default(), "spent rules are removed");
    sim.shutdown().await;
}

#[tokio::test]
async fn error_rate_one_fails_everything_until_cleared() {
    let (sim, api) = start(frozen()).await;
    sim.control().set_error_rate(1.0).unwrap();
    assert!(sim.control().set_error_rate(1.5).is_err());
    for _ in 0..3 {
        api.get("/v1/users/me").await.expect(500);
    }
    sim.control().clear_faults();
    api.get("/v1/users/me").await.expect(200);
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_gives_the_client_no_response() {
    let (sim, api) = start(frozen()).await;
    sim.control().drop_next(1, Some(Endpoint::CreateRun));
    let err = api
        .http
        .post(format!("{}{}", api.base, api.org_path("/agent/run")))
        .bearer_auth(&api.token)
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .expect_err("the connection is cut before any response");
    assert!(!err.is_status(), "{err:?}");
    assert!(
        sim.control().runs().is_empty(),
        "a dropped create creates nothing"
    );
    // A fresh connection works again.
    let fresh = super::Api {
        http: reqwest::Client::new(),
        ..super::Api::new(&sim)
    };
    fresh.create(json!({"prompt": "x"})).await.expect(200);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_still_creates_the_run() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.lose_next_answer(1, Some(Endpoint::CreateRun), AnswerLoss::BadGateway);
    // A read is not the armed endpoint: it is answered.
    api.get("/v1/users/me").await.expect(200);
    let lost = api
        .create(json!({"prompt": "a", "metadata": {"cyrus_marker": "m-1"}}))
        .await
        .expect(502);
    assert_eq!(lost["status_code"], 502, "{lost}");
    let runs = ctl.runs();
    assert_eq!(runs.len(), 1, "the create was performed: {runs:?}");
    assert_eq!(runs[0].metadata, Some(json!({"cyrus_marker": "m-1"})));
    assert_eq!(ctl.stats().answers_lost, 1);
    // The rule is spent: the next create is answered.
    let id = api.create(json!({"prompt": "b"})).await.expect(200)["id"].as_i64();
    assert_eq!(id, Some(runs[0].id + 1));
    assert_eq!(ctl.faults(), Faults::default(), "spent rules are removed");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_keeps_the_lost_answer_armed() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.fail_next(503, 1, Some(Endpoint::CreateRun));
    ctl.lose_next_answer(1, Some(Endpoint::CreateRun), AnswerLoss::Cut);
    api.create(json!({"prompt": "a"})).await.expect(503);
    assert!(ctl.runs().is_empty());
    let err = api
        .http
        .post(format!("{}{}", api.base, api.org_path("/agent/run")))
        .bearer_auth(&api.token)
        .json(&json!({"prompt": "b"}))
        .send()
        .await
        .expect_err("the connection is cut after the create");
    assert!(!err.is_status(), "{err:?}");
    assert_eq!(ctl.runs().len(), 1, "the create was performed");
    assert_eq!(ctl.stats().answers_lost, 1);
    sim.shutdown().await;
}
