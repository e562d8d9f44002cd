//! Linear simulator's OAuth server: the install (authorize → code → token,
//! with PKCE), refresh rotation, expiry on the simulated clock,
//! client credentials, consent denied, several organizations, and the
//! `OAuthApp` / `PermissionChange` webhooks. Answers are checked against
//! `linear-agent-api.md` and the SDL where they name fields.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cyrus_sandbox::linear::{
    Consent, LinearSim, LinearSimOptions, NewIssue, NewOAuthApp, NewOrganization, NewTeam,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::linear::{Answer, gql_with_key};
use crate::linear_webhooks::{receiver, verify};

const CALLBACK: &str = "http://127.0.0.1:45678/oauth/callback";
const SCOPES: &str = "read,write,app:assignable,app:mentionable";

/// A frozen OAuth clock, so only `advance` moves token lifetimes.
async fn frozen_sim() -> LinearSim {
    LinearSim::start(LinearSimOptions {
        time_scale: 0.0,
        ..LinearSimOptions::default()
    })
    .await
    .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(sim: &LinearSim, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&sim.authorize_url()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", sim.oauth_client_id())
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("state", "st-123")
            .append_pair("actor", "app");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Drops the named parameters from an authorize URL (to test what is
/// missing) and replaces others.
fn edit_url(url: &str, drop: &[&str], set: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !drop.contains(&k.as_ref()) && !set.iter().any(|(s, _)| s == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        for (k, v) in set {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// The redirect an authorize request answered, as a URL.
async fn redirected(url: &str) -> url::Url {
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302, "{:?}", resp.text().await);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    url::Url::parse(&location).unwrap()
}

fn param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

struct TokenAnswer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl TokenAnswer {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{:#}", self.body);
        &self.body
    }
    #[track_caller]
    fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no OAuth error in HTTP {}: {:#}", self.status, self.body))
    }
}

/// `POST /oauth/token`, form-encoded; the client authenticates by Basic
/// when `basic` is set, else by the form fields the caller passed.
async fn token(sim: &LinearSim, fields: &[(&str, &str)], basic: bool) -> TokenAnswer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = reqwest::Client::new()
        .post(sim.token_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if basic {
        let creds = STANDARD.encode(format!(
            "{}:{}",
            sim.oauth_client_id(),
            sim.oauth_client_secret()
        ));
        req = req.header("Authorization", format!("Basic {creds}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON ({e}): {text}"));
    TokenAnswer {
        status,
        headers,
        body,
    }
}

/// The whole install with PKCE; returns the token answer.
async fn install(sim: &LinearSim) -> Value {
    let (verifier, challenge) = pkce();
    let back = redirected(&authorize_url(
        sim,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    ))
    .await;
    let code = param(&back, "code").expect("a code");
    token(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", sim.oauth_client_id()),
            ("client_secret", sim.oauth_client_secret()),
            ("code_verifier", &verifier),
        ],
        false,
    )
    .await
    .ok()
    .clone()
}

async fn as_token(sim: &LinearSim, access_token: &str, query: &str) -> Answer {
    gql_with_key(
        sim,
        Some(&format!("Bearer {access_token}")),
        query,
        json!({}),
    )
    .await
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v:#}"))
}

/// The field names of an SDL type, read from Linear's schema.
fn sdl_fields(type_name: &str) -> Option<BTreeSet<String>> {
    let sdl = cyrus_sandbox::shared::read("contracts/linear-schema.graphql")?;
    let start = sdl.find(&format!("\ntype {type_name} {{"))?;
    let body = &sdl[start..];
    let end = body.find("\n}")?;
    Some(
        body[..end]
            .lines()
            .skip(1)
            .filter_map(|l| {
                let l = l.strip_prefix("  ")?;
                let name: String = l
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty() && l[name.len()..].starts_with([':', '('])).then_some(name)
            })
            .collect(),
    )
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn the_code_flow_with_pkce_installs_the_app_as_its_own_user() {
    let sim = frozen_sim().await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &sim,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ],
    );
    let back = redirected(&url).await;
    assert_eq!(
        format!("{}://{}{}", back.scheme(), back.authority(), back.path()),
        CALLBACK
    );
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    let code = param(&back, "code").expect("a code");

    let exchange = |verifier: String, code: String| {
        let sim = &sim;
        async move {
            token(
                sim,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("client_id", sim.oauth_client_id()),
                    ("client_secret", sim.oauth_client_secret()),
                    ("code_verifier", &verifier),
                ],
                false,
            )
            .await
        }
    };
    // A wrong verifier is refused and does not use the code up.
    let (wrong, _) = pkce();
    let refused = exchange(wrong, code.clone()).await;
    assert_eq!((refused.status, refused.error()), (400, "invalid_grant"));
    assert!(refused.body["error_description"].is_string());

    let answer = exchange(verifier.clone(), code.clone()).await;
    let body = answer.ok();
    // §1: {"access_token", "token_type": "Bearer", "expires_in": 86399, "scope", "refresh_token"}.
    assert_eq!(
        keys(body),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86399);
    assert_eq!(body["scope"], "read write app:assignable app:mentionable");
    assert_eq!(answer.headers["cache-control"], "no-store");
    let access = str_of(body, "access_token").to_string();

    // The token is the app user, in the first organization.
    let me = as_token(
        &sim,
        &access,
        "{ viewer { id app } organization { id urlKey } }",
    )
    .await;
    let data = me.data();
    assert_eq!(data["viewer"]["id"], sim.agent_user_id());
    assert_eq!(data["viewer"]["app"], true);
    assert_eq!(data["organization"]["id"], sim.organization_id());
    // An OAuth token goes in `Bearer`; the raw value alone is refused.
    let raw = gql_with_key(&sim, Some(&access), "{ viewer { id } }", json!({})).await;
    assert_eq!(
        (raw.status, raw.error_code()),
        (401, "AUTHENTICATION_ERROR")
    );

    let installs = sim.control().installations();
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert_eq!(installs[0].organization_id, sim.organization_id());
    assert_eq!(installs[0].client_id, sim.oauth_client_id());
    assert_eq!(installs[0].live_access_tokens, 1);
    assert_eq!(installs[0].live_refresh_tokens, 1);

    // Codes are single-use; a replay also revokes what the code granted.
    let replay = exchange(verifier, code).await;
    assert_eq!((replay.status, replay.error()), (400, "invalid_grant"));
    let after = as_token(&sim, &access, "{ viewer { id } }").await;
    assert_eq!(after.status, 401);
    let stats = sim.control().token_stats();
    assert_eq!(stats.authorization_code.calls, 3);
    assert_eq!(stats.authorization_code.invalid_grant, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_code_expires_and_must_come_back_to_its_redirect_uri_with_its_verifier() {
    let sim = frozen_sim().await;
    let (verifier, challenge) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let exchange = |code: String, redirect: &'static str, verifier: Option<String>| {
        let sim = &sim;
        async move {
            let mut fields = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", redirect.to_string()),
            ];
            if let Some(v) = verifier {
                fields.push(("code_verifier", v));
            }
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(sim, &fields, true).await
        }
    };
    let code = |url: url::Url| param(&url, "code").unwrap();

    let c = code(redirected(&authorize_url(&sim, &pkce_params)).await);
    let a = exchange(
        c.clone(),
        "http://127.0.0.1:1/oauth/callback",
        Some(verifier.clone()),
    )
    .await;
    assert_eq!(a.error(), "invalid_grant", "another redirect_uri");
    let a = exchange(c.clone(), CALLBACK, None).await;
    assert_eq!(a.error(), "invalid_request", "the verifier is missing");
    sim.control().advance(Duration::from_secs(11 * 60));
    let a = exchange(c, CALLBACK, Some(verifier.clone())).await;
    assert_eq!(a.error(), "invalid_grant", "the code expired");

    // Without a challenge, no verifier is expected — and one sent is refused.
    let c = code(redirected(&authorize_url(&sim, &[])).await);
    let a = exchange(c.clone(), CALLBACK, Some(verifier)).await;
    assert_eq!(a.error(), "invalid_request");
    exchange(c, CALLBACK, None).await.ok();

    // Client authentication is required and checked.
    let c = code(redirected(&authorize_url(&sim, &[])).await);
    let bad = token(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", CALLBACK),
            ("client_id", sim.oauth_client_id()),
            ("client_secret", "wrong"),
        ],
        false,
    )
    .await;
    assert_eq!((bad.status, bad.error()), (401, "invalid_client"));
    // The token endpoint takes a form, not JSON.
    let json_body = reqwest::Client::new()
        .post(sim.token_url())
        .json(&json!({"grant_type": "authorization_code", "code": c}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status().as_u16(), 400);
    let body: Value = json_body.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_validates_the_client_the_redirect_and_actor_app() {
    let sim = frozen_sim().await;
    let good = authorize_url(&sim, &[]);
    // Nowhere trustworthy to redirect to: an error page.
    for url in [
        edit_url(&good, &[], &[("client_id", "nobody")]),
        edit_url(&good, &[], &[("redirect_uri", "https://evil.example/cb")]),
        edit_url(&good, &["redirect_uri"], &[]),
    ] {
        let resp = browser().get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{url}");
        assert!(resp.headers().get("location").is_none());
    }
    // Otherwise the error goes back to the app, with the state.
    for (url, error) in [
        (edit_url(&good, &["actor"], &[]), "invalid_request"),
        (
            edit_url(&good, &[], &[("actor", "user")]),
            "invalid_request",
        ),
        (
            edit_url(&good, &[], &[("scope", "read,admin")]),
            "invalid_scope",
        ),
        (
            edit_url(&good, &[], &[("scope", "read,everything")]),
            "invalid_scope",
        ),
        (
            edit_url(&good, &[], &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            authorize_url(
                &sim,
                &[
                    ("code_challenge", &pkce().1),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
    ] {
        let back = redirected(&url).await;
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{url}");
        assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
        assert!(param(&back, "code").is_none());
    }
    assert!(sim.control().installations().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refresh_rotates_and_a_spent_or_killed_refresh_token_is_invalid_grant() {
    let sim = frozen_sim().await;
    let first = install(&sim).await;
    let r1 = str_of(&first, "refresh_token").to_string();
    let refresh = |rt: String| {
        let sim = &sim;
        async move {
            token(
                sim,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                true,
            )
            .await
        }
    };
    let second = refresh(r1.clone()).await;
    let body = second.ok().clone();
    let r2 = str_of(&body, "refresh_token").to_string();
    assert_ne!(r2, r1, "a refresh hands out a new refresh token");
    assert_ne!(body["access_token"], first["access_token"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86399);
    assert_eq!(body["scope"], first["scope"]);
    let me = as_token(&sim, str_of(&body, "access_token"), "{ viewer { id } }").await;
    assert_eq!(me.data()["viewer"]["id"], sim.agent_user_id());

    // The old one is spent.
    let spent = refresh(r1).await;
    assert_eq!(spent.status, 400);
    assert_eq!(
        keys(&spent.body),
        ["error", "error_description"].map(String::from).into()
    );
    assert_eq!(spent.error(), "invalid_grant");
    // An unknown one too.
    assert_eq!(
        refresh("lin_refresh_nope".into()).await.error(),
        "invalid_grant"
    );

    // A refresh token the control API killed is dead as well.
    assert!(sim.control().kill_refresh_token(&r2));
    assert!(!sim.control().kill_refresh_token(&r2), "already dead");
    assert_eq!(refresh(r2).await.error(), "invalid_grant");

    let stats = sim.control().token_stats();
    assert_eq!(stats.refresh_token.calls, 4);
    assert_eq!(stats.refresh_token.failed, 3);
    assert_eq!(stats.refresh_token.invalid_grant, 3);
    assert_eq!(stats.authorization_code.calls, 1);

    // Killing by organization reaches every live refresh token there.
    let fresh = install(&sim).await;
    assert_eq!(sim.control().kill_refresh_tokens("acme").unwrap(), 1);
    assert_eq!(
        refresh(str_of(&fresh, "refresh_token").into())
            .await
            .error(),
        "invalid_grant"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_access_token_expires_after_24_simulated_hours_and_a_refresh_recovers() {
    let sim = frozen_sim().await;
    let first = install(&sim).await;
    let access = str_of(&first, "access_token").to_string();
    let c = sim.control();

    c.advance(Duration::from_secs(24 * 3600 - 60));
    assert_eq!(
        as_token(&sim, &access, "{ viewer { id } }").await.status,
        200
    );
    c.advance(Duration::from_secs(61));
    let expired = as_token(&sim, &access, "{ viewer { id } }").await;
    assert_eq!(expired.status, 401);
    // §10's documented body for bad credentials, exactly.
    if let Some(doc) = cyrus_sandbox::shared::read("docs/linear-agent-api.md") {
        let row = doc
            .lines()
            .find(|l| l.starts_with("| bad or missing credentials"))
            .expect("§10 documents the authentication error");
        let start = row.find("`{").expect("a JSON body") + 1;
        let end = row.rfind("}`").expect("a JSON body") + 1;
        let documented: Value = serde_json::from_str(&row[start..end]).unwrap();
        assert_eq!(expired.body, documented);
    }
    // The static API key is not affected by the clock.
    let key = gql_with_key(&sim, Some(sim.api_key()), "{ viewer { id } }", json!({})).await;
    assert_eq!(key.status, 200);

    let renewed = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_of(&first, "refresh_token")),
            ("client_id", sim.oauth_client_id()),
            ("client_secret", sim.oauth_client_secret()),
        ],
        false,
    )
    .await;
    let access2 = str_of(renewed.ok(), "access_token").to_string();
    let me = as_token(&sim, &access2, "{ viewer { id } }").await;
    assert_eq!(me.data()["viewer"]["id"], sim.agent_user_id());
    assert_eq!(c.token_stats().refresh_token.calls, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn client_credentials_give_a_30_day_app_token_without_refresh_when_enabled() {
    let sim = frozen_sim().await;
    let answer = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read,write"),
        ],
        true,
    )
    .await;
    let body = answer.ok().clone();
    assert!(body.get("refresh_token").is_none(), "{body:#}");
    assert_eq!(body["expires_in"], 30 * 86400 - 1);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    let access = str_of(&body, "access_token");
    let me = as_token(&sim, access, "{ viewer { id } }").await;
    assert_eq!(me.data()["viewer"]["id"], sim.agent_user_id());
    let c = sim.control();
    c.advance(Duration::from_secs(29 * 86400));
    assert_eq!(
        as_token(&sim, access, "{ viewer { id } }").await.status,
        200
    );
    c.advance(Duration::from_secs(2 * 86400));
    assert_eq!(
        as_token(&sim, access, "{ viewer { id } }").await.status,
        401
    );
    assert_eq!(c.token_stats().client_credentials.calls, 1);

    // An app without the grant enabled is refused.
    let app = c
        .register_oauth_app(NewOAuthApp {
            name: Some("no-cc".into()),
            redirect_uris: vec![CALLBACK.into()],
            client_credentials: false,
            ..NewOAuthApp::default()
        })
        .unwrap();
    let refused = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ],
        false,
    )
    .await;
    assert_eq!(
        (refused.status, refused.error()),
        (400, "unauthorized_client")
    );
    let unknown = token(&sim, &[("grant_type", "password")], true).await;
    assert_eq!(unknown.error(), "unsupported_grant_type");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_denied_consent_redirects_with_access_denied() {
    let sim = frozen_sim().await;
    let c = sim.control();
    c.set_consent(Consent::Deny);
    let back = redirected(&authorize_url(&sim, &[])).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert!(param(&back, "code").is_none());

    // Held: the browser waits until the control API decides.
    c.set_consent(Consent::Hold);
    let url = authorize_url(&sim, &[("prompt", "consent")]);
    let waiting = tokio::spawn(async move { redirected(&url).await });
    let pending = loop {
        if let Some(p) = c.pending_authorizations().pop() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(pending.prompt.as_deref(), Some("consent"));
    assert_eq!(pending.organization_id, sim.organization_id());
    assert!(!waiting.is_finished());
    let location = c.deny_authorization(&pending.id).unwrap();
    let back = waiting.await.unwrap();
    assert_eq!(back.to_string(), location);
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert!(c.installations().is_empty());

    // And approved, it carries a code that exchanges.
    let url = authorize_url(&sim, &[]);
    let waiting = tokio::spawn(async move { redirected(&url).await });
    let pending = loop {
        if let Some(p) = c.pending_authorizations().pop() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    c.approve_authorization(&pending.id).unwrap();
    let code = param(&waiting.await.unwrap(), "code").expect("a code");
    token(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
        true,
    )
    .await
    .ok();
    assert!(c.deny_authorization(&pending.id).is_err(), "decided once");
    sim.shutdown().await;
}

#[tokio::test]
async fn two_organizations_each_have_their_own_app_user_and_workspace() {
    let mut rx = receiver(vec![]).await;
    let sim = LinearSim::start(LinearSimOptions {
        time_scale: 0.0,
        webhook_url: Some(rx.url.clone()),
        ..LinearSimOptions::default()
    })
    .await
    .unwrap();
    let c = sim.control();
    let globex = c
        .add_organization(NewOrganization {
            name: "Globex".into(),
            ..NewOrganization::default()
        })
        .unwrap();
    assert_eq!(globex.url_key, "globex");
    assert_ne!(globex.app_user_id, sim.agent_user_id());
    assert_eq!(c.organizations().len(), 2);

    let acme_token = install(&sim).await;
    c.install_into(Some("globex")).unwrap();
    let globex_token = install(&sim).await;
    c.install_into(None).unwrap();

    let who = "{ viewer { id } organization { id name } }";
    let acme = as_token(&sim, str_of(&acme_token, "access_token"), who).await;
    let acme = acme.data();
    assert_eq!(acme["viewer"]["id"], sim.agent_user_id());
    assert_eq!(acme["organization"]["id"], sim.organization_id());
    let g = as_token(&sim, str_of(&globex_token, "access_token"), who).await;
    let g = g.data();
    assert_eq!(g["viewer"]["id"], globex.app_user_id.as_str());
    assert_eq!(g["organization"]["id"], globex.id.as_str());
    assert_eq!(g["organization"]["name"], "Globex");

    // Each organization's work stays in it, and its webhooks name its app user.
    let gc = c.organization(&globex.id).expect("scoped control");
    gc.create_team(NewTeam {
        key: "OPS".into(),
        name: "Ops".into(),
        ..NewTeam::default()
    })
    .unwrap();
    let issue = gc
        .create_issue(NewIssue {
            title: "Rotate the keys".into(),
            ..NewIssue::default()
        })
        .unwrap();
    let session = gc.delegate(&issue.id, None).unwrap();
    let created = rx.next_event("AgentSessionEvent").await;
    verify(sim.webhook_secret(), &created);
    let body = created.json();
    assert_eq!(body["organizationId"], globex.id.as_str());
    assert_eq!(body["appUserId"], globex.app_user_id.as_str());
    assert_eq!(body["oauthClientId"], sim.oauth_client_id());
    assert_eq!(body["agentSession"]["id"], session.as_str());

    let q = format!("{{ issue(id: \"{}\") {{ id title }} }}", issue.id);
    let in_globex = as_token(&sim, str_of(&globex_token, "access_token"), &q).await;
    assert_eq!(in_globex.data()["issue"]["title"], "Rotate the keys");
    let in_acme = as_token(&sim, str_of(&acme_token, "access_token"), &q).await;
    assert_eq!(in_acme.error_code(), "INPUT_ERROR");
    // The static key still reaches the first organization.
    let key = gql_with_key(&sim, Some(sim.api_key()), &q, json!({})).await;
    assert_eq!(key.error_code(), "INPUT_ERROR");

    // Over HTTP, a header picks the organization.
    let http = reqwest::Client::new();
    let teams: Value = http
        .post(format!("{}/_control/teams", sim.base_url()))
        .header("X-Sim-Organization", &globex.id)
        .json(&json!({"key": "WEB", "name": "Web"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(gc.team_states(str_of(&teams, "id")).len() > 1);
    assert!(c.team_states(str_of(&teams, "id")).is_empty());
    let orgs: Value = http
        .get(format!("{}/_control/organizations", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 2);

    let installs = c.installations();
    assert_eq!(installs.len(), 2);
    assert!(installs.iter().any(|i| i.organization_id == globex.id));
    sim.shutdown().await;
}

#[tokio::test]
async fn revoking_the_installation_sends_oauth_app_revoked_and_kills_its_tokens() {
    let mut rx = receiver(vec![]).await;
    let sim = LinearSim::start(LinearSimOptions {
        time_scale: 0.0,
        webhook_url: Some(rx.url.clone()),
        ..LinearSimOptions::default()
    })
    .await
    .unwrap();
    let c = sim.control();
    let team = c
        .create_team(NewTeam {
            key: "ENG".into(),
            name: "Engineering".into(),
            ..NewTeam::default()
        })
        .unwrap();
    let answer = install(&sim).await;
    let access = str_of(&answer, "access_token");

    // A team-access change first: PermissionChange `teamAccessChanged`.
    c.change_team_access(std::slice::from_ref(&team.id), &[], false)
        .unwrap();
    let change = rx.next_event("PermissionChange").await;
    verify(sim.webhook_secret(), &change);
    let body = change.json();
    assert_eq!(body["action"], "teamAccessChanged");
    assert_eq!(body["addedTeamIds"], json!([team.id]));
    assert_eq!(body["removedTeamIds"], json!([]));
    assert_eq!(body["canAccessAllPublicTeams"], false);
    assert_eq!(body["appUserId"], sim.agent_user_id());
    if let Some(fields) = sdl_fields("AppUserTeamAccessChangedWebhookPayload") {
        assert_eq!(keys(&body), fields);
    }

    c.revoke_installation("acme", None).unwrap();
    let revoked = rx.next_event("OAuthApp").await;
    verify(sim.webhook_secret(), &revoked);
    let body = revoked.json();
    assert_eq!(body["type"], "OAuthApp");
    assert_eq!(body["action"], "revoked");
    assert_eq!(body["organizationId"], sim.organization_id());
    assert_eq!(body["oauthClientId"], sim.oauth_client_id());
    assert!(body["webhookTimestamp"].is_number());
    if let Some(fields) = sdl_fields("OAuthAppWebhookPayload") {
        assert_eq!(keys(&body), fields);
    }

    // Its tokens are dead, and so is its refresh token.
    assert_eq!(
        as_token(&sim, access, "{ viewer { id } }").await.status,
        401
    );
    let refresh = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_of(&answer, "refresh_token")),
        ],
        true,
    )
    .await;
    assert_eq!(refresh.error(), "invalid_grant");
    let installs = c.installations();
    assert!(installs[0].revoked_at.is_some());
    assert_eq!(installs[0].live_access_tokens, 0);
    assert!(!c.current_organization().app_installed);
    assert!(
        c.revoke_installation("acme", None).is_err(),
        "already revoked"
    );

    // An uninstalled app gets no webhooks …
    let before = c.deliveries().len();
    let issue = c
        .create_issue(NewIssue {
            title: "Quiet".into(),
            ..NewIssue::default()
        })
        .unwrap();
    assert_eq!(c.deliveries().len(), before);
    // … until it is installed again.
    let again = install(&sim).await;
    assert!(c.current_organization().app_installed);
    c.delegate(&issue.id, None).unwrap();
    let created = rx.next_event("AgentSessionEvent").await;
    assert_eq!(created.json()["action"], "created");
    let me = as_token(&sim, str_of(&again, "access_token"), "{ viewer { id } }").await;
    assert_eq!(me.data()["viewer"]["id"], sim.agent_user_id());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_revoke_endpoint_revokes_one_token_and_the_clock_is_controllable_over_http() {
    let sim = frozen_sim().await;
    let answer = install(&sim).await;
    let access = str_of(&answer, "access_token");
    let resp = reqwest::Client::new()
        .post(sim.revoke_url())
        .header("Authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        as_token(&sim, access, "{ viewer { id } }").await.status,
        401
    );
    // The refresh token still works, until it is revoked by form too.
    let rt = str_of(&answer, "refresh_token");
    let renewed = token(
        &sim,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        true,
    )
    .await;
    let renewed = renewed.ok().clone();
    let resp = reqwest::Client::new()
        .post(sim.revoke_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={}", str_of(&renewed, "refresh_token")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let gone = as_token(&sim, str_of(&renewed, "access_token"), "{ viewer { id } }").await;
    assert_eq!(gone.status, 401, "its access token went with it");
    assert_eq!(sim.control().token_stats().revoke, 2);

    let http = reqwest::Client::new();
    let t0 = sim.control().now();
    let clock: Value = http
        .post(format!("{}/_control/clock/advance", sim.base_url()))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["timeScale"], 0.0);
    assert_eq!(sim.control().now() - t0, chrono::Duration::hours(1));
    let stats: Value = http
        .get(format!("{}/_control/oauth/token-stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["refreshToken"]["calls"], 1);
    assert_eq!(stats["authorizationCode"]["calls"], 1);
    sim.shutdown().await;
}
