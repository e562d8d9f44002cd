//! `OAuthClient` against a scripted local token server: each test queues the
//! answers, then inspects the exact form bodies and headers sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cyrus_linear::oauth::{OAuthClient, OAuthEndpoints, OAuthError, Pkce};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct Script {
    answers: VecDeque<(u16, Value)>,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Script>>;

struct TokenServer {
    base: url::Url,
    script: Shared,
}

impl TokenServer {
    async fn start() -> Self {
        let script: Shared = Arc::default();
        let app = Router::new()
            .route("/oauth/token", post(handle))
            .route("/oauth/revoke", post(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, script }
    }

    fn answer(&self, status: u16, body: Value) {
        self.script
            .lock()
            .unwrap()
            .answers
            .push_back((status, body));
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    fn client(&self) -> OAuthClient {
        OAuthClient::new(
            "client-1",
            SecretString::from("secret-1".to_owned()),
            OAuthEndpoints::from_base(&self.base).unwrap(),
        )
        .unwrap()
        .with_retry(2, Duration::from_millis(1), Duration::from_millis(5))
    }
}

async fn handle(
    State(script): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let mut script = script.lock().unwrap();
    script.seen.push(Seen {
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: url::form_urlencoded::parse(&body).into_owned().collect(),
    });
    match script.answers.pop_front() {
        Some((status, body)) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response(),
    }
}

fn granted() -> Value {
    json!({"access_token": "acc-new", "token_type": "Bearer", "expires_in": 86399,
           "scope": "read write app:assignable app:mentionable", "refresh_token": "ref-new"})
}

#[tokio::test]
async fn code_exchange_sends_the_verifier_and_client_credentials() {
    let server = TokenServer::start().await;
    server.answer(200, granted());
    let pkce = Pkce::generate();
    let before = chrono::Utc::now();
    let grant = server
        .client()
        .exchange_code(
            "code-1",
            "http://127.0.0.1:9/oauth/callback",
            pkce.verifier(),
        )
        .await
        .unwrap();
    assert_eq!(grant.access_token.expose_secret(), "acc-new");
    assert_eq!(grant.refresh_token.unwrap().expose_secret(), "ref-new");
    assert_eq!(
        grant.scopes,
        ["read", "write", "app:assignable", "app:mentionable"]
    );
    let expires = grant.expires_at.unwrap();
    assert!(expires >= before + chrono::Duration::seconds(86399));
    assert!(expires <= chrono::Utc::now() + chrono::Duration::seconds(86399));

    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let s = &seen[0];
    assert_eq!(s.path, "/oauth/token");
    assert_eq!(
        s.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(s.form["grant_type"], "authorization_code");
    assert_eq!(s.form["code"], "code-1");
    assert_eq!(s.form["redirect_uri"], "http://127.0.0.1:9/oauth/callback");
    assert_eq!(s.form["code_verifier"], pkce.verifier().expose_secret());
    assert_eq!(s.form["client_id"], "client-1");
    assert_eq!(s.form["client_secret"], "secret-1");
    assert_eq!(s.authorization, None);
}

#[tokio::test]
async fn refresh_sends_the_refresh_token_and_a_spent_one_is_invalid_grant_without_retries() {
    let server = TokenServer::start().await;
    server.answer(200, granted());
    server.answer(
        400,
        json!({"error": "invalid_grant", "error_description": "refresh token already used"}),
    );
    let client = server.client();
    let old = SecretString::from("ref-old".to_owned());
    let grant = client.refresh(&old).await.unwrap();
    assert_eq!(grant.refresh_token.unwrap().expose_secret(), "ref-new");
    let err = client.refresh(&old).await.unwrap_err();
    assert_eq!(
        err,
        OAuthError::InvalidGrant {
            description: "refresh token already used".into()
        }
    );
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        2,
        "invalid_grant must not be retried: {seen:#?}"
    );
    assert_eq!(seen[0].form["grant_type"], "refresh_token");
    assert_eq!(seen[0].form["refresh_token"], "ref-old");
}

#[tokio::test]
async fn transient_failures_are_retried_and_bounded() {
    let server = TokenServer::start().await;
    server.answer(503, json!("unavailable"));
    server.answer(429, json!({"error": "slow_down"}));
    server.answer(200, granted());
    let client = server.client();
    let old = SecretString::from("r".to_owned());
    client.refresh(&old).await.unwrap();
    assert_eq!(server.seen().len(), 3);

    for _ in 0..3 {
        server.answer(502, json!("bad gateway"));
    }
    let err = client.refresh(&old).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(server.seen().len(), 6, "first attempt plus two retries");
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_and_unreachable_is_transient() {
    let server = TokenServer::start().await;
    server.answer(
        401,
        json!({"error": "invalid_client", "error_description": "bad secret"}),
    );
    let err = server
        .client()
        .client_credentials(&["read".into()])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OAuthError::InvalidClient {
            description: "bad secret".into()
        }
    );
    assert_eq!(server.seen().len(), 1);

    // Nothing listens on port 9 of localhost (discard is never enabled).
    let closed = OAuthClient::new(
        "c",
        SecretString::from("s".to_owned()),
        OAuthEndpoints::from_base(&"http://127.0.0.1:9".parse().unwrap()).unwrap(),
    )
    .unwrap()
    .with_retry(1, Duration::from_millis(1), Duration::from_millis(1));
    let err = closed
        .refresh(&SecretString::from("r".to_owned()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn client_credentials_asks_for_comma_joined_scopes_and_gets_no_refresh_token() {
    let server = TokenServer::start().await;
    server.answer(
        200,
        json!({"access_token": "app-token", "token_type": "Bearer", "expires_in": 2591999,
               "scope": "read write"}),
    );
    let grant = server
        .client()
        .client_credentials(&["read".into(), "write".into(), "app:assignable".into()])
        .await
        .unwrap();
    assert!(grant.refresh_token.is_none());
    assert_eq!(grant.expires_in, Some(Duration::from_secs(2591999)));
    let seen = server.seen();
    assert_eq!(seen[0].form["grant_type"], "client_credentials");
    assert_eq!(seen[0].form["scope"], "read,write,app:assignable");
}

#[tokio::test]
async fn revoke_posts_the_token_to_the_revoke_endpoint() {
    let server = TokenServer::start().await;
    server.answer(200, json!({}));
    server.answer(
        400,
        json!({"error": "invalid_request", "error_description": "unknown token"}),
    );
    let client = server.client();
    let token = SecretString::from("acc-1".to_owned());
    client.revoke(&token).await.unwrap();
    let err = client.revoke(&token).await.unwrap_err();
    assert!(
        matches!(&err, OAuthError::Other { code, .. } if code == "invalid_request"),
        "{err:?}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/oauth/revoke");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer acc-1"));
    assert_eq!(seen[0].form["token"], "acc-1");
    assert_eq!(seen[0].form["client_id"], "client-1");
}

#[tokio::test]
async fn authorize_url_uses_the_same_endpoints() {
    let server = TokenServer::start().await;
    let client = server.client();
    let pkce = Pkce::generate();
    let req = cyrus_linear::oauth::AuthorizeRequest::new(
        "http://127.0.0.1:9/oauth/callback",
        "state-1",
        &pkce,
    );
    let url = client.authorize_url(&req);
    assert_eq!(url.path(), "/oauth/authorize");
    assert_eq!(url.host_str(), server.base.host_str());
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["code_challenge"], pkce.challenge());
}
