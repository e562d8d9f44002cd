use crate::support::{GOOD, SECRETS, cyrus, write};

#[test]
fn valid_config_prints_redacted_summary() {
    let home = tempfile::tempdir().unwrap();
    let path = write(home.path(), "c.json", GOOD);
    let out = cyrus(home.path(), &["config", "check", "--config", &path], &[]);
    out.assert_code(0)
        .assert_stdout_contains("Configuration OK")
        .assert_stdout_contains("[redacted]")
        .assert_stdout_contains("org 123")
        .assert_stdout_contains(&format!(
            "sqlite://{}/.cyrus/cyrus.db",
            home.path().display()
        ));
    for s in SECRETS {
        out.assert_nowhere(s);
    }
}

#[test]
fn json_report_for_valid_config() {
    let home = tempfile::tempdir().unwrap();
    let path = write(home.path(), "c.json", GOOD);
    let out = cyrus(
        home.path(),
        &["config", "check", "--config", &path, "--json"],
        &[],
    );
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["status"], "valid", "{out}");
    assert_eq!(v["path"], path.as_str());
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["config"]["codegen"]["orgId"], 123);
    assert_eq!(v["config"]["codegen"]["apiToken"], "[redacted]");
    assert_eq!(v["config"]["codegen"]["maxCostPerTaskMicros"], 2_000_000);
    assert_eq!(
        v["config"]["linear"]["workspaces"][0]["organizationId"],
        "org-1"
    );
    for s in SECRETS {
        out.assert_nowhere(s);
    }
}

#[test]
fn invalid_config_lists_every_problem_and_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("\"maxCostPerTask\": 2.0", "\"maxCostPerTask\": -1")
        .replace("\"orgId\": \"123\"", "\"orgId\": \"my-org\"")
        .replace("\"teamKeys\"", "\"teamKey\"");
    let path = write(home.path(), "c.json", &bad);
    let out = cyrus(home.path(), &["config", "check", "--config", &path], &[]);
    out.assert_code(2)
        .assert_stderr_contains("2 problem(s)")
        .assert_stderr_contains("codegen.maxCostPerTask: must be greater than 0 (got -1)")
        .assert_stderr_contains("codegen.orgId: must be Codegen's organization id")
        .assert_stderr_contains("repositories[0].teamKey: unknown key");

    let out = cyrus(
        home.path(),
        &["config", "check", "--config", &path, "--json"],
        &[],
    );
    out.assert_code(2);
    let v = out.json();
    assert_eq!(v["status"], "invalid");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(v["problems"][0]["path"], "codegen.orgId");
    assert_eq!(v["warnings"][0]["path"], "repositories[0].teamKey");
    assert!(v["config"].is_null());
}

#[test]
fn malformed_json_names_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    let path = write(
        home.path(),
        "c.json",
        "{\n  \"codegen\": {\n    \"orgId\": 1,,\n  }\n}",
    );
    let out = cyrus(home.path(), &["config", "check", "--config", &path], &[]);
    out.assert_code(2)
        .assert_stderr_contains(&format!("{path}:3:16: not valid JSON"));
    let v = cyrus(
        home.path(),
        &["config", "check", "--config", &path, "--json"],
        &[],
    )
    .json();
    assert_eq!(v["status"], "malformed");
    assert_eq!(v["error"]["line"], 3);
    assert_eq!(v["error"]["column"], 16); // the second comma
}

#[test]
fn missing_file_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    let out = cyrus(
        home.path(),
        &["config", "check"],
        &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())],
    );
    out.assert_code(2)
        .assert_stderr_contains("no configuration file found")
        .assert_stderr_contains(&format!("{}/cyrus/config.json", xdg.display()))
        .assert_stderr_contains(&format!("{}/.cyrus/config.json", home.path().display()));

    let out = cyrus(
        home.path(),
        &[
            "config",
            "check",
            "--config",
            "/nonexistent/c.json",
            "--json",
        ],
        &[],
    );
    out.assert_code(2);
    let v = out.json();
    assert_eq!(v["status"], "not_found");
    assert_eq!(v["searched"], serde_json::json!(["/nonexistent/c.json"]));
}

#[test]
fn finds_config_through_env_and_default_locations() {
    let home = tempfile::tempdir().unwrap();
    let path = write(home.path(), "elsewhere/c.json", GOOD);
    cyrus(
        home.path(),
        &["config", "check"],
        &[("CYRUS_CONFIG", &path)],
    )
    .assert_code(0)
    .assert_stdout_contains(&path);

    let dot = write(home.path(), ".cyrus/config.json", GOOD);
    cyrus(home.path(), &["config", "check"], &[])
        .assert_code(0)
        .assert_stdout_contains(&dot);
}

#[test]
fn secrets_can_come_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let without = GOOD
        .replace("\"apiToken\": \"codegen_SECRET2\",", "")
        .replace("\"webhookSecret\": \"whsec_SECRET3\"", "");
    let path = write(home.path(), "c.json", &without);
    cyrus(home.path(), &["config", "check", "--config", &path], &[])
        .assert_code(2)
        .assert_stderr_contains("codegen.apiToken: missing");
    let out = cyrus(
        home.path(),
        &["config", "check", "--config", &path],
        &[
            ("CYRUS_CODEGEN_API_TOKEN", "env_SECRET5"),
            ("CYRUS_LINEAR_WEBHOOK_SECRET", "env_SECRET6"),
        ],
    );
    out.assert_code(0)
        .assert_nowhere("SECRET5")
        .assert_nowhere("SECRET6");
}
