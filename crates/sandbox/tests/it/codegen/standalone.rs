//! `cyrus_sandbox::standalone`: the info line points at a working simulator.

use cyrus_sandbox::standalone::{Standalone, StandaloneOptions};

#[tokio::test]
async fn info_line_carries_working_urls_and_credentials() {
    let sims = Standalone::start(StandaloneOptions::default())
        .await
        .expect("starts");
    let info = sims.info();
    let url = info["codegen_url"].as_str().expect("codegen_url");
    let token = info["codegen_token"].as_str().expect("codegen_token");
    let org = info["codegen_org_id"].as_i64().expect("codegen_org_id");
    let me = reqwest::Client::new()
        .get(format!("{url}/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "{info}");
    let runs = reqwest::Client::new()
        .get(format!("{url}/v1/organizations/{org}/agent/runs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 200, "{info}");
    assert!(
        info.as_object().unwrap().contains_key("linear_url"),
        "{info}"
    );
    sims.shutdown().await;
}
