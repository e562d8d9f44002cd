//! `LinearClient` against a scripted local GraphQL endpoint: each test queues
//! the exact answers (status, headers, body) and then inspects every request
//! the client made. Failures print the full request log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cyrus_linear::client::{IssueUpdate, OAuthConfig, TokenPersister};
use cyrus_linear::{
    ActivityContent, Credentials, ErrorClass, LinearClient, LinearClientConfig, LinearError,
    NewActivity, OAuthTokens,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    authorization: String,
    body: String,
}

#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

#[derive(Default)]
struct Script {
    graphql: VecDeque<Canned>,
    token: VecDeque<Canned>,
    log: Vec<Recorded>,
}

type Shared = Arc<Mutex<Script>>;

struct Fake {
    url: String,
    script: Shared,
}

impl Fake {
    async fn start() -> Self {
        let script: Shared = Arc::default();
        let app = Router::new()
            .route("/graphql", post(graphql))
            .route("/oauth/token", post(token))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { url, script }
    }

    fn answer(&self, status: u16, body: Value) {
        self.answer_with(status, vec![], body);
    }

    fn answer_with(&self, status: u16, headers: Vec<(&'static str, String)>, body: Value) {
        self.script.lock().unwrap().graphql.push_back(Canned {
            status,
            headers,
            body,
        });
    }

    fn token_answer(&self, status: u16, body: Value) {
        self.script.lock().unwrap().token.push_back(Canned {
            status,
            headers: vec![],
            body,
        });
    }

    fn log(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().log.clone()
    }

    fn config(&self, credentials: Credentials) -> LinearClientConfig {
        let mut c = LinearClientConfig::new(
            format!("{}/graphql", self.url).parse().unwrap(),
            credentials,
        );
        c.retry_min_delay = Duration::from_millis(1);
        c.retry_max_delay = Duration::from_millis(5);
        c
    }

    fn api_key_client(&self) -> LinearClient {
        LinearClient::new(self.config(Credentials::ApiKey(SecretString::from(
            "lin_api_test".to_owned(),
        ))))
        .unwrap()
    }
}

fn respond(canned: Option<Canned>) -> Response {
    let Some(c) = canned else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response();
    };
    let mut headers = HeaderMap::new();
    for (k, v) in c.headers {
        headers.insert(k, v.parse().unwrap());
    }
    (
        StatusCode::from_u16(c.status).unwrap(),
        headers,
        axum::Json(c.body),
    )
        .into_response()
}

fn record(script: &Shared, path: &str, headers: &HeaderMap, body: &Bytes) {
    script.lock().unwrap().log.push(Recorded {
        path: path.into(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

async fn graphql(State(script): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&script, "/graphql", &headers, &body);
    let next = script.lock().unwrap().graphql.pop_front();
    respond(next)
}

async fn token(State(script): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&script, "/oauth/token", &headers, &body);
    let next = script.lock().unwrap().token.pop_front();
    respond(next)
}

fn viewer_data() -> Value {
    json!({"data": {"viewer": {"id": "app-user", "name": "cyrus", "app": true,
        "organization": {"id": "org", "name": "Acme", "urlKey": "acme"}}}})
}

#[tokio::test]
async fn api_key_is_sent_raw_and_rate_headers_are_recorded() {
    let fake = Fake::start().await;
    let reset_ms = chrono::Utc::now().timestamp_millis() + 3_600_000;
    fake.answer_with(
        200,
        vec![
            ("x-ratelimit-requests-limit", "2500".into()),
            ("x-ratelimit-requests-remaining", "2400".into()),
            ("x-ratelimit-requests-reset", reset_ms.to_string()),
            ("x-complexity", "3".into()),
        ],
        viewer_data(),
    );
    let client = fake.api_key_client();
    let viewer = client.viewer().await.unwrap();
    assert_eq!(viewer.id, "app-user");
    assert_eq!(
        viewer.organization.unwrap().url_key.as_deref(),
        Some("acme")
    );

    let log = fake.log();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].authorization, "lin_api_test");
    let sent: Value = serde_json::from_str(&log[0].body).unwrap();
    assert!(
        sent["query"].as_str().unwrap().contains("viewer"),
        "{log:#?}"
    );

    let snap = client.rate_limit();
    assert_eq!(snap.requests.remaining, Some(2400));
    assert_eq!(snap.requests.limit, Some(2500));
    assert_eq!(snap.last_complexity, Some(3));
}

