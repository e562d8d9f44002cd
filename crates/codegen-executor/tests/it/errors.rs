//! Each error class, and the retry rules, with faults injected by the
//! simulator.

use crate::support::{config_for, frozen, start, tiny_windows};
use cyrus_codegen_executor::{CodegenClient, CodegenError, CreateRun};
use cyrus_sandbox::codegen::{CodegenSim, Endpoint, SimOptions};
use secrecy::SecretString;

fn create() -> CreateRun {
    CreateRun {
        prompt: "x".into(),
        repo_id: Some(7),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_token_is_a_credentials_error_naming_the_setting() {
    let sim = CodegenSim::start(frozen()).await.unwrap();
    let mut config = config_for(&sim);
    config.token = SecretString::from("wrong".to_string());
    let client = CodegenClient::new(config).unwrap();
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, CodegenError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("codegen.apiToken"), "{err}");
    assert_eq!(
        sim.control().request_count(Endpoint::UsersMe),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn other_org_is_forbidden_naming_org_id() {
    let sim = CodegenSim::start(frozen()).await.unwrap();
    let mut config = config_for(&sim);
    config.org_id = sim.org_id() + 1;
    let client = CodegenClient::new(config).unwrap();
    let err = client.get_run(1).await.unwrap_err();
    assert!(matches!(err, CodegenError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("codegen.orgId"), "{err}");
}

#[tokio::test]
async fn plan_allowance_is_not_retried() {
    let h = start(SimOptions {
        run_allowance: Some(0),
        ..frozen()
    })
    .await;
    let err = h.client.create_run(&create()).await.unwrap_err();
    assert!(
        matches!(err, CodegenError::PlanLimit { .. }),
        "{err:?}\n{}",
        h.dump()
    );
    assert!(err.needs_human());
    assert_eq!(h.sim.control().request_count(Endpoint::CreateRun), 1);
}

#[tokio::test]
async fn not_found_run_and_org_without_repos() {
    let h = start(frozen()).await;
    let err = h.client.get_run(987_654).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains("Agent run not found"), "{err}");

    let h = start(SimOptions {
        repos: vec![],
        ..frozen()
    })
    .await;
    let err = h.client.create_run(&create()).await.unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains("No repos"),
        "{err}"
    );
}

#[tokio::test]
async fn validation_error_keeps_the_body() {
    let h = start(frozen()).await;
    let err = h
        .client
        .create_run(&CreateRun {
            prompt: "[sim bogus=1]".into(),
            ..create()
        })
        .await
        .unwrap_err();
    match &err {
        CodegenError::Validation { body, message, .. } => {
            assert!(body.contains("detail"), "{body}");
            assert!(!message.is_empty());
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert_eq!(h.sim.control().request_count(Endpoint::CreateRun), 1);
}

#[tokio::test]
async fn server_errors_on_reads_are_retried() {
    let h = start(frozen()).await;
    let run = h.client.create_run(&create()).await.unwrap();
    h.sim.control().fail_next(503, 2, Some(Endpoint::GetRun));
    let got = h
        .client
        .get_run(run.id)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.dump()));
    assert_eq!(got.id, run.id);
    assert_eq!(h.sim.control().request_count(Endpoint::GetRun), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_server_error() {
    let h = start(frozen()).await;
    h.sim.control().fail_next(500, 100, Some(Endpoint::UsersMe));
    let err = h.client.me().await.unwrap_err();
    assert!(
        matches!(err, CodegenError::Server { status: 500, .. }),
        "{err:?}"
    );
    // First attempt + max_retries (4).
    assert_eq!(h.sim.control().request_count(Endpoint::UsersMe), 5);
}

#[tokio::test]
async fn create_is_not_retried_after_an_ambiguous_5xx() {
    let h = start(frozen()).await;
    h.sim.control().fail_next(502, 1, Some(Endpoint::CreateRun));
    let err = h.client.create_run(&create()).await.unwrap_err();
    assert!(
        matches!(err, CodegenError::Server { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(h.sim.control().request_count(Endpoint::CreateRun), 1);
}

#[tokio::test]
async fn dropped_connections_on_reads_are_retried() {
    let h = start(frozen()).await;
    h.sim.control().drop_next(2, Some(Endpoint::Repos));
    let repos = h
        .client
        .all_repos()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.dump()));
    assert_eq!(repos.len(), 2);
}

#[tokio::test]
async fn rate_limited_waits_out_the_window_then_succeeds() {
    let sim = CodegenSim::start(frozen()).await.unwrap();
    let mut config = config_for(&sim);
    config.rate_limits = tiny_windows();
    let client = CodegenClient::new(config).unwrap();
    sim.control().fail_next(429, 1, Some(Endpoint::CreateRun));
    let run = client.create_run(&create()).await.unwrap();
    assert_eq!(
        sim.control().request_count(Endpoint::CreateRun),
        2,
        "429 on create is retried"
    );
    assert_eq!(
        sim.control().runs().len(),
        1,
        "exactly one run: {:?}",
        sim.control().runs()
    );
    assert!(run.id > 0);
}

#[tokio::test]
async fn rate_limited_beyond_the_wait_cap_is_reported() {
    // Default windows (30 s) exceed the 2 s total-wait cap: give up at once.
    let h = start(frozen()).await;
    h.sim.control().fail_next(429, 1, Some(Endpoint::UsersMe));
    let err = h.client.me().await.unwrap_err();
    assert!(matches!(err, CodegenError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("Rate limit"), "{err}");
    assert_eq!(h.sim.control().request_count(Endpoint::UsersMe), 1);
}

/// A Codegen deployment without the beta stop route.
#[tokio::test]
async fn stop_route_missing_is_stop_unsupported() {
    use axum::Router;
    use axum::routing::get;
    for (status, body) in [
        (405u16, r#"{"detail":"Method Not Allowed"}"#),
        (404, r#"{"detail":"Not Found"}"#),
    ] {
        let app = Router::new().route(
            "/v1/beta/organizations/{org}/agent/run/stop",
            get(|| async {}).post(move || async move {
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = CodegenClient::new(cyrus_codegen_executor::ClientConfig::new(
            url,
            1,
            SecretString::from("t".to_string()),
        ))
        .unwrap();
        let err = client.stop_run(5).await.unwrap_err();
        assert!(
            matches!(err, CodegenError::StopUnsupported { status: s } if s == status),
            "{status}: {err:?}"
        );
        server.abort();
    }
}

#[tokio::test]
async fn stop_of_unknown_run_is_not_found_not_unsupported() {
    let h = start(frozen()).await;
    let err = h.client.stop_run(424_242).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

/// `Retry-After` wins over the 30 s "wait out the window" default: with a
/// 2 s total-wait cap the call only succeeds if the header was honoured.
#[tokio::test]
async fn retry_after_is_honoured() {
    use axum::Router;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let app = Router::new().route(
        "/v1/users/me",
        get(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        r#"{"message": "Rate limit exceeded. Please try again later.", "status_code": 429}"#,
                    )
                } else {
                    (
                        axum::http::StatusCode::OK,
                        [("content-type", "application/json")],
                        r#"{"id": 1, "github_user_id": "9", "github_username": "octo"}"#,
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config =
        cyrus_codegen_executor::ClientConfig::new(url, 1, SecretString::from("t".to_string()));
    config.retry = crate::support::fast_retry();
    let client = CodegenClient::new(config).unwrap();
    let me = client.me().await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(me.github_username, "octo");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.abort();
}

/// A plugged-in limiter (as the store's shared one will be) admits every
/// call, with the right class.
#[tokio::test]
async fn custom_rate_permit_sees_every_call() {
    use cyrus_codegen_executor::{EndpointClass, Headroom, RatePermit};
    use futures::future::BoxFuture;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    struct Recording(Mutex<Vec<EndpointClass>>);
    impl RatePermit for Recording {
        fn acquire(&self, class: EndpointClass) -> BoxFuture<'_, Duration> {
            self.0.lock().unwrap().push(class);
            Box::pin(async { Duration::ZERO })
        }
        fn headroom(&self) -> Vec<Headroom> {
            Vec::new()
        }
    }

    let sim = CodegenSim::start(frozen()).await.unwrap();
    let permits = Arc::new(Recording::default());
    let client = CodegenClient::with_rate_permit(config_for(&sim), permits.clone()).unwrap();
    let run = client.create_run(&create()).await.unwrap();
    client.get_run(run.id).await.unwrap();
    client.run_logs(run.id, Default::default()).await.unwrap();
    assert_eq!(
        *permits.0.lock().unwrap(),
        vec![
            EndpointClass::Create,
            EndpointClass::Read,
            EndpointClass::Logs
        ]
    );
}
