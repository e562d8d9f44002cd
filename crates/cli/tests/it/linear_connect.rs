//! `cyrus linear connect` / `list` and the installation lines of `status`
//! and `doctor`, through the real binary. (The full install against the
//! Linear simulator's OAuth server is in the worker's end-to-end tests.)

use crate::operator::{free_listen, run};
use crate::support::cyrus;
use cyrus_store::{
    GrantKind, InstallationStatus, Keyring, NewInstallation, NewPendingAuthorization, OAuthTokens,
    Store,
};
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An OAuth-connected config (no Linear token or workspace id anywhere)
/// with a SQLite store in `dir` that does not exist yet.
fn oauth_config(dir: &Path) -> (PathBuf, PathBuf) {
    let db = dir.join("state/cyrus.db");
    let text = json!({
        "repositories": [{"id": "web", "name": "web"}],
        "codegen": {"orgId": 1, "apiToken": "t", "baseUrl": "http://127.0.0.1:9"},
        "linear": {
            "webhookSecret": "whsec_test",
            "apiUrl": "http://127.0.0.1:9/graphql",
            "oauth": {"clientId": "client-1", "clientSecret": "csecret_XYZ",
                      "redirectUrl": "http://127.0.0.1:8765/oauth/callback"}
        },
        "server": {"listen": free_listen()},
        "store": {"url": format!("sqlite://{}", db.display())}
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    (path, db)
}

fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url.trim())
        .unwrap_or_else(|e| panic!("not a URL ({e}): {url}"))
        .query_pairs()
        .into_owned()
        .collect()
}

