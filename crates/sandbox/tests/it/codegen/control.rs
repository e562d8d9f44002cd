//! The `/_control` HTTP API mirrors the in-process control.

use serde_json::json;

use super::{frozen, start};

#[tokio::test]
async fn http_control_scripts_advances_faults_and_reports() {
    let (sim, api) = start(frozen()).await;
    let ctl = |p: &str| format!("{}/_control{p}", api.base);
    let http = &api.http;

    let r = http
        .post(ctl("/script/next"))
        .json(&json!({"outcome": "OUT_OF_TOKENS", "duration": "2m", "prs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = api
        .create(json!({"prompt": "x", "metadata": {"k": "v"}}))
        .await
        .expect(200)["id"]
        .as_i64()
        .unwrap();
    let r = http
        .post(ctl("/clock/advance"))
        .json(&json!({"seconds": 120}))
        .send()
        .await
        .unwrap();
    let clock: serde_json::Value = r.json().await.unwrap();
    assert_eq!(clock["now_ms"], 120_000, "{clock}");
    assert_eq!(api.get_run(id).await.expect(200)["status"], "OUT_OF_TOKENS");

    let runs: serde_json::Value = http
        .get(ctl("/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs[0]["id"], id, "{runs}");
    assert_eq!(runs[0]["metadata"], json!({"k": "v"}));
    assert_eq!(
        runs[0]["pull_request_urls"].as_array().unwrap().len(),
        1,
        "{runs}"
    );

    let r = http
        .put(ctl("/faults"))
        .json(&json!({"fail_next": [{"status": 502, "count": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    api.get("/v1/users/me").await.expect(502);
    let bad = http
        .put(ctl("/faults"))
        .json(&json!({"error_rate": 3.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let r = http
        .post(ctl("/allowance"))
        .json(&json!({"remaining": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    api.create(json!({"prompt": "y"})).await.expect(402);

    let stats: serde_json::Value = http
        .get(ctl("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["create_run"], 2, "{stats}");
    assert_eq!(stats["requests"]["users_me"], 1, "{stats}");
    // Control calls are not API requests.
    assert!(stats["requests"].get("runs").is_none());
    sim.shutdown().await;
}
