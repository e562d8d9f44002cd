//! Endpoint behaviour: run lifecycle, lists, logs, auth and validation.

use std::time::Duration;

use cyrus_sandbox::codegen::RunScript;
use serde_json::{Value, json};

use super::{LONG, frozen, start};

#[tokio::test]
async fn default_run_goes_active_then_complete_and_echoes_metadata() {
    let (sim, api) = start(frozen()).await;
    let meta = json!({"linear_session_id": "s-1", "issue": "ENG-1"});
    let run = api
        .create(json!({"prompt": "Fix the login", "repo_id": 7, "metadata": meta, "model": "x"}))
        .await
        .expect(200);
    let id = run["id"].as_i64().expect("integer id");
    assert_eq!(run["organization_id"], json!(api.org), "{run}");
    assert_eq!(run["status"], "ACTIVE", "{run}");
    assert_eq!(
        run["web_url"],
        format!("https://codegen.com/agent/trace/{id}")
    );
    assert_eq!(run["metadata"], meta);
    assert_eq!(run["source_type"], "API");
    for banned in ["model", "cost", "tokens", "usage", "cost_usd"] {
        assert!(
            run.get(banned).is_none(),
            "field {banned} must never appear: {run}"
        );
    }

    sim.control().advance(Duration::from_secs(2));
    assert_eq!(api.get_run(id).await.expect(200)["status"], "ACTIVE");
    sim.control().advance(Duration::from_secs(10));
    let done = api.get_run(id).await.expect(200);
    assert_eq!(done["status"], "COMPLETE", "{done}");
    assert!(
        done["result"]
            .as_str()
            .is_some_and(|r| r.contains("Fix the login")),
        "{done}"
    );
    assert!(done["summary"].is_string(), "{done}");
    assert_eq!(done["metadata"], meta);
    sim.shutdown().await;
}

#[tokio::test]
async fn ids_only_increase_and_every_run_is_recorded_once() {
    let (sim, api) = start(frozen()).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            api.create(json!({"prompt": format!("task {i}")}))
                .await
                .expect(200)["id"]
                .as_i64()
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "{ids:?}");
    let runs = sim.control().runs();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(runs[2].prompt, "task 2");
    sim.shutdown().await;
}

