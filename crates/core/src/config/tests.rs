use super::*;
use secrecy::ExposeSecret;

const FULL: &str = r#"{
  "repositories": [{
    "id": "main-repo", "name": "api", "repositoryPath": "/path/to/repo",
    "linearToken": "lin_api_secret", "linearWorkspaceId": "org-1", "codegenRepoId": 42,
    "teamKeys": ["ENG"], "projectKeys": [], "routingLabels": ["backend"],
    "labelPrompts": {"debugger": ["Bug"], "builder": ["Feature"], "scoper": ["PRD"], "orchestrator": ["Epic"]},
    "allowedTools": ["Read(**)", "Edit(**)", "Bash(git:*)"], "mcpServers": ["linear", "github"]
  }],
  "codegen": {
    "enabled": true, "orgId": "123", "apiToken": "codegen_token_secret",
    "baseUrl": "https://api.codegen.com", "agentType": "codegen",
    "maxCostPerTask": 2.5, "maxCostPerDay": 100.0, "maxConcurrentRuns": 10,
    "defaultModel": "claude-3-5-sonnet",
    "modelByTaskType": {"debugger": "claude-3-5-sonnet"},
    "pricing": {"claude-3-5-sonnet": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "perRun": 0.01}
  },
  "linear": {"webhookSecret": "whsec_secret", "agentUserId": "agent-1"},
  "server": {"listen": "127.0.0.1:3456", "publicUrl": null},
  "store": {"url": "sqlite://~/.cyrus/cyrus.db"}
}"#;

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    match parse(text, env) {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(|p| p.to_string()).collect()
        }
        other => panic!("expected invalid config, got {other:#?}"),
    }
}

