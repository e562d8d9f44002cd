//! `Credentials::Managed`: the client asks a `TokenSource` for tokens and, on
//! a 401, for one refresh per generation, then retries once. The fake source
//! here does not coalesce anything itself, so the counts below are the
//! client's doing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cyrus_linear::client::BoxFuture;
use cyrus_linear::{
    Credentials, ErrorClass, LinearClient, LinearClientConfig, LinearError, TokenSource,
};
use secrecy::SecretString;
use serde_json::json;

/// Tokens are `token-<generation>`; refreshing bumps the generation.
struct FakeSource {
    generation: Mutex<u64>,
    refreshes: AtomicUsize,
    /// Answered by `refresh` instead of refreshing, when set.
    refresh_outcome: Mutex<Option<Result<bool, LinearError>>>,
    current_error: Mutex<Option<LinearError>>,
}

impl FakeSource {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            generation: Mutex::new(0),
            refreshes: AtomicUsize::new(0),
            refresh_outcome: Mutex::new(None),
            current_error: Mutex::new(None),
        })
    }
}

impl TokenSource for FakeSource {
    fn current(&self) -> BoxFuture<'_, Result<(SecretString, u64), LinearError>> {
        Box::pin(async move {
            if let Some(e) = self.current_error.lock().unwrap().clone() {
                return Err(e);
            }
            let g = *self.generation.lock().unwrap();
            Ok((SecretString::from(format!("token-{g}")), g))
        })
    }

    fn refresh(&self, stale_generation: u64) -> BoxFuture<'_, Result<bool, LinearError>> {
        Box::pin(async move {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            // A refresh takes a while (a lease, a token call, a commit).
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(outcome) = self.refresh_outcome.lock().unwrap().clone() {
                return outcome;
            }
            let mut g = self.generation.lock().unwrap();
            assert_eq!(
                *g, stale_generation,
                "asked to refresh a generation already refreshed"
            );
            *g += 1;
            Ok(true)
        })
    }
}

#[derive(Clone)]
struct Server {
    /// Only `token-<valid>` is accepted.
    valid: Arc<Mutex<u64>>,
    /// Stale-token requests wait here, so every caller sees its 401 before
    /// any refresh can finish: the 401s are truly concurrent.
    barrier: Arc<tokio::sync::Barrier>,
    log: Arc<Mutex<Vec<String>>>,
}

async fn graphql(State(server): State<Server>, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    server.log.lock().unwrap().push(auth.clone());
    let valid = format!("Bearer token-{}", *server.valid.lock().unwrap());
    if auth == valid {
        let data = json!({"data": {"viewer": {"id": "app-user", "name": "cyrus", "app": true}}});
        return (StatusCode::OK, axum::Json(data)).into_response();
    }
    server.barrier.wait().await;
    let body = json!({"errors":[{"message":"Authentication required, not authenticated",
        "extensions":{"type":"authentication error","code":"AUTHENTICATION_ERROR","statusCode":401,"userError":true}}]});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

async fn start(valid: u64, concurrent: usize) -> (Server, url::Url) {
    let server = Server {
        valid: Arc::new(Mutex::new(valid)),
        barrier: Arc::new(tokio::sync::Barrier::new(concurrent)),
        log: Arc::default(),
    };
    let app = Router::new()
        .route("/graphql", post(graphql))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (server, url)
}

fn client(url: url::Url, source: Arc<FakeSource>) -> LinearClient {
    let mut config = LinearClientConfig::new(url, Credentials::Managed(source));
    config.retry_min_delay = Duration::from_millis(1);
    config.retry_max_delay = Duration::from_millis(5);
    LinearClient::new(config).unwrap()
}

#[tokio::test]
async fn concurrent_401s_lead_to_one_refresh_and_one_retry_each() {
    const CALLERS: usize = 6;
    let (server, url) = start(1, CALLERS).await;
    let source = FakeSource::new();
    let client = client(url, source.clone());

    let calls = (0..CALLERS).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.viewer().await })
    });
    for call in futures_join(calls).await {
        assert_eq!(call.unwrap().id, "app-user");
    }
    assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
    let log = server.log.lock().unwrap().clone();
    let stale = log.iter().filter(|a| *a == "Bearer token-0").count();
    let fresh = log.iter().filter(|a| *a == "Bearer token-1").count();
    assert_eq!((stale, fresh), (CALLERS, CALLERS), "{log:#?}");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_dead_refresh_token_surfaces_as_needs_reconnect_and_is_not_retried() {
    let (server, url) = start(1, 1).await;
    let source = FakeSource::new();
    *source.refresh_outcome.lock().unwrap() = Some(Err(
        cyrus_linear::oauth::OAuthError::from_code("invalid_grant", None).into(),
    ));
    let err = client(url, source.clone()).viewer().await.unwrap_err();
    assert!(matches!(err, LinearError::NeedsReconnect { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::NeedsReconnect);
    assert_eq!(server.log.lock().unwrap().len(), 1);
    assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn nothing_to_refresh_is_an_auth_error_and_source_errors_pass_through() {
    let (server, url) = start(1, 1).await;
    let source = FakeSource::new();
    *source.refresh_outcome.lock().unwrap() = Some(Ok(false));
    let err = client(url.clone(), source.clone())
        .viewer()
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err:?}");
    assert_eq!(server.log.lock().unwrap().len(), 1);

    // An installation already marked for reconnecting sends nothing at all.
    let parked = FakeSource::new();
    *parked.current_error.lock().unwrap() = Some(LinearError::NeedsReconnect {
        message: "marked needs_reconnect".into(),
    });
    let err = client(url, parked.clone()).viewer().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NeedsReconnect);
    assert_eq!(server.log.lock().unwrap().len(), 1);
    assert_eq!(parked.refreshes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_valid_token_needs_no_refresh() {
    let (server, url) = start(0, 1).await;
    let source = FakeSource::new();
    client(url, source.clone()).viewer().await.unwrap();
    assert_eq!(source.refreshes.load(Ordering::SeqCst), 0);
    assert_eq!(*server.log.lock().unwrap(), ["Bearer token-0"]);
}