#[tokio::test]
async fn prompt_marker_scripts_failure_prs_and_logs() {
    let (sim, api) = start(frozen()).await;
    let run = api
        .create(
            json!({"prompt": "Go [sim outcome=FAILED duration=30s prs=2 logs=3]", "repo_id": 8}),
        )
        .await
        .expect(200);
    let id = run["id"].as_i64().unwrap();
    sim.control().advance(Duration::from_secs(29));
    assert_eq!(api.get_run(id).await.expect(200)["status"], "ACTIVE");
    sim.control().advance(Duration::from_secs(1));
    let done = api.get_run(id).await.expect(200);
    assert_eq!(done["status"], "FAILED", "{done}");
    let prs = done["github_pull_requests"].as_array().expect("PR list");
    assert_eq!(prs.len(), 2, "{done}");
    assert!(
        prs[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://github.com/acme/api/pull/"),
        "{done}"
    );
    let logs = api
        .get(&format!(
            "/v1/alpha/organizations/{}/agent/run/{id}/logs",
            api.org
        ))
        .await
        .expect(200);
    assert_eq!(logs["total_logs"], 4, "3 progress + 1 ERROR: {logs}");
    assert_eq!(logs["logs"][3]["message_type"], "ERROR");
    assert!(logs["logs"][3]["observation"].is_object());
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_marker_is_a_422_naming_the_problem() {
    let (sim, api) = start(frozen()).await;
    let body = api
        .create(json!({"prompt": "[sim outcom=FAILED]"}))
        .await
        .expect(422);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "prompt"]),
        "{body}"
    );
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("outcom"),
        "{body}"
    );
    assert!(sim.control().runs().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn scripted_never_finishing_lowercase_run_and_unknown_status() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.script_next_run(RunScript {
        never_finish: true,
        running_status: Some("in_progress".into()),
        initial_status: Some("PENDING".into()),
        ..Default::default()
    });
    ctl.script_next_run(RunScript {
        outcome: Some("WIBBLE".into()),
        ..Default::default()
    });
    let a = api.create(json!({"prompt": "a"})).await.expect(200);
    assert_eq!(a["status"], "PENDING");
    let b = api.create(json!({"prompt": "b"})).await.expect(200);
    ctl.advance(LONG);
    assert_eq!(
        api.get_run(a["id"].as_i64().unwrap()).await.expect(200)["status"],
        "in_progress"
    );
    assert_eq!(
        api.get_run(b["id"].as_i64().unwrap()).await.expect(200)["status"],
        "WIBBLE"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn script_by_run_id_applies_to_creation_and_resume() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.script_run(
        1001,
        RunScript {
            outcome: Some("PAUSED".into()),
            ..Default::default()
        },
    );
    let id = api.create(json!({"prompt": "first"})).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    assert_eq!(id, 1001);
    ctl.advance(LONG);
    assert_eq!(api.get_run(id).await.expect(200)["status"], "PAUSED");
    ctl.script_run(
        id,
        RunScript {
            outcome: Some("TIMEOUT".into()),
            ..Default::default()
        },
    );
    let resumed = api
        .post(
            &api.org_path("/agent/run/resume"),
            json!({"agent_run_id": id, "prompt": "go on"}),
        )
        .await
        .expect(200);
    assert_eq!(resumed["status"], "ACTIVE", "{resumed}");
    ctl.advance(LONG);
    assert_eq!(api.get_run(id).await.expect(200)["status"], "TIMEOUT");
    assert_eq!(ctl.run(id).unwrap().follow_ups, vec!["go on".to_owned()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_continues_a_complete_run_and_stop_cancels() {
    let (sim, api) = start(frozen()).await;
    let id = api.create(json!({"prompt": "one"})).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    sim.control().advance(LONG);
    assert_eq!(api.get_run(id).await.expect(200)["status"], "COMPLETE");
    let r = api
        .post(
            &api.org_path("/agent/run/resume"),
            json!({"agent_run_id": id, "prompt": "also do two"}),
        )
        .await
        .expect(200);
    assert_eq!(r["status"], "ACTIVE");
    assert_eq!(r["result"], json!(null));
    sim.control().advance(LONG);
    let done = api.get_run(id).await.expect(200);
    assert!(
        done["result"].as_str().unwrap().contains("also do two"),
        "{done}"
    );

    let id2 = api
        .create(json!({"prompt": "long [sim never_finish]"}))
        .await
        .expect(200)["id"]
        .as_i64()
        .unwrap();
    let stopped = api
        .post(
            &format!("/v1/beta/organizations/{}/agent/run/stop", api.org),
            json!({"agent_run_id": id2}),
        )
        .await
        .expect(200);
    assert_eq!(stopped["status"], "CANCELLED", "{stopped}");
    sim.control().advance(LONG);
    assert_eq!(api.get_run(id2).await.expect(200)["status"], "CANCELLED");
    // Stopping a finished run leaves its status alone.
    let again = api
        .post(
            &format!("/v1/beta/organizations/{}/agent/run/stop", api.org),
            json!({"agent_run_id": id}),
        )
        .await
        .expect(200);
    assert_eq!(again["status"], "COMPLETE");
    sim.shutdown().await;
}

#[tokio::test]
async fn ban_and_remove_from_pr_stop_the_run_and_unban_clears_the_flag() {
    let (sim, api) = start(frozen()).await;
    let a = api.create(json!({"prompt": "a"})).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    let b = api.create(json!({"prompt": "b"})).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    api.post(&api.org_path("/agent/run/ban"), json!({"agent_run_id": a}))
        .await
        .expect(200);
    api.post(
        &api.org_path("/agent/run/remove-from-pr"),
        json!({"agent_run_id": b}),
    )
    .await
    .expect(200);
    let ctl = sim.control();
    assert!(ctl.run(a).unwrap().banned && ctl.run(b).unwrap().banned);
    assert_eq!(ctl.run(a).unwrap().status, "CANCELLED");
    api.post(
        &api.org_path("/agent/run/unban"),
        json!({"agent_run_id": a}),
    )
    .await
    .expect(200);
    assert!(!ctl.run(a).unwrap().banned);
    api.post(
        &api.org_path("/agent/run/ban"),
        json!({"agent_run_id": 999_999}),
    )
    .await
    .expect(404);
    sim.shutdown().await;
}

#[tokio::test]
async fn list_is_newest_first_and_paginated() {
    let (sim, api) = start(frozen()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            api.create(json!({"prompt": format!("p{i}")}))
                .await
                .expect(200)["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let page = api
        .get(&api.org_path("/agent/runs?skip=2&limit=2&source_type=API"))
        .await
        .expect(200);
    assert_eq!(page["total"], 5, "{page}");
    assert_eq!(page["page"], 2);
    assert_eq!(page["size"], 2);
    assert_eq!(page["pages"], 3);
    let got: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    let slack = api
        .get(&api.org_path("/agent/runs?source_type=SLACK"))
        .await
        .expect(200);
    assert_eq!(slack["total"], 0, "{slack}");
    assert_eq!(slack["pages"], 0);
    let bad = api
        .get(&api.org_path("/agent/runs?limit=101"))
        .await
        .expect(422);
    assert_eq!(bad["detail"][0]["loc"], json!(["query", "limit"]), "{bad}");
    api.get(&api.org_path("/agent/runs?source_type=NOPE"))
        .await
        .expect(422);
    sim.shutdown().await;
}

#[tokio::test]
async fn logs_grow_over_time_on_both_paths_with_paging_and_reverse() {
    let (sim, api) = start(frozen()).await;
    let id = api
        .create(json!({"prompt": "x [sim logs=8 duration=90s]"}))
        .await
        .expect(200)["id"]
        .as_i64()
        .unwrap();
    let alpha = format!("/v1/alpha/organizations/{}/agent/run/{id}/logs", api.org);
    let plain = format!("/v1/organizations/{}/agent/run/{id}/logs", api.org);
    assert_eq!(api.get(&alpha).await.expect(200)["total_logs"], 0);
    sim.control().advance(Duration::from_secs(45));
    let mid = api.get(&plain).await.expect(200)["total_logs"]
        .as_u64()
        .unwrap();
    assert!((1..8).contains(&mid), "half-way through, some logs: {mid}");
    sim.control().advance(Duration::from_secs(45));
    let all = api.get(&alpha).await.expect(200);
    assert_eq!(all["total_logs"], 9, "{all}");
    assert_eq!(all["logs"][8]["message_type"], "FINAL_ANSWER");
    let kinds: Vec<&str> = all["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"ACTION") && kinds.contains(&"PLAN_EVALUATION"),
        "{kinds:?}"
    );
    for l in all["logs"].as_array().unwrap() {
        match l["message_type"].as_str().unwrap() {
            "ACTION" => assert!(
                l["tool_name"].is_string()
                    && l["tool_input"].is_object()
                    && l["tool_output"].is_object(),
                "{l}"
            ),
            "PLAN_EVALUATION" => assert!(l["thought"].is_string(), "{l}"),
            _ => {}
        }
    }
    let rev = api
        .get(&format!("{alpha}?reverse=true&skip=0&limit=3"))
        .await
        .expect(200);
    assert_eq!(rev["logs"][0]["message_type"], "FINAL_ANSWER", "{rev}");
    assert_eq!(rev["logs"].as_array().unwrap().len(), 3);
    assert_eq!(rev["pages"], 3);
    assert_eq!(
        api.get(&format!("{alpha}?skip=8")).await.expect(200)["logs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn auth_org_and_not_found_errors() {
    let (sim, api) = start(frozen()).await;
    let url = format!("{}/v1/users/me", api.base);
    let none = api.send(api.http.get(&url)).await;
    assert_eq!(none.status, 401, "{}", none.text);
    let wrong = api.send(api.http.get(&url).bearer_auth("nope")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let lower = api
        .send(
            api.http
                .get(&url)
                .header("authorization", format!("bearer {}", api.token)),
        )
        .await;
    assert_eq!(lower.status, 200, "{}", lower.text);

    let other = api
        .get("/v1/organizations/7/agent/run/1001")
        .await
        .expect(403);
    assert_eq!(
        other,
        json!({"message": "You do not have access to this organization.", "status_code": 403})
    );
    let missing = api.get_run(424_242).await.expect(404);
    assert_eq!(
        missing,
        json!({"message": "Agent run not found.", "status_code": 404})
    );
    let not_int = api.get(&api.org_path("/agent/run/abc")).await.expect(422);
    assert_eq!(
        not_int["detail"][0]["loc"],
        json!(["path", "agent_run_id"]),
        "{not_int}"
    );
    api.get(&api.org_path("/users/99")).await.expect(404);
    api.get(&api.org_path("/users/1")).await.expect(200);
    sim.shutdown().await;
}

#[tokio::test]
async fn create_validation_reports_every_field() {
    let (sim, api) = start(frozen()).await;
    let missing = api
        .create(json!({"repo_id": "x", "agent_type": "gpt"}))
        .await
        .expect(422);
    let locs: Vec<&serde_json::Value> = missing["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"])
        .collect();
    assert!(locs.contains(&&json!(["body", "prompt"])), "{missing}");
    assert!(locs.contains(&&json!(["body", "repo_id"])), "{missing}");
    assert!(locs.contains(&&json!(["body", "agent_type"])), "{missing}");
    let raw = api
        .send(
            api.http
                .post(format!("{}{}", api.base, api.org_path("/agent/run")))
                .bearer_auth(&api.token)
                .body("{not json"),
        )
        .await;
    assert_eq!(raw.status, 422, "{}", raw.text);
    assert_eq!(raw.body["detail"][0]["type"], "json_invalid");
    api.create(json!({"prompt": "x", "repo_id": 12345}))
        .await
        .expect(404);
    assert!(sim.control().runs().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn org_with_no_repos_refuses_create() {
    let (sim, api) = start(super::SimOptions {
        repos: vec![],
        ..frozen()
    })
    .await;
    let body = api.create(json!({"prompt": "x"})).await.expect(404);
    assert_eq!(
        body["message"],
        "No repos found in the organization. Please add some repos and try again."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn directory_endpoints_answer() {
    let (sim, api) = start(frozen()).await;
    let orgs = api.get("/v1/organizations").await.expect(200);
    assert_eq!(orgs["items"][0]["id"], json!(api.org), "{orgs}");
    let repos = api.get(&api.org_path("/repos")).await.expect(200);
    assert_eq!(repos["items"][0]["full_name"], "acme/web", "{repos}");
    sim.control().set_integration("linear", true);
    let ints = api.get(&api.org_path("/integrations")).await.expect(200);
    assert_eq!(ints["total_active_integrations"], 2, "{ints}");
    let mcp = api.get("/v1/mcp-providers").await.expect(200);
    assert!(mcp.is_array(), "{mcp}");
    sim.shutdown().await;
}

#[tokio::test]
async fn mcp_providers_and_integrations_follow_the_control_api() {
    let (sim, api) = start(frozen()).await;
    let ctl = sim.control();
    ctl.set_mcp_providers(vec![
        cyrus_sandbox::codegen::SimMcpProvider::named("notion"),
        cyrus_sandbox::codegen::SimMcpProvider::named("sentry"),
    ]);
    let mcp = api.get("/v1/mcp-providers").await.expect(200);
    let names: Vec<_> = mcp
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![(1, "notion".to_owned()), (2, "sentry".to_owned())]
    );
    assert!(
        mcp.as_array().unwrap().iter().all(|p| p["is_mcp"] == true),
        "{mcp}"
    );

    ctl.set_integration("notion", false);
    ctl.remove_integration("slack");
    let ints = api.get(&api.org_path("/integrations")).await.expect(200);
    let kinds: Vec<_> = ints["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["integration_type"].as_str().unwrap().to_owned(),
                i["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("github".to_owned(), true),
            ("linear".to_owned(), false),
            ("notion".to_owned(), false)
        ]
    );
    assert_eq!(ints["total_active_integrations"], 1, "{ints}");

    // The same over HTTP, for `cyrus sandbox` users.
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}/_control/mcp-providers", sim.url()))
        .json(&json!([{"name": "figma", "issuer": "https://figma.example",
            "authorization_endpoint": "https://figma.example/a", "token_endpoint": "https://figma.example/t"}]))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{put:?}");
    let del = http
        .delete(format!("{}/_control/integrations/notion", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(del.status().is_success(), "{del:?}");
    let mcp = api.get("/v1/mcp-providers").await.expect(200);
    assert_eq!(mcp[0]["name"], "figma", "{mcp}");
    assert_eq!(mcp[0]["default_scopes"], Value::Null, "{mcp}");
    let ints = api.get(&api.org_path("/integrations")).await.expect(200);
    assert!(
        !ints.to_string().contains("notion"),
        "removed integration still listed: {ints}"
    );
    sim.shutdown().await;
}
