//! Every kind of response the simulator gives, success and each error,
//! validated against the response schemas in `codegen-openapi.json`.

use std::time::Duration;

use cyrus_sandbox::codegen::{Endpoint, RateLimits, SimMcpProvider, SimOptions};
use serde_json::{Value, json};

use super::{Resp, frozen, start};

struct Contract {
    doc: Value,
}

impl Contract {
    fn load() -> Option<Contract> {
        let text = cyrus_sandbox::shared::read("contracts/codegen-openapi.json")?;
        Some(Contract {
            doc: serde_json::from_str(&text).expect("openapi is JSON"),
        })
    }

    /// Validates `resp` against the schema the spec gives for `(path, method,
    /// resp.status)`; fails when the spec documents no such response.
    #[track_caller]
    fn check(&self, path: &str, method: &str, resp: &Resp) {
        let status = resp.status.to_string();
        let schema = self.doc["paths"][path][method]["responses"][status.as_str()]["content"]["application/json"]["schema"].clone();
        assert!(
            !schema.is_null(),
            "spec has no {status} JSON response for {method} {path}; body: {}",
            resp.text
        );
        self.check_schema(schema, &format!("{method} {path} -> {status}"), resp);
    }

    #[track_caller]
    fn check_schema(&self, schema: Value, what: &str, resp: &Resp) {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::draft202012::new(&root).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&resp.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: body does not match the spec: {errors:#?}\nbody: {}",
            resp.text
        );
    }

    #[track_caller]
    fn check_ref(&self, name: &str, resp: &Resp) {
        self.check_schema(
            json!({"$ref": format!("#/components/schemas/{name}")}),
            name,
            resp,
        );
    }
}