#[tokio::test]
async fn ratelimited_400_pauses_the_token_until_reset_without_more_requests() {
    let fake = Fake::start().await;
    let reset_ms = chrono::Utc::now().timestamp_millis() + 600_000;
    fake.answer_with(
        400,
        vec![("x-ratelimit-requests-reset", reset_ms.to_string())],
        json!({"errors": [{"message": "Rate limit exceeded. Only 2500 requests are allowed per 1 hour.",
            "extensions": {"type": "ratelimited", "code": "RATELIMITED", "statusCode": 429, "userError": true}}]}),
    );
    let client = fake.api_key_client();
    let err = client.viewer().await.unwrap_err();
    let expected_reset = chrono::DateTime::from_timestamp_millis(reset_ms);
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited {
            reset_at: expected_reset
        },
        "{err}"
    );

    // The next call is refused locally: Linear is not hit again before reset.
    let again = client.viewer().await.unwrap_err();
    assert_eq!(
        again.class(),
        ErrorClass::RateLimited {
            reset_at: expected_reset
        }
    );
    assert_eq!(fake.log().len(), 1, "{:#?}", fake.log());
    assert_eq!(client.rate_limit().paused_until, expected_reset);
}

#[tokio::test]
async fn input_error_is_permanent_and_never_retried() {
    let fake = Fake::start().await;
    fake.answer(200, json!({"errors":[{"message":"Entity not found: AgentSession","path":["agentActivityCreate"],
        "extensions":{"type":"invalid input","code":"INPUT_ERROR","statusCode":400,"userError":true}}],"data":null}));
    let client = fake.api_key_client();
    let activity = NewActivity::new("gone", ActivityContent::Thought { body: "hi".into() });
    let err = client.create_activity(&activity).await.unwrap_err();
    assert!(
        matches!(&err, LinearError::Permanent { code, .. } if code == "INPUT_ERROR"),
        "{err:?}"
    );
    assert_eq!(fake.log().len(), 1, "{:#?}", fake.log());
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let fake = Fake::start().await;
    fake.answer(502, json!("bad gateway"));
    fake.answer(503, json!("unavailable"));
    fake.answer(
        200,
        json!({"data": {"agentActivityCreate": {"success": true, "agentActivity": {"id": "act-1"}}}}),
    );
    let client = fake.api_key_client();
    let activity = NewActivity::new(
        "s-1",
        ActivityContent::Thought {
            body: "Working".into(),
        },
    )
    .ephemeral()
    .with_id("11111111-1111-4111-8111-111111111111");
    assert_eq!(client.create_activity(&activity).await.unwrap(), "act-1");
    let log = fake.log();
    assert_eq!(log.len(), 3, "{log:#?}");
    // Every retry carries the same client id, so Linear can dedupe.
    for r in &log {
        let sent: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            sent["variables"]["input"]["id"],
            json!("11111111-1111-4111-8111-111111111111"),
            "{log:#?}"
        );
        assert_eq!(sent["variables"]["input"]["ephemeral"], json!(true));
    }
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = Fake::start().await;
    for _ in 0..10 {
        fake.answer(500, json!("boom"));
    }
    let client = fake.api_key_client();
    let err = client.viewer().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(
        fake.log().len(),
        4,
        "1 attempt + 3 retries: {:#?}",
        fake.log()
    );
}

#[tokio::test]
async fn api_key_auth_error_is_not_retried() {
    let fake = Fake::start().await;
    fake.answer(401, json!({"errors":[{"message":"Authentication required, not authenticated",
        "extensions":{"type":"authentication error","code":"AUTHENTICATION_ERROR","statusCode":401,"userError":true}}]}));
    let client = fake.api_key_client();
    let err = client.viewer().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    assert_eq!(fake.log().len(), 1, "{:#?}", fake.log());
}

fn oauth_client(fake: &Fake, saved: Arc<Mutex<Vec<OAuthTokens>>>) -> LinearClient {
    let persist: TokenPersister = Arc::new(move |tokens| {
        let saved = saved.clone();
        Box::pin(async move {
            saved.lock().unwrap().push(tokens);
            Ok(())
        })
    });
    let oauth = OAuthConfig {
        tokens: OAuthTokens {
            access_token: SecretString::from("old-access".to_owned()),
            refresh_token: Some(SecretString::from("old-refresh".to_owned())),
            expires_at: None,
        },
        client_id: "client".into(),
        client_secret: SecretString::from("client-secret".to_owned()),
        token_endpoint: format!("{}/oauth/token", fake.url).parse().unwrap(),
        persist,
    };
    LinearClient::new(fake.config(Credentials::OAuth(Box::new(oauth)))).unwrap()
}

