use crate::operator::{run, sim};
use crate::support::write;

fn read_json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_interactive_setup_checks_live_and_writes_a_private_config() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    // An existing file with a key setup does not know: it must survive.
    let path = write(
        home.path(),
        "cfg/config.json",
        r#"{"repositories": [{"id": "web", "name": "web", "linearWorkspaceId": "org-1"}],
            "prompt": {"tokenBudget": 9000}, "custom": {"keep": true}}"#,
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
            "CG_TOKEN",
            "--codegen-url",
            &url,
            "--linear-token-env",
            "LIN",
            "--webhook-secret-env",
            "WH",
            "--repo-map",
            "web=8",
            "--max-cost-per-task",
            "3.5",
            "--max-cost-per-day",
            "40",
            "--default-model",
            "claude-sonnet",
        ],
        &[
            ("CG_TOKEN", sim.token()),
            ("LIN", "lin_api_SECRETL"),
            ("WH", "whsec_SECRETW"),
        ],
    )
    .await;
    out.assert_code(0)
        .assert_stderr_contains("Codegen: signed in as")
        .assert_stderr_contains("organization 42 (Acme), 2 repositories")
        .assert_nowhere(sim.token())
        .assert_nowhere("SECRETL");
    let v = read_json(&path);
    assert_eq!(v["codegen"]["orgId"], 42, "{v}");
    assert_eq!(v["codegen"]["apiToken"], sim.token());
    assert_eq!(v["codegen"]["baseUrl"], url.trim_end_matches('/'));
    assert_eq!(v["codegen"]["maxCostPerTask"], 3.5);
    assert_eq!(v["codegen"]["maxCostPerDay"], 40.0);
    assert_eq!(v["codegen"]["defaultModel"], "claude-sonnet");
    assert_eq!(v["repositories"][0]["codegenRepoId"], 8);
    assert_eq!(v["repositories"][0]["linearToken"], "lin_api_SECRETL");
    assert_eq!(v["linear"]["webhookSecret"], "whsec_SECRETW");
    assert_eq!(v["custom"]["keep"], true);
    assert_eq!(v["prompt"]["tokenBudget"], 9000);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Re-running with only a new budget keeps everything else.
    run(
        home.path(),
        &[
            "codegen",
            "setup",
            "--non-interactive",
            "--config",
            &path,
            "--max-cost-per-day",
            "60",
        ],
        &[],
    )
    .await
    .assert_code(0);
    let again = read_json(&path);
    assert_eq!(again["codegen"]["maxCostPerDay"], 60.0);
    assert_eq!(again["codegen"]["apiToken"], sim.token());
    assert_eq!(again["repositories"][0]["codegenRepoId"], 8);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_answers_without_a_terminal_list_the_flags_and_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("new.json");
    let out = run(
        home.path(),
        &["codegen", "setup", "--config", path.to_str().unwrap()],
        &[],
    )
    .await;
    out.assert_code(2)
        .assert_stderr_contains("--org-id ID")
        .assert_stderr_contains("--token-env VAR")
        .assert_stderr_contains("--linear-client-id ID")
        .assert_stderr_contains("--linear-client-secret-env VAR")
        .assert_stderr_contains("--webhook-secret-env VAR")
        .assert_stderr_contains("--repo-map ID=CODEGEN_REPO_ID");
    assert!(!path.exists(), "nothing may be written\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_or_org_or_repo_is_explained_and_nothing_is_written() {
    let sim = sim().await;
    sim.control().set_integration("linear", true);
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.json");
    let path_s = path.to_str().unwrap();
    let url = sim.url();
    let base = |org: &'static str, map: &'static str| {
        vec![
            "codegen",
            "setup",
            "--non-interactive",
            "--config",
            path_s,
            "--org-id",
            org,
            "--token-env",
            "CG",
            "--codegen-url",
            url.as_str(),
            "--linear-token-env",
            "CG",
            "--webhook-secret-env",
            "CG",
            "--repo-map",
            map,
            "--linear-workspace-id",
            "org-1",
        ]
    };
    let out = run(home.path(), &base("42", "web=7"), &[("CG", "wrong-token")]).await;
    out.assert_code(1)
        .assert_stderr_contains("rejected the API token")
        .assert_stderr_contains("codegen.apiToken");
    let out = run(home.path(), &base("999", "web=7"), &[("CG", sim.token())]).await;
    out.assert_code(1).assert_stderr_contains(
        "organization 999 is not one of this token's organizations (42 (Acme))",
    );
    let out = run(
        home.path(),
        &base("42", "web=12345"),
        &[("CG", sim.token())],
    )
    .await;
    out.assert_code(1)
        .assert_stderr_contains("Codegen repository 12345 is not in organization Acme")
        .assert_stderr_contains("7 (acme/web)")
        .assert_stderr_contains("Linear integration is ACTIVE");
    assert!(!path.exists());

    // With a valid answer set, the new repository is added from --repo-map.
    let out = run(home.path(), &base("42", "web=7"), &[("CG", sim.token())]).await;
    out.assert_code(0)
        .assert_stderr_contains("Linear integration is ACTIVE");
    let v = read_json(path_s);
    assert_eq!(v["repositories"][0]["id"], "web", "{v}");
    assert_eq!(v["repositories"][0]["linearWorkspaceId"], "org-1");
    assert_eq!(v["repositories"][0]["codegenRepoId"], 7);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_writes_the_oauth_app_and_hands_over_to_linear_connect() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.json");
    let path_s = path.to_str().unwrap();
    let org = sim.org_id().to_string();
    let url = sim.url();
    let out = run(
        home.path(),
        &[
            "codegen",
            "setup",
            "--non-interactive",
            "--config",
            path_s,
            "--org-id",
            &org,
            "--token-env",
            "CG",
            "--codegen-url",
            &url,
            "--linear-client-id",
            "client-1",
            "--linear-client-secret-env",
            "LCS",
            "--webhook-secret-env",
            "WH",
            "--repo-map",
            "web=7",
        ],
        &[
            ("CG", sim.token()),
            ("LCS", "csecret_SECRETC"),
            ("WH", "whsec_x"),
        ],
    )
    .await;
    out.assert_code(0)
        .assert_stderr_contains(&format!("cyrus linear connect --config {path_s}"))
        .assert_stderr_contains("http://127.0.0.1:8765/oauth/callback")
        .assert_nowhere("SECRETC");
    let v = read_json(path_s);
    assert_eq!(v["linear"]["oauth"]["clientId"], "client-1", "{v}");
    assert_eq!(v["linear"]["oauth"]["clientSecret"], "csecret_SECRETC");
    assert_eq!(
        v["linear"]["oauth"]["redirectUrl"],
        "http://127.0.0.1:8765/oauth/callback"
    );
    // No token and no hand-typed organization id.
    assert!(v["repositories"][0].get("linearToken").is_none(), "{v}");
    assert!(
        v["repositories"][0].get("linearWorkspaceId").is_none(),
        "{v}"
    );
    // What it wrote passes `config check` without warnings.
    let check = run(
        home.path(),
        &["config", "check", "--config", path_s, "--json"],
        &[],
    )
    .await;
    check.assert_code(0);
    assert_eq!(check.json()["warnings"], serde_json::json!([]), "{check}");
    // And `linear connect` takes it from there.
    let connect = run(
        home.path(),
        &["linear", "connect", "--config", path_s, "--print-url"],
        &[],
    )
    .await;
    connect
        .assert_code(0)
        .assert_stdout_contains("client_id=client-1");
    sim.shutdown().await;
}
