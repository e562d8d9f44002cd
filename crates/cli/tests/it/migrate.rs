use crate::support::cyrus;

fn fixture() -> String {
    format!(
        "{}/tests/it/fixtures/typescript-cyrus-config.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn migrates_the_sample_typescript_config_and_lists_what_was_left() {
    let home = tempfile::tempdir().unwrap();
    let out_path = home.path().join("out/config.json");
    let out_s = out_path.to_str().unwrap();
    let out = cyrus(
        home.path(),
        &[
            "migrate",
            "--from-cyrus",
            &fixture(),
            "--out",
            out_s,
            "--json",
        ],
        &[],
    );
    out.assert_code(0);
    let report = out.json();
    assert_eq!(report["repositories"], 2, "{out}");
    let unmapped: Vec<String> = report["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "repositories[0].baseBranch",
        "repositories[0].workspaceBaseDir",
        "repositories[0].mcpConfigPath",
        "repositories[0].promptTemplatePath",
        "repositories[2]",
        "ngrokAuthToken",
    ] {
        assert!(
            unmapped.iter().any(|u| u == expected),
            "{expected} not reported\n{out}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert_eq!(v["repositories"][0]["id"], "frontend-repo");
    assert_eq!(v["repositories"][0]["teamKeys"], serde_json::json!(["FE"]));
    assert_eq!(
        v["repositories"][0]["labelPrompts"]["debugger"],
        serde_json::json!(["Bug"])
    );
    assert_eq!(v["repositories"][1]["linearToken"], "lin_oauth_backend");
    assert_eq!(v["codegen"]["defaultModel"], "opus");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The result is one `codegen setup` away from valid: config check names
    // exactly the Codegen credentials as missing.
    let check = cyrus(
        home.path(),
        &["config", "check", "--config", out_s, "--json"],
        &[],
    );
    check.assert_code(2);
    let problems = check.json()["problems"].as_array().unwrap().clone();
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"codegen.orgId") && paths.contains(&"codegen.apiToken"),
        "{check}"
    );
    for p in &problems {
        let (path, message) = (p["path"].as_str().unwrap(), p["message"].as_str().unwrap());
        assert!(
            path.starts_with("codegen.") || message.contains("webhook secret"),
            "unexpected problem {p}\n{check}"
        );
    }

    // No overwrite without --force.
    cyrus(
        home.path(),
        &["migrate", "--from-cyrus", &fixture(), "--out", out_s],
        &[],
    )
    .assert_code(2)
    .assert_stderr_contains("--force");
    cyrus(
        home.path(),
        &[
            "migrate",
            "--from-cyrus",
            &fixture(),
            "--out",
            out_s,
            "--force",
        ],
        &[],
    )
    .assert_code(0)
    .assert_stdout_contains("wrote");
}

#[test]
fn missing_source_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    cyrus(
        home.path(),
        &["migrate", "--from-cyrus", "/nonexistent/config.json"],
        &[],
    )
    .assert_code(2)
    .assert_stderr_contains("does not exist");
}