fn loaded(text: &str, env: &BTreeMap<String, String>) -> Loaded {
    match parse(text, env) {
        Ok(l) => l,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

fn with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn full_example_parses_with_money_in_micros() {
    let l = loaded(FULL, &no_env());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(c.codegen.org_id, 123);
    assert_eq!(c.codegen.max_cost_per_task, MicroDollars(2_500_000));
    assert_eq!(c.codegen.pricing.per_run, MicroDollars(10_000));
    assert_eq!(
        c.codegen.pricing.models["claude-3-5-sonnet"].output_per_mtok,
        MicroDollars(15_000_000)
    );
    assert_eq!(
        c.codegen.model_by_task_type[&TaskType::Debugger],
        "claude-3-5-sonnet"
    );
    assert_eq!(
        c.repositories[0].label_prompts[&TaskType::Scoper],
        vec!["PRD"]
    );
    assert_eq!(c.repositories[0].codegen_repo_id, Some(42));
    assert_eq!(c.linear.workspaces.len(), 1);
    let ws = c.workspace("org-1").expect("workspace from repository");
    assert_eq!(ws.token.expose_secret(), "lin_api_secret");
    assert_eq!(ws.webhook_secret.expose_secret(), "whsec_secret");
    assert_eq!(ws.agent_user_id.as_deref(), Some("agent-1"));
    assert_eq!(c.server.public_url, None);
    assert_eq!(c.server.idle_timeout_secs, 75);
    assert_eq!(c.server.max_connections, 1024);
    assert_eq!(c.store.sqlite_synchronous, SqliteSynchronous::Full);
    assert_eq!(c.store.delivery_retention_days, 7);
    assert_eq!(c.prompt.token_budget, defaults::PROMPT_TOKEN_BUDGET);
    assert_eq!(c.codegen.rate_limits, RateLimits::default());
    assert_eq!(c.codegen.budget_alert_percent, 80);
}

#[test]
fn org_id_accepts_integer_and_digit_string_only() {
    let c = loaded(&with(|v| v["codegen"]["orgId"] = 77.into()), &no_env()).config;
    assert_eq!(c.codegen.org_id, 77);
    let p = problems(
        &with(|v| v["codegen"]["orgId"] = "my-org-id".into()),
        &no_env(),
    );
    assert_eq!(
        p,
        vec![
            r#"codegen.orgId: must be Codegen's organization id, a positive integer or a string of digits (got "my-org-id")"#
        ]
    );
}

#[test]
fn collects_every_problem_with_its_path() {
    let text = with(|v| {
        v["codegen"]["maxCostPerTask"] = (-1).into();
        v["codegen"]["maxConcurrentRuns"] = "ten".into();
        v["codegen"]["budgetAlertPercent"] = 150.into();
        v["server"]["listen"] = "localhost".into();
        v["repositories"][0]["teamKeys"] = serde_json::json!(["ENG", 5]);
        v["linear"]["verbosity"] = "loud".into();
        v["store"]["url"] = "mysql://x".into();
        v["server"]["idleTimeoutSecs"] = 0.into();
        v["store"]["sqliteSynchronous"] = "off".into();
    });
    let p = problems(&text, &no_env());
    let expected = [
        "codegen.maxCostPerTask: must be greater than 0 (got -1)",
        "codegen.maxConcurrentRuns: must be a whole number, 0 or more (got \"ten\")",
        "codegen.budgetAlertPercent: must be between 1 and 100 (got 150)",
        "server.listen: must be IP:PORT",
        "repositories[0].teamKeys[1]: must be a string (got 5)",
        "linear.verbosity: must be \"quiet\", \"normal\" or \"verbose\" (got \"loud\")",
        "store.url: must start with sqlite:// or postgres://",
        "server.idleTimeoutSecs: must be greater than 0 (got 0)",
        "store.sqliteSynchronous: must be \"full\" or \"normal\" (got \"off\")",
    ];
    for e in expected {
        assert!(
            p.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn missing_required_values_say_how_to_fix() {
    let p = problems(
        r#"{"repositories": [{"id": "a"}], "codegen": {}}"#,
        &no_env(),
    );
    let joined = p.join("\n");
    for needle in [
        "repositories[0].name: missing",
        "linear.webhookSecret: missing",
        "codegen.orgId: missing: set your Codegen organization id (or CYRUS_CODEGEN_ORG_ID)",
        "codegen.apiToken: missing",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
    let p = problems("{}", &no_env());
    assert!(
        p.iter().any(|p| p.starts_with("repositories: missing")),
        "{p:?}"
    );
    assert!(p.iter().any(|p| p.starts_with("codegen: missing")), "{p:?}");
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = parse("{\n  \"codegen\": {,\n}", &no_env()).unwrap_err();
    match err {
        ConfigError::Malformed { line, column, .. } => {
            // column 15 is the stray comma
            assert_eq!((line, column), (2, 15))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_keys_are_warnings_with_paths() {
    let text = with(|v| {
        v["codegen"]["maxCostPerTsk"] = 1.into();
        v["repositories"][0]["teamKey"] = "ENG".into();
        v["extra"] = true.into();
    });
    let l = loaded(&text, &no_env());
    let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["repositories[0].teamKey", "codegen.maxCostPerTsk", "extra"]
    );
}

#[test]
fn environment_overrides_file_and_fills_secrets() {
    let text = with(|v| {
        let codegen = v["codegen"].as_object_mut().unwrap();
        codegen.remove("apiToken");
        codegen.remove("orgId");
        v["repositories"][0]
            .as_object_mut()
            .unwrap()
            .remove("linearToken");
        v["linear"].as_object_mut().unwrap().remove("webhookSecret");
    });
    let e = env(&[
        ("CYRUS_CODEGEN_API_TOKEN", "tok-env"),
        ("CYRUS_CODEGEN_ORG_ID", "9"),
        ("CYRUS_LINEAR_TOKEN", "lin-env"),
        ("CYRUS_LINEAR_WEBHOOK_SECRET", "wh-env"),
        ("CYRUS_STORE_URL", "postgres://u:pw@db/cyrus"),
        ("CYRUS_DASHBOARD_TOKEN", "dash"),
    ]);
    let c = loaded(&text, &e).config;
    assert_eq!(c.codegen.api_token.expose_secret(), "tok-env");
    assert_eq!(c.codegen.org_id, 9);
    assert_eq!(
        c.workspace("org-1").unwrap().token.expose_secret(),
        "lin-env"
    );
    assert_eq!(
        c.workspace("org-1").unwrap().webhook_secret.expose_secret(),
        "wh-env"
    );
    assert_eq!(c.store.url, "postgres://u:pw@db/cyrus");
    assert!(c.server.dashboard_token.is_some());
    // An override beats the file value; a bad one names the variable.
    let p = problems(FULL, &env(&[("CYRUS_CODEGEN_ORG_ID", "abc")]));
    assert!(
        p[0].starts_with("codegen.orgId (from CYRUS_CODEGEN_ORG_ID): must be"),
        "{p:?}"
    );
}

#[test]
fn secrets_never_show_in_debug_or_summary() {
    let c = loaded(
        &with(|v| v["store"]["url"] = "postgres://u:dbpass@h/db".into()),
        &no_env(),
    )
    .config;
    let debug = format!("{c:?}");
    let summary = c.redacted_summary();
    let json = serde_json::to_string(&summary).unwrap();
    let text = summary.to_string();
    for leak in [
        "lin_api_secret",
        "codegen_token_secret",
        "whsec_secret",
        "dbpass",
    ] {
        assert!(!debug.contains(leak), "{leak} leaked in Debug: {debug}");
        assert!(
            !json.contains(leak),
            "{leak} leaked in JSON summary: {json}"
        );
        assert!(
            !text.contains(leak),
            "{leak} leaked in text summary: {text}"
        );
    }
    assert!(json.contains("[redacted]"));
    assert!(text.contains("$2.5000 per task"), "{text}");
}

#[test]
fn workspaces_come_from_list_and_repositories() {
    let text = with(|v| {
        v["linear"]["workspaces"] = serde_json::json!([
            {"organizationId": "org-2", "token": "t2", "webhookSecret": "s2", "agentUserId": "a2"}
        ]);
    });
    let c = loaded(&text, &no_env()).config;
    let ids: Vec<_> = c
        .linear
        .workspaces
        .iter()
        .map(|w| w.organization_id.as_str())
        .collect();
    assert_eq!(ids, vec!["org-2", "org-1"]);
    assert_eq!(
        c.workspace("org-2").unwrap().webhook_secret.expose_secret(),
        "s2"
    );
    assert!(c.workspace("org-3").is_none());
}

#[test]
fn workspace_without_token_or_secret_is_a_problem() {
    let text = with(|v| {
        v["repositories"][0]
            .as_object_mut()
            .unwrap()
            .remove("linearToken");
        v["linear"].as_object_mut().unwrap().remove("webhookSecret");
    });
    let p = problems(&text, &no_env());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("repositories[0].linearToken: no Linear token for workspace \"org-1\"")
    );
    let p = problems(&text, &env(&[("CYRUS_LINEAR_TOKEN", "x")]));
    assert!(p[0].contains("no webhook secret"), "{p:?}");
}

#[test]
fn duplicates_and_bad_task_types_are_problems() {
    let text = with(|v| {
        let repo = v["repositories"][0].clone();
        v["repositories"].as_array_mut().unwrap().push(repo);
        v["codegen"]["modelByTaskType"]["reviewer"] = "m".into();
    });
    let p = problems(&text, &no_env()).join("\n");
    assert!(
        p.contains("repositories[1].id: duplicate id \"main-repo\""),
        "{p}"
    );
    assert!(p.contains("repositories[1].name: duplicate name"), "{p}");
    assert!(
        p.contains("codegen.modelByTaskType.reviewer: unknown task type"),
        "{p}"
    );
}

#[test]
fn warns_about_unpriced_models_and_task_budget_above_day() {
    let text = with(|v| {
        v["codegen"]["defaultModel"] = "gpt-x".into();
        v["codegen"]["maxCostPerTask"] = 200.into();
    });
    let l = loaded(&text, &no_env());
    let w: Vec<_> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.starts_with("codegen.defaultModel: model \"gpt-x\" has no entry")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("codegen.maxCostPerTask: is above")),
        "{w:?}"
    );
}

#[test]
fn known_models_are_deduplicated() {
    let c = loaded(FULL, &no_env()).config;
    assert_eq!(c.known_models(), vec!["claude-3-5-sonnet"]);
}

fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Whatever value replaces any one setting, parsing reports instead of
    /// panicking, and every problem names a path.
    #[test]
    fn any_value_anywhere_is_reported_not_panicked(
        section in proptest::sample::select(vec!["codegen", "linear", "server", "store", "prompt", "alerts", "repo"]),
        key in proptest::sample::select(vec![
            "orgId", "apiToken", "maxCostPerTask", "pricing", "rateLimits", "workspaces", "listen",
            "url", "tokenBudget", "webhookUrl", "labelPrompts", "teamKeys", "budgetAlertPercent", "verbosity",
        ]),
        value in any_json(),
    ) {
        let text = with(|v| {
            let target = if section == "repo" { &mut v["repositories"][0] } else { &mut v[section] };
            if !target.is_object() {
                *target = serde_json::json!({});
            }
            target[key] = value;
        });
        match parse(&text, &no_env()) {
            Ok(_) => {}
            Err(ConfigError::Invalid { problems, .. }) => {
                proptest::prop_assert!(!problems.is_empty());
                for p in problems {
                    proptest::prop_assert!(!p.path.is_empty(), "{p:?}");
                }
            }
            Err(e) => proptest::prop_assert!(false, "unexpected {e:?}"),
        }
    }
}

/// A configuration connected through the OAuth app: no token or workspace
/// id anywhere in the file.
const OAUTH: &str = r#"{
  "repositories": [{"id": "r", "name": "r"}],
  "codegen": {"orgId": 1, "apiToken": "t"},
  "linear": {
    "webhookSecret": "whsec",
    "oauth": {"clientId": "cid", "clientSecret": "csecret", "redirectUrl": "http://127.0.0.1:8765/oauth/callback/"}
  }
}"#;

#[test]
fn oauth_app_is_read_with_default_scopes_and_no_workspace_needed() {
    let l = loaded(OAUTH, &no_env());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    let o = c.linear.oauth.as_ref().expect("oauth section");
    assert_eq!(o.client_id, "cid");
    assert_eq!(o.client_secret.expose_secret(), "csecret");
    assert_eq!(o.redirect_url, "http://127.0.0.1:8765/oauth/callback");
    assert_eq!(
        o.scopes,
        ["read", "write", "app:assignable", "app:mentionable"]
    );
    assert_eq!(o.endpoint_base, None);
    assert!(c.linear.workspaces.is_empty());
    assert_eq!(c.repositories[0].linear_workspace_id, None);
    assert!(c.repositories[0].serves_workspace("any-org"));
    let summary = c.redacted_summary();
    let json = serde_json::to_string(&summary).unwrap();
    assert!(!json.contains("csecret"), "{json}");
    assert!(!summary.to_string().contains("csecret"));
}

#[test]
fn oauth_client_id_and_secret_come_from_the_environment() {
    let text = with(|v| {
        v["linear"]["oauth"] = serde_json::json!({"redirectUrl": "https://cyrus.example/oauth/callback",
            "scopes": ["read", "write"], "endpointBase": "http://127.0.0.1:4000/"});
    });
    let l = loaded(
        &text,
        &env(&[
            ("CYRUS_LINEAR_CLIENT_ID", "env-id"),
            ("CYRUS_LINEAR_CLIENT_SECRET", "env-secret"),
        ]),
    );
    let o = l.config.linear.oauth.unwrap();
    assert_eq!(o.client_id, "env-id");
    assert_eq!(o.client_secret.expose_secret(), "env-secret");
    assert_eq!(o.scopes, ["read", "write"]);
    assert_eq!(o.endpoint_base.as_deref(), Some("http://127.0.0.1:4000"));
    // Only the variables, no section in the file: the redirect URL is missing.
    let text = with(|v| {
        v["linear"]
            .as_object_mut()
            .unwrap()
            .remove("oauth")
            .map(|_| ())
            .unwrap_or(())
    });
    let p = problems(&text, &env(&[("CYRUS_LINEAR_CLIENT_ID", "env-id")]));
    assert!(
        p.iter()
            .any(|p| p.starts_with("linear.oauth.redirectUrl: missing")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("linear.oauth.clientSecret: missing")),
        "{p:?}"
    );
}

#[test]
fn oauth_problems_have_paths() {
    let text = with(|v| {
        v["linear"]["oauth"] = serde_json::json!({"clientId": "", "redirectUrl": "ftp://x",
            "scopes": ["read", "admin"], "endpointBase": "nope", "extra": 1});
    });
    let p = problems(&text, &no_env());
    for expected in [
        "linear.oauth.clientId: must not be empty",
        "linear.oauth.clientSecret: missing",
        "linear.oauth.redirectUrl: must be an http",
        "linear.oauth.scopes: must not contain \"admin\"",
        "linear.oauth.endpointBase: must be an http",
    ] {
        assert!(
            p.iter().any(|p| p.starts_with(expected)),
            "{expected}: {p:?}"
        );
    }
}

#[test]
fn oauth_requires_the_webhook_secret() {
    let text = OAUTH.replace(r#""webhookSecret": "whsec","#, "");
    let p = problems(&text, &no_env());
    assert!(
        p.iter()
            .any(|p| p.starts_with("linear.webhookSecret: missing")),
        "{p:?}"
    );
}

#[test]
fn without_oauth_or_tokens_there_is_no_way_to_linear() {
    let text = OAUTH.replace(
        r#""oauth": {"clientId": "cid", "clientSecret": "csecret", "redirectUrl": "http://127.0.0.1:8765/oauth/callback/"}"#,
        r#""agentUserId": "a""#,
    );
    let p = problems(&text, &no_env());
    assert!(
        p.iter()
            .any(|p| p.starts_with("linear.oauth: missing") && p.contains("cyrus linear connect")),
        "{p:?}"
    );
    // A repository naming a workspace with no token points to connect, too.
    let text = text.replace(
        r#""name": "r""#,
        r#""name": "r", "linearWorkspaceId": "org-9""#,
    );
    let p = problems(&text, &no_env());
    assert!(
        p.iter()
            .any(|p| p.contains("org-9") && p.contains("cyrus linear connect")),
        "{p:?}"
    );
}

#[test]
fn with_oauth_a_workspace_id_needs_no_token_and_a_token_needs_a_workspace_id() {
    let text = OAUTH.replace(
        r#""name": "r""#,
        r#""name": "r", "linearWorkspaceId": "org-9""#,
    );
    let c = loaded(&text, &no_env()).config;
    assert_eq!(
        c.repositories[0].linear_workspace_id.as_deref(),
        Some("org-9")
    );
    assert!(!c.repositories[0].serves_workspace("org-1"));
    assert!(
        c.linear.workspaces.is_empty(),
        "the installation holds the token"
    );
    let text = OAUTH.replace(
        r#""name": "r""#,
        r#""name": "r", "linearToken": "lin_api_x""#,
    );
    let p = problems(&text, &no_env());
    assert!(
        p.iter()
            .any(|p| p.starts_with("repositories[0].linearWorkspaceId: missing")),
        "{p:?}"
    );
}

#[test]
fn sqlite_synchronous_can_be_normal() {
    let text = with(|v| v["store"]["sqliteSynchronous"] = "normal".into());
    let c = loaded(&text, &no_env()).config;
    assert_eq!(c.store.sqlite_synchronous, SqliteSynchronous::Normal);
}

#[test]
fn delivery_retention_is_read_and_must_be_at_least_a_day() {
    let text = with(|v| v["store"]["deliveryRetentionDays"] = 30.into());
    assert_eq!(
        loaded(&text, &no_env())
            .config
            .store
            .delivery_retention_days,
        30
    );
    let text = with(|v| v["store"]["deliveryRetentionDays"] = 0.into());
    let p = problems(&text, &no_env());
    assert!(
        p.iter()
            .any(|p| p.starts_with("store.deliveryRetentionDays: must be between 1")),
        "{p:?}"
    );
}

#[test]
fn policy_triage_images_and_audit_are_read_with_defaults() {
    let c = loaded(FULL, &no_env()).config;
    assert_eq!(c.policy, PolicyConfig::default());
    assert!(c.triage.rules.is_empty());
    assert_eq!(c.triage.max_per_day, defaults::TRIAGE_MAX_PER_DAY);
    assert_eq!(c.images, ImagesConfig::default());
    assert_eq!(c.audit.retention_days, 90);
    assert_eq!(c.linear.uploads_url, defaults::LINEAR_UPLOADS_URL);

    let text = with(|v| {
        v["policy"] = serde_json::json!({
            "allow": {"users": ["Dana@Acme.dev"], "emailDomains": ["@Acme.dev"], "teams": ["eng"]},
            "guests": true, "contact": "@dana",
            "repositories": {"main-repo": {"allow": {"teams": ["OPS"]}}}
        });
        v["triage"] = serde_json::json!({"maxPerDay": 3, "dryRun": true,
            "rules": [{"name": "bugs", "labels": ["Bug"], "priorities": [1, 2]}]});
        v["images"] = serde_json::json!({"allowedHosts": ["CDN.acme.dev"], "maxCount": 2});
        v["audit"] = serde_json::json!({"retentionDays": 30});
        v["codegen"]["modelForImages"] = serde_json::json!("gemini");
    });
    let c = loaded(&text, &no_env()).config;
    let allow = c.policy.rule.allow.clone().unwrap();
    assert_eq!(allow.email_domains, ["acme.dev"]);
    assert_eq!(allow.teams, ["ENG"]);
    assert!(c.policy.rule.guests);
    assert_eq!(c.policy.contact.as_deref(), Some("@dana"));
    assert_eq!(
        c.policy
            .rule_for(Some("main-repo"))
            .allow
            .as_ref()
            .unwrap()
            .teams,
        ["OPS"]
    );
    assert_eq!(c.policy.rule_for(Some("other")), &c.policy.rule);
    assert_eq!(c.triage.max_per_day, 3);
    assert!(c.triage.dry_run);
    assert_eq!(c.triage.rules[0].priorities, [1, 2]);
    assert_eq!(c.images.allowed_hosts, ["cdn.acme.dev"]);
    assert_eq!(c.images.max_count, 2);
    assert_eq!(c.audit.retention_days, 30);
    assert_eq!(c.codegen.model_for_images.as_deref(), Some("gemini"));
    assert!(c.known_models().contains(&"gemini"));
}

#[test]
fn bad_policy_triage_and_images_are_problems_with_paths() {
    let text = with(|v| {
        v["policy"] = serde_json::json!({
            "allow": {"emailDomains": ["nodot"]},
            "repositories": {"ghost": {}}
        });
        v["triage"] = serde_json::json!({"rules": [
            {"name": "a", "priorities": [7]},
            {"labels": ["x"]},
            {"name": "a", "labels": ["y"]}
        ]});
        v["images"] = serde_json::json!({"allowedHosts": ["https://cdn.acme.dev/x"]});
        v["audit"] = serde_json::json!({"retentionDays": 0});
    });
    let got = problems(&text, &no_env());
    let has = |prefix: &str| got.iter().any(|p| p.starts_with(prefix));
    assert!(
        has("policy.allow.emailDomains[0]: must be a domain"),
        "{got:#?}"
    );
    assert!(
        has("policy.repositories.ghost: names no repository"),
        "{got:#?}"
    );
    assert!(
        has("triage.rules[0].priorities[0]: must be a Linear priority"),
        "{got:#?}"
    );
    assert!(has("triage.rules[1].name: missing"), "{got:#?}");
    assert!(
        has("triage.rules[2].name: \"a\" names two rules"),
        "{got:#?}"
    );
    assert!(
        has("images.allowedHosts[0]: must be a host name"),
        "{got:#?}"
    );
    assert!(has("audit.retentionDays"), "{got:#?}");
}

#[test]
fn orchestration_has_a_default_and_a_bounded_parallel_cap() {
    let c = loaded(FULL, &no_env()).config;
    assert_eq!(c.orchestration.max_parallel_children, 3);
    assert_eq!(c.orchestration.max_sub_issues, 12);
    assert!(!c.orchestration.auto_approve);
    let text = with(|v| {
        v["orchestration"] = serde_json::json!({"maxSubIssues": 4, "autoApprove": true});
    });
    let o = loaded(&text, &no_env()).config.orchestration;
    assert_eq!((o.max_sub_issues, o.auto_approve), (4, true));
    assert_eq!(
        o.max_cost_with(crate::MicroDollars(2_000_000)),
        crate::MicroDollars(10_000_000),
        "five times maxCostPerTask by default"
    );
    let text = with(|v| {
        v["orchestration"] = serde_json::json!({"maxCost": 3.5});
    });
    let o = loaded(&text, &no_env()).config.orchestration;
    assert_eq!(o.max_cost, Some(crate::MicroDollars(3_500_000)));
    let text = with(|v| {
        v["orchestration"] = serde_json::json!({"maxCost": 0});
    });
    assert!(
        problems(&text, &no_env())
            .iter()
            .any(|p| p.starts_with("orchestration.maxCost: must be greater than 0")),
    );
    let text = with(|v| {
        v["orchestration"] = serde_json::json!({"maxParallelChildren": 5});
    });
    assert_eq!(
        loaded(&text, &no_env())
            .config
            .orchestration
            .max_parallel_children,
        5
    );
    for bad in [0, 51] {
        let text = with(|v| {
            v["orchestration"] = serde_json::json!({"maxParallelChildren": bad});
        });
        let got = problems(&text, &no_env());
        assert!(
            got.iter()
                .any(|p| p.starts_with("orchestration.maxParallelChildren: must be")),
            "{bad}: {got:#?}"
        );
    }
    let text = with(|v| {
        v["orchestration"] = serde_json::json!({"maxParallel": 2});
    });
    let warnings = loaded(&text, &no_env()).warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.path == "orchestration.maxParallel"),
        "unknown keys are pointed out: {warnings:#?}"
    );
}

#[test]
fn experiments_are_validated_with_paths_and_overlaps_warned() {
    let text = with(|v| {
        v["experiments"] = serde_json::json!([
            {"name": "x", "arms": [{"name": "A", "model": "claude-3-5-sonnet", "weight": 0}, {"name": "A", "model": ""}]},
            {"name": "y", "arms": [{"name": "A", "model": "claude-3-5-sonnet"}]},
            {"name": "z", "startsAt": "tomorrow", "arms": [{"name": "A", "model": "m"}, {"name": "B", "model": "n"}]}
        ]);
    });
    let got = problems(&text, &no_env());
    let has = |prefix: &str| got.iter().any(|p| p.starts_with(prefix));
    assert!(
        has("experiments[0].arms[0].weight: must be a number greater than 0"),
        "{got:#?}"
    );
    assert!(has("experiments[0].arms[1].model: missing"), "{got:#?}");
    assert!(
        has("experiments[1].arms: needs at least two arms"),
        "{got:#?}"
    );
    assert!(
        has("experiments[2].startsAt: must be an RFC 3339 time"),
        "{got:#?}"
    );

    let text = with(|v| {
        v["experiments"] = serde_json::json!([
            {"name": "bugs", "match": {"taskTypes": ["debugger"]},
             "arms": [{"name": "A", "model": "claude-3-5-sonnet"}, {"name": "B", "model": "gpt-5", "weight": 2}]},
            {"name": "builders", "match": {"taskTypes": ["builder"]},
             "arms": [{"name": "A", "model": "claude-3-5-sonnet"}, {"name": "B", "model": "gpt-5"}]},
            {"name": "all", "arms": [{"name": "A", "model": "claude-3-5-sonnet"}, {"name": "B", "model": "gpt-5"}]}
        ]);
        v["experimentOutcomeDays"] = serde_json::json!(14);
    });
    let l = loaded(&text, &no_env());
    assert_eq!(l.config.experiments.len(), 3);
    assert_eq!(l.config.experiment_outcome_days, 14);
    assert_eq!(l.config.experiments[0].arms[1].weight, 2.0);
    let warnings: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "experiments[0].arms[1].model: model \"gpt-5\" has no entry in codegen.pricing"
        )),
        "{warnings:#?}"
    );
    // The disjoint pair is not warned about; "all" overlaps both.
    assert!(
        !warnings.iter().any(|w| w.starts_with("experiments[1]:")),
        "{warnings:#?}"
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.starts_with("experiments[2]: may take the same tasks"))
            .count(),
        2,
        "{warnings:#?}"
    );
}