#[tokio::test]
async fn oauth_401_refreshes_once_persists_and_retries_with_the_new_token() {
    let fake = Fake::start().await;
    fake.answer(
        401,
        json!({"errors":[{"message":"expired",
        "extensions":{"code":"AUTHENTICATION_ERROR","userError":true}}]}),
    );
    fake.token_answer(
        200,
        json!({"access_token": "new-access", "token_type": "Bearer",
        "expires_in": 86399, "scope": "read write", "refresh_token": "new-refresh"}),
    );
    fake.answer(
        200,
        json!({"data": {"issueUpdate": {"success": true, "issue": {"id": "i-1"}}}}),
    );
    let saved = Arc::new(Mutex::new(Vec::new()));
    let client = oauth_client(&fake, saved.clone());
    client
        .update_issue(
            "ENG-1",
            &IssueUpdate {
                state_id: Some("started".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let log = fake.log();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(log[0].authorization, "Bearer old-access");
    assert_eq!(log[1].path, "/oauth/token");
    // Client authentication by form fields, as Linear documents for every grant.
    assert!(log[1].body.contains("client_id=client"), "{log:#?}");
    assert!(
        log[1].body.contains("client_secret=client-secret"),
        "{log:#?}"
    );
    assert!(log[1].body.contains("grant_type=refresh_token"), "{log:#?}");
    assert!(
        log[1].body.contains("refresh_token=old-refresh"),
        "{log:#?}"
    );
    assert_eq!(log[2].authorization, "Bearer new-access");

    let saved = saved.lock().unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].access_token.expose_secret(), "new-access");
    assert_eq!(
        saved[0].refresh_token.as_ref().unwrap().expose_secret(),
        "new-refresh"
    );
}

#[tokio::test]
async fn oauth_still_unauthorized_after_refresh_is_an_auth_error() {
    let fake = Fake::start().await;
    let unauth = json!({"errors":[{"message":"no","extensions":{"code":"AUTHENTICATION_ERROR","userError":true}}]});
    fake.answer(401, unauth.clone());
    fake.token_answer(
        200,
        json!({"access_token": "new-access", "refresh_token": "r2"}),
    );
    fake.answer(401, unauth);
    let client = oauth_client(&fake, Arc::default());
    let err = client.viewer().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    assert_eq!(fake.log().len(), 3, "{:#?}", fake.log());
}

#[tokio::test]
async fn a_spent_refresh_token_means_the_workspace_needs_reconnecting() {
    let fake = Fake::start().await;
    fake.answer(
        401,
        json!({"errors":[{"message":"no","extensions":{"code":"AUTHENTICATION_ERROR"}}]}),
    );
    fake.token_answer(
        400,
        json!({"error": "invalid_grant", "error_description": "refresh token already used"}),
    );
    let saved = Arc::new(Mutex::new(Vec::new()));
    let client = oauth_client(&fake, saved.clone());
    let err = client.viewer().await.unwrap_err();
    assert!(matches!(err, LinearError::NeedsReconnect { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::NeedsReconnect);
    assert!(err.to_string().contains("cyrus linear connect"), "{err}");
    assert!(saved.lock().unwrap().is_empty());
    // Not retried: one GraphQL call, one refresh.
    assert_eq!(fake.log().len(), 2, "{:#?}", fake.log());
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_auth_error_naming_the_config() {
    let fake = Fake::start().await;
    fake.answer(
        401,
        json!({"errors":[{"message":"no","extensions":{"code":"AUTHENTICATION_ERROR"}}]}),
    );
    fake.token_answer(401, json!({"error": "invalid_client"}));
    let client = oauth_client(&fake, Arc::default());
    let err = client.viewer().await.unwrap_err();
    assert!(matches!(err, LinearError::Refresh(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(err.to_string().contains("clientSecret"), "{err}");
}

#[tokio::test]
async fn identity_reads_the_app_user_and_its_workspace() {
    let fake = Fake::start().await;
    fake.answer(
        200,
        json!({"data": {"viewer": {"id": "app-user", "name": "Cyrus"},
            "organization": {"id": "org-1", "name": "Acme", "urlKey": "acme"}}}),
    );
    let identity = fake.api_key_client().identity().await.unwrap();
    assert_eq!(
        identity,
        cyrus_linear::Identity {
            app_user_id: "app-user".into(),
            app_user_name: "Cyrus".into(),
            organization_id: "org-1".into(),
            organization_name: "Acme".into(),
            url_key: "acme".into(),
        }
    );
    let log = fake.log();
    assert!(log[0].body.contains("query Identity"), "{log:#?}");

    // A missing workspace is an unexpected answer, not an empty identity.
    fake.answer(200, json!({"data": {"viewer": {"id": "u", "name": "n"}}}));
    let err = fake.api_key_client().identity().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

#[test]
fn personal_api_keys_are_recognised() {
    assert!(cyrus_linear::is_personal_api_key("lin_api_0123abcd"));
    assert!(!cyrus_linear::is_personal_api_key("lin_oauth_0123abcd"));
    assert!(!cyrus_linear::is_personal_api_key(
        "00a21d8b0c4e2375114e49c067dfb81e"
    ));
}
