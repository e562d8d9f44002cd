//! `mcpServers` checked against the Codegen simulator: `cyrus doctor`,
//! `cyrus mcp list` and `cyrus codegen setup`.

use crate::operator::{config, fill, run, sim};
use crate::support::write;
use serde_json::{Value, json};
use std::path::Path;

/// Sets `repositories[0].mcpServers` in the config at `path`.
fn name_servers(path: &Path, servers: &[&str]) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["repositories"][0]["mcpServers"] = json!(servers);
    std::fs::write(path, v.to_string()).unwrap();
}

fn check(report: &Value, name: &str) -> Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check\n{report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_inactive_integration_and_an_unknown_server() {
    let sim = sim().await;
    // Sentry is one of the simulator's MCP providers; the organization
    // connected it, but the integration is inactive.
    sim.control().set_integration("sentry", false);
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    fill(&store_url, &[]).await;
    name_servers(&path, &["github", "sentry", "jira"]);
    let path_s = path.to_str().unwrap();

    let out = run(home.path(), &["doctor", "--config", path_s, "--json"], &[]).await;
    let report = out.json();
    let mcp = check(&report, "mcp:web");
    assert_eq!(mcp["status"], "warn", "{out}");
    let detail = mcp["detail"].as_str().unwrap();
    assert!(detail.contains("sentry (inactive)"), "{out}");
    assert!(detail.contains("jira (not offered by Codegen)"), "{out}");
    assert!(!detail.contains("github"), "github is active: {out}");
    let fix = mcp["fix"].as_str().unwrap();
    assert!(
        fix.contains(
            "sentry integration is inactive; reconnect it in Codegen's integration settings"
        ),
        "{out}"
    );
    assert!(fix.contains("repositories[0].mcpServers"), "{out}");
    assert!(
        fix.contains("offered: linear, notion, sentry, github"),
        "{out}"
    );

    // The text form shows the same, as a warning with its fix.
    let text = run(home.path(), &["doctor", "--config", path_s], &[]).await;
    text.assert_stdout_contains("! mcp:web")
        .assert_stdout_contains("sentry (inactive)")
        .assert_stdout_contains("fix:");

    // Activated, and the unknown name dropped: the check passes.
    sim.control().set_integration("sentry", true);
    name_servers(&path, &["github", "sentry"]);
    let out = run(home.path(), &["doctor", "--config", path_s, "--json"], &[]).await;
    let mcp = check(&out.json(), "mcp:web");
    assert_eq!(mcp["status"], "pass", "{out}");
    assert_eq!(mcp["detail"], "github, sentry active at Codegen", "{out}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_mcp_servers_has_no_mcp_check() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    fill(&store_url, &[]).await;
    let out = run(
        home.path(),
        &["doctor", "--config", path.to_str().unwrap(), "--json"],
        &[],
    )
    .await;
    let report = out.json();
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["check"].as_str().unwrap().starts_with("mcp")),
        "{out}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_list_shows_what_codegen_offers_and_who_uses_it() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, _) = config(home.path(), &sim, sim.token());
    name_servers(&path, &["Linear", "github", "jira"]);
    let path_s = path.to_str().unwrap();

    let out = run(
        home.path(),
        &["mcp", "list", "--config", path_s, "--json"],
        &[],
    )
    .await;
    out.assert_code(0);
    let v = out.json();
    assert_eq!(
        v["organization"],
        json!({"id": 42, "name": "Acme"}),
        "{out}"
    );
    let server = |name: &str| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}\n{out}"))
    };
    assert_eq!(
        server("linear"),
        json!({"name": "linear", "mcp_provider": true, "integration": true,
               "status": "inactive", "used_by": ["web"]})
    );
    assert_eq!(
        server("github"),
        json!({"name": "github", "mcp_provider": false, "integration": true,
               "status": "active", "used_by": ["web"]})
    );
    assert_eq!(
        server("notion"),
        json!({"name": "notion", "mcp_provider": true, "integration": false,
               "status": "not_connected", "used_by": []})
    );
    assert_eq!(
        server("jira"),
        json!({"name": "jira", "mcp_provider": false, "integration": false,
               "status": "not_offered", "used_by": ["web"]})
    );
    let names: Vec<_> = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["linear", "notion", "sentry", "github", "slack", "jira"]
    );

    let text = run(home.path(), &["mcp", "list", "--config", path_s], &[]).await;
    text.assert_code(0)
        .assert_stdout_contains("Codegen organization 42 (Acme): 3 MCP providers, 3 integrations")
        .assert_stdout_contains("NAME")
        .assert_stdout_contains("USED BY")
        .assert_stdout_contains(
            "! web: runs cannot use Linear (inactive), jira (not offered by Codegen)",
        )
        .assert_stdout_contains("Codegen's own Linear bot");

    // A wrong token is explained, exit 1.
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["codegen"]["apiToken"] = json!("wrong");
    std::fs::write(&path, cfg.to_string()).unwrap();
    run(home.path(), &["mcp", "list", "--config", path_s], &[])
        .await
        .assert_code(1)
        .assert_stderr_contains("codegen.apiToken");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_warns_about_mcp_servers_codegen_cannot_serve() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let path = write(
        home.path(),
        "config.json",
        r#"{"repositories": [{"id": "web", "name": "web", "linearWorkspaceId": "org-1",
            "mcpServers": ["github", "notion"]}]}"#,
    );
    let org = sim.org_id().to_string();
    let url = sim.url();
    let out = run(
        home.path(),
        &[
            "codegen",
            "setup",
            "--non-interactive",
            "--config",
            &path,
            "--org-id",
            &org,
            "--token-env",
            "CG",
            "--codegen-url",
            &url,
            "--linear-token-env",
            "CG",
            "--webhook-secret-env",
            "CG",
            "--repo-map",
            "web=7",
        ],
        &[("CG", sim.token())],
    )
    .await;
    out.assert_code(0).assert_stderr_contains(
        "repository `web` names MCP servers its runs cannot use: notion (not connected)",
    );
    out.assert_stderr_contains("connect notion in Codegen's integration settings");
    assert!(!out.stderr.contains("github ("), "{out}");
    sim.shutdown().await;
}