#[tokio::test]
async fn every_response_kind_matches_the_openapi_schemas() {
    let Some(spec) = Contract::load() else { return };
    let (sim, api) = start(SimOptions {
        rate_limits: RateLimits::default(),
        ..frozen()
    })
    .await;
    let ctl = sim.control();
    const RUN: &str = "/v1/organizations/{org_id}/agent/run";
    const GET: &str = "/v1/organizations/{org_id}/agent/run/{agent_run_id}";
    const LOGS: &str = "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs";
    let org = api.org;

    // Successes, at every stage of a run's life.
    let created = api
        .create(json!({"prompt": "x [sim prs=2 logs=5]", "repo_id": 7, "metadata": {"a": 1}}))
        .await;
    spec.check(RUN, "post", &created);
    let id = created.body["id"].as_i64().unwrap();
    spec.check(GET, "get", &api.get_run(id).await);
    ctl.advance(Duration::from_secs(3));
    spec.check(
        LOGS,
        "get",
        &api.get(&format!(
            "/v1/alpha/organizations/{org}/agent/run/{id}/logs"
        ))
        .await,
    );
    ctl.advance(Duration::from_secs(60));
    let done = api.get_run(id).await;
    assert_eq!(
        done.body["github_pull_requests"].as_array().map(Vec::len),
        Some(2),
        "{}",
        done.text
    );
    spec.check(GET, "get", &done);
    spec.check(
        LOGS,
        "get",
        &api.get(&format!(
            "/v1/alpha/organizations/{org}/agent/run/{id}/logs?reverse=true&limit=2"
        ))
        .await,
    );
    spec.check(
        LOGS,
        "get",
        &api.get(&format!("/v1/organizations/{org}/agent/run/{id}/logs"))
            .await,
    );
    spec.check(
        "/v1/organizations/{org_id}/agent/runs",
        "get",
        &api.get(&api.org_path("/agent/runs?limit=1")).await,
    );
    spec.check(
        "/v1/organizations/{org_id}/agent/run/resume",
        "post",
        &api.post(
            &api.org_path("/agent/run/resume"),
            json!({"agent_run_id": id, "prompt": "more"}),
        )
        .await,
    );
    let stop = api
        .post(
            &format!("/v1/beta/organizations/{org}/agent/run/stop"),
            json!({"agent_run_id": id}),
        )
        .await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    spec.check_ref("AgentRunResponse", &stop);
    for p in ["ban", "unban", "remove-from-pr"] {
        let r = api
            .post(
                &api.org_path(&format!("/agent/run/{p}")),
                json!({"agent_run_id": id}),
            )
            .await;
        spec.check(
            &format!("/v1/organizations/{{org_id}}/agent/run/{p}"),
            "post",
            &r,
        );
    }
    spec.check("/v1/users/me", "get", &api.get("/v1/users/me").await);
    spec.check(
        "/v1/organizations/{org_id}/users",
        "get",
        &api.get(&api.org_path("/users")).await,
    );
    spec.check(
        "/v1/organizations/{org_id}/users/{user_id}",
        "get",
        &api.get(&api.org_path("/users/1")).await,
    );
    spec.check(
        "/v1/organizations",
        "get",
        &api.get("/v1/organizations").await,
    );
    spec.check(
        "/v1/organizations/{org_id}/repos",
        "get",
        &api.get(&api.org_path("/repos")).await,
    );
    spec.check(
        "/v1/organizations/{org_id}/integrations",
        "get",
        &api.get(&api.org_path("/integrations")).await,
    );
    spec.check(
        "/v1/mcp-providers",
        "get",
        &api.get("/v1/mcp-providers").await,
    );
    // The nullable and free-form fields, filled and empty; an inactive and
    // an active integration with a token.
    let mut bare = SimMcpProvider::named("figma");
    bare.default_scopes = None;
    let mut with_meta = SimMcpProvider::named("notion");
    with_meta.meta = json!({"display_name": "Notion"}).as_object().cloned();
    ctl.set_mcp_providers(vec![bare, with_meta]);
    ctl.set_integration("notion", false);
    ctl.set_integration("figma", true);
    spec.check(
        "/v1/mcp-providers",
        "get",
        &api.get("/v1/mcp-providers").await,
    );
    spec.check(
        "/v1/organizations/{org_id}/integrations",
        "get",
        &api.get(&api.org_path("/integrations")).await,
    );
    ctl.set_mcp_providers(Vec::new());
    spec.check(
        "/v1/mcp-providers",
        "get",
        &api.get("/v1/mcp-providers").await,
    );

    // Each documented error.
    spec.check(
        GET,
        "get",
        &api.get("/v1/organizations/9/agent/run/1").await,
    ); // 403
    spec.check(GET, "get", &api.get_run(99_999).await); // 404
    spec.check(
        LOGS,
        "get",
        &api.get(&format!(
            "/v1/alpha/organizations/{org}/agent/run/99999/logs"
        ))
        .await,
    ); // 404
    spec.check(
        "/v1/organizations/{org_id}/users/{user_id}",
        "get",
        &api.get(&api.org_path("/users/5")).await,
    ); // 404
    spec.check(RUN, "post", &api.create(json!({"images": [1]})).await); // 422
    spec.check(GET, "get", &api.get(&api.org_path("/agent/run/nope")).await); // 422
    spec.check(
        "/v1/organizations/{org_id}/agent/runs",
        "get",
        &api.get(&api.org_path("/agent/runs?skip=-1")).await,
    ); // 422
    spec.check(
        LOGS,
        "get",
        &api.get(&format!(
            "/v1/alpha/organizations/{org}/agent/run/{id}/logs?reverse=maybe"
        ))
        .await,
    ); // 422
    ctl.set_run_allowance(Some(0));
    spec.check(RUN, "post", &api.create(json!({"prompt": "y"})).await); // 402
    ctl.set_run_allowance(None);
    ctl.fail_next(429, 1, Some(Endpoint::GetRun));
    let limited = api.get_run(id).await;
    assert_eq!(limited.status, 429);
    spec.check(GET, "get", &limited);
    // The real limiter's 429, on create.
    let mut last = None;
    for _ in 0..11 {
        last = Some(api.create(json!({"prompt": "z"})).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429, "{}", last.text);
    spec.check(RUN, "post", &last);
    sim.shutdown().await;

    let (sim, api) = start(SimOptions {
        repos: vec![],
        ..frozen()
    })
    .await;
    spec.check(RUN, "post", &api.create(json!({"prompt": "x"})).await); // 404, no repos
    sim.shutdown().await;
}