async fn open(db: &Path) -> Store {
    let key = PathBuf::from(format!("{}.key", db.display()));
    let (keys, _) = Keyring::from_env_or_file(&key).unwrap();
    Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap()
        .with_secret_keys(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_url_is_an_app_install_with_pkce_and_a_stored_state() {
    let home = tempfile::tempdir().unwrap();
    let (config, db) = oauth_config(home.path());
    let config = config.to_str().unwrap();
    let out = run(
        home.path(),
        &["linear", "connect", "--config", config, "--print-url"],
        &[],
    )
    .await;
    out.assert_code(0).assert_nowhere("csecret_XYZ");
    let q = query(&out.stdout);
    assert!(
        out.stdout
            .starts_with("https://linear.app/oauth/authorize?"),
        "{out}"
    );
    assert_eq!(q["actor"], "app");
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "read,write,app:assignable,app:mentionable");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:8765/oauth/callback");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "{out}");
    assert!(q["state"].len() >= 32, "{out}");
    assert!(!q.contains_key("prompt"), "{out}");
    // The store and its key file were created beside each other; the key is private.
    let key = PathBuf::from(format!("{}.key", db.display()));
    assert!(db.exists() && key.exists(), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The state is stored hashed, never as sent.
    let bytes = std::fs::read(&db).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap_or_default();
    for file in [&bytes, &wal] {
        assert!(
            !String::from_utf8_lossy(file).contains(&q["state"]),
            "the state is in the database in plain text"
        );
    }

    let again = run(
        home.path(),
        &[
            "linear",
            "connect",
            "--config",
            config,
            "--print-url",
            "--add",
        ],
        &[],
    )
    .await;
    again.assert_code(0);
    let q2 = query(&again.stdout);
    assert_eq!(q2["prompt"], "consent", "{again}");
    assert_ne!(q2["state"], q["state"]);
    assert_ne!(q2["code_challenge"], q["code_challenge"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_expired_states_are_refused_with_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let (config, db) = oauth_config(home.path());
    let config = config.to_str().unwrap();
    let out = run(
        home.path(),
        &[
            "linear",
            "connect",
            "--config",
            config,
            "--code",
            "c-1",
            "--state",
            "forged-state",
        ],
        &[],
    )
    .await;
    out.assert_code(1)
        .assert_stderr_contains("unknown state")
        .assert_stderr_contains("cyrus linear connect");

    // A state issued an hour ago and expired 50 minutes ago.
    let store = open(&db).await;
    let now = cyrus_store::millis(chrono::Utc::now());
    store
        .insert_pending_authorization(&NewPendingAuthorization {
            state: SecretString::from("old-state".to_owned()),
            code_verifier: SecretString::from("v".repeat(43)),
            redirect_uri: "http://127.0.0.1:8765/oauth/callback".into(),
            additional_workspace: false,
            created_at: now - 3_600_000,
            expires_at: now - 3_000_000,
        })
        .await
        .unwrap();
    store.close().await;
    let out = run(
        home.path(),
        &[
            "linear",
            "connect",
            "--config",
            config,
            "--code",
            "c-1",
            "--state",
            "old-state",
        ],
        &[],
    )
    .await;
    out.assert_code(1)
        .assert_stderr_contains("expired")
        .assert_stderr_contains("cyrus linear connect");

    // --code without --state is a usage error.
    cyrus(
        home.path(),
        &["linear", "connect", "--config", config, "--code", "x"],
        &[],
    )
    .assert_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_oauth_app_says_what_to_configure() {
    let home = tempfile::tempdir().unwrap();
    let (config, _) = oauth_config(home.path());
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    v["linear"].as_object_mut().unwrap().remove("oauth");
    v["repositories"][0]["linearWorkspaceId"] = json!("org-1");
    v["repositories"][0]["linearToken"] = json!("lin_oauth_static");
    std::fs::write(&config, v.to_string()).unwrap();
    let out = cyrus(
        home.path(),
        &[
            "linear",
            "connect",
            "--config",
            config.to_str().unwrap(),
            "--print-url",
        ],
        &[],
    );
    out.assert_code(2)
        .assert_stderr_contains("linear.oauth.clientId")
        .assert_stderr_contains("CYRUS_LINEAR_CLIENT_ID");
}

#[test]
fn config_check_warns_about_a_personal_api_key() {
    let home = tempfile::tempdir().unwrap();
    let path = crate::support::write(home.path(), "c.json", crate::support::GOOD);
    let out = cyrus(home.path(), &["config", "check", "--config", &path], &[]);
    out.assert_code(0)
        .assert_stderr_contains("repositories[0].linearToken")
        .assert_stderr_contains("personal API key")
        .assert_stderr_contains("no AgentSessionEvent")
        .assert_stderr_contains("cyrus linear connect")
        .assert_nowhere("SECRET1");
    let json = cyrus(
        home.path(),
        &["config", "check", "--config", &path, "--json"],
        &[],
    )
    .json();
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["path"] == "repositories[0].linearToken"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_fresh_install_says_the_store_will_be_created() {
    let home = tempfile::tempdir().unwrap();
    let (config, db) = oauth_config(home.path());
    let out = run(
        home.path(),
        &["doctor", "--config", config.to_str().unwrap(), "--json"],
        &[],
    )
    .await;
    let report = out.json();
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check\n{out}"))
    };
    let store = check("store");
    assert_eq!(store["status"], "pass", "{out}");
    assert!(
        store["detail"]
            .as_str()
            .unwrap()
            .contains("will be created by `cyrus start`"),
        "{out}"
    );
    let linear = check("linear");
    assert_eq!(linear["status"], "fail");
    assert!(
        linear["fix"]
            .as_str()
            .unwrap()
            .contains("cyrus linear connect"),
        "{out}"
    );
    assert!(!db.exists(), "doctor must not create the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_are_listed_with_status_and_never_a_token() {
    let home = tempfile::tempdir().unwrap();
    let (config, db) = oauth_config(home.path());
    let config = config.to_str().unwrap();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let store = open(&db).await;
    let now = cyrus_store::millis(chrono::Utc::now());
    for (ws, name) in [("org-a", "Acme"), ("org-b", "Beta")] {
        store
            .connect_installation(
                &NewInstallation {
                    workspace_id: ws.into(),
                    workspace_name: name.into(),
                    url_key: name.to_lowercase(),
                    app_user_id: format!("app-{ws}"),
                    app_user_name: "Cyrus".into(),
                    oauth_client_id: "client-1".into(),
                    scopes: vec!["read".into(), "write".into()],
                    grant: GrantKind::AuthorizationCode,
                    tokens: OAuthTokens {
                        access_token: SecretString::from(format!("ACCESS_TOKEN_{ws}")),
                        refresh_token: Some(SecretString::from(format!("REFRESH_TOKEN_{ws}"))),
                        access_expires_at: now + 86_400_000,
                    },
                },
                now,
            )
            .await
            .unwrap();
    }
    store
        .set_installation_status(
            "org-b",
            InstallationStatus::NeedsReconnect,
            Some("invalid_grant: refresh token spent"),
            now,
        )
        .await
        .unwrap();
    store.close().await;

    let list = run(home.path(), &["linear", "list", "--config", config], &[]).await;
    list.assert_code(0)
        .assert_stdout_contains("Acme (linear.app/acme): agent Cyrus, active")
        .assert_stdout_contains("needs_reconnect")
        .assert_stdout_contains("run `cyrus linear connect`")
        .assert_nowhere("TOKEN_");
    let json = run(
        home.path(),
        &["linear", "list", "--config", config, "--json"],
        &[],
    )
    .await;
    json.assert_code(0).assert_nowhere("TOKEN_");
    assert_eq!(json.json().as_array().unwrap().len(), 2);

    let status = run(home.path(), &["status", "--config", config, "--json"], &[]).await;
    status
        .assert_nowhere("TOKEN_")
        .assert_nowhere("csecret_XYZ");
    let report = status.json();
    let installations = report["installations"].as_array().unwrap();
    assert_eq!(installations.len(), 2, "{status}");
    assert_eq!(installations[1]["status"], "needs_reconnect");
    let text = run(home.path(), &["status", "--config", config], &[]).await;
    text.assert_stdout_contains("Linear workspaces: 2")
        .assert_stdout_contains("Beta (linear.app/beta)")
        .assert_nowhere("TOKEN_");

    let doctor = run(home.path(), &["doctor", "--config", config, "--json"], &[]).await;
    doctor.assert_nowhere("TOKEN_");
    let checks = doctor.json()["checks"].as_array().unwrap().clone();
    let beta = checks
        .iter()
        .find(|c| c["check"] == "linear:beta")
        .expect("beta check");
    assert_eq!(beta["status"], "fail");
    assert!(
        beta["fix"]
            .as_str()
            .unwrap()
            .contains("cyrus linear connect")
    );
    let acme = checks
        .iter()
        .find(|c| c["check"] == "linear:acme")
        .expect("acme check");
    assert_eq!(acme["status"], "pass");
}
