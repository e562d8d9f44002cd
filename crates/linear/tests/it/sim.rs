//! The client and the webhook functions against the Linear simulator, which
//! was written independently from the contracts.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cyrus_linear::client::{
    ExternalUrl, IssueCreate, IssueUpdate, PlanStep, RelationType, SessionUpdate,
};
use cyrus_linear::webhook::{self, WebhookEvent, WebhookHeaders};
use cyrus_linear::{
    ActivityContent, ActivitySignal, Credentials, ErrorClass, LinearClient, LinearClientConfig,
    NewActivity, SelectOption,
};
use cyrus_sandbox::linear::{
    Fault, FaultKind, LinearControl, LinearSim, LinearSimOptions, NewIssue, NewTeam, Team,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

/// The team every test's issues live in.
fn engineering_team(control: &LinearControl) -> Team {
    control
        .create_team(NewTeam {
            key: "ENG".into(),
            name: "Engineering".into(),
            ..Default::default()
        })
        .unwrap()
}

fn client_for(sim: &LinearSim) -> LinearClient {
    let mut config = LinearClientConfig::new(
        sim.url().parse().unwrap(),
        Credentials::ApiKey(SecretString::from(sim.api_key().to_owned())),
    );
    config.retry_min_delay = Duration::from_millis(1);
    config.retry_max_delay = Duration::from_millis(5);
    LinearClient::new(config).unwrap()
}

/// A webhook receiver that runs our verification and parsing, as the edge
/// worker's endpoint will, and forwards what it accepted.
async fn receiver(secret: String) -> (String, mpsc::UnboundedReceiver<(String, WebhookEvent)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    async fn handle(
        State((secret, tx)): State<(String, mpsc::UnboundedSender<(String, WebhookEvent)>)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let headers = WebhookHeaders::from_header_map(&headers);
        let secret = SecretString::from(secret);
        match webhook::verify(&headers, &body, &secret, chrono::Utc::now()) {
            Ok(delivery) => {
                let event = webhook::parse_event(&delivery).expect("sim payload parses");
                tx.send((delivery.delivery_id, event)).unwrap();
                StatusCode::OK
            }
            Err(rejection) => StatusCode::from_u16(rejection.http_status()).unwrap(),
        }
    }
    let app = Router::new()
        .route("/webhook", post(handle))
        .with_state((secret, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<(String, WebhookEvent)>,
    want: impl Fn(&WebhookEvent) -> bool,
) -> (String, WebhookEvent) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some((id, event)) = rx.recv().await {
            if want(&event) {
                return Some((id, event));
            }
            seen.push(event);
        }
        None
    })
    .await;
    match found {
        Ok(Some(hit)) => hit,
        _ => panic!("expected webhook not received; saw {seen:#?}"),
    }
}

#[tokio::test]
async fn full_agent_session_round_trip() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let control = sim.control();
    let (hook_url, mut events) = receiver(sim.webhook_secret().to_owned()).await;
    control.set_webhook_url(Some(hook_url));
    let client = client_for(&sim);

    let viewer = client.viewer().await.unwrap();
    assert_eq!(viewer.id, sim.agent_user_id());

    let team = engineering_team(&control);
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(team.id.clone()),
            title: "Login test is flaky on CI".into(),
            description: Some("times out 1 in 5".into()),
            ..Default::default()
        })
        .unwrap();
    let session_id = control.delegate(&issue.id, None).unwrap();

    // The signed `created` webhook verifies and parses.
    let (_, created) = next_event(&mut events, |e| {
        matches!(e, WebhookEvent::SessionCreated(_))
    })
    .await;
    let WebhookEvent::SessionCreated(created) = created else {
        unreachable!()
    };
    assert_eq!(created.session.id, session_id);
    assert_eq!(created.app_user_id, sim.agent_user_id());
    assert!(!created.is_self_triggered());

    // Acknowledge, link the run, read the issue, move it to started.
    client
        .create_activity(&NewActivity::new(
            &session_id,
            ActivityContent::Thought {
                body: "On it.".into(),
            },
        ))
        .await
        .unwrap();
    client
        .update_session(
            &session_id,
            &SessionUpdate {
                external_urls: Some(vec![ExternalUrl {
                    label: "Codegen run".into(),
                    url: "https://codegen.example/run/1".into(),
                }]),
                plan: Some(vec![PlanStep {
                    content: "Reproduce the flake".into(),
                    status: "inProgress".into(),
                }]),
            },
        )
        .await
        .unwrap();
    let details = client.issue_for_agent(&issue.identifier).await.unwrap();
    assert_eq!(details.id, issue.id);
    assert_eq!(details.title, "Login test is flaky on CI");
    assert_eq!(
        details.delegate.as_ref().map(|d| d.id.as_str()),
        Some(sim.agent_user_id())
    );
    let workflow = client.team_workflow(&team.id).await.unwrap();
    let started = workflow
        .first_started_state()
        .expect("team has a started state")
        .clone();
    client
        .update_issue(
            &issue.id,
            &IssueUpdate {
                state_id: Some(started.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(control.issue(&issue.id).unwrap().state.id, started.id);

    // A follow-up prompt arrives with its text and activity id.
    control
        .prompt(&session_id, "Also cover logout", false)
        .unwrap();
    let (_, prompted) = next_event(&mut events, |e| {
        matches!(e, WebhookEvent::SessionPrompted(_))
    })
    .await;
    let WebhookEvent::SessionPrompted(prompted) = prompted else {
        unreachable!()
    };
    assert_eq!(prompted.message, "Also cover logout");
    assert!(!prompted.stop);

    // Ask a question with options, then answer.
    client
        .create_activity(
            &NewActivity::new(
                &session_id,
                ActivityContent::Elicitation {
                    body: "Which repo?".into(),
                },
            )
            .with_signal(ActivitySignal::Select {
                options: vec![SelectOption {
                    value: "acme/web".into(),
                    label: None,
                }],
            }),
        )
        .await
        .unwrap();
    client
        .create_activity(&NewActivity::new(
            &session_id,
            ActivityContent::Response {
                body: "Fixed the race in the login fixture.".into(),
            },
        ))
        .await
        .unwrap();

    let view = control.session(&session_id).unwrap();
    let kinds: Vec<&str> = view.activities.iter().map(|a| a.kind()).collect();
    assert!(
        kinds.ends_with(&["thought", "prompt", "elicitation", "response"]),
        "{kinds:?}"
    );
    assert_eq!(view.external_urls.len(), 1);
    assert!(
        view.plan
            .as_ref()
            .is_some_and(|p| p.to_string().contains("Reproduce the flake")),
        "{:?}",
        view.plan
    );
    assert_eq!(view.status.as_str(), "complete");
    let elicitation = view
        .activities
        .iter()
        .find(|a| a.kind() == "elicitation")
        .unwrap();
    assert_eq!(elicitation.signal.as_deref(), Some("select"));

    // Sub-issue, relation and a plain comment reply.
    let child = client
        .create_issue(&IssueCreate {
            team_id: team.id.clone(),
            title: "Follow-up".into(),
            parent_id: Some(issue.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(child.identifier.starts_with("ENG-"), "{child:?}");
    client
        .create_issue_relation(&issue.id, &child.id, RelationType::Blocks)
        .await
        .unwrap();
    let comment = client
        .create_comment(&issue.id, "Done here.", None)
        .await
        .unwrap();
    assert!(
        control
            .comments(&issue.id)
            .iter()
            .any(|c| c.id == comment.id)
    );

    // Un-delegation arrives as an Issue update.
    control.undelegate(&issue.id).unwrap();
    let (_, update) = next_event(
        &mut events,
        |e| matches!(e, WebhookEvent::IssueUpdated(u) if u.updated_from.contains_key("delegateId")),
    )
    .await;
    let WebhookEvent::IssueUpdated(update) = update else {
        unreachable!()
    };
    assert!(update.delegate_removed(sim.agent_user_id()), "{update:#?}");

    sim.shutdown().await;
}

#[tokio::test]
async fn simulator_rate_limit_and_auth_faults_are_classified() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let client = client_for(&sim);
    sim.control().inject_fault(Fault::new(FaultKind::AuthError));
    let err = client.viewer().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    sim.control()
        .inject_fault(Fault::new(FaultKind::ServerError { status: 503 }));
    assert!(client.viewer().await.is_ok(), "a single 503 is retried");

    sim.control()
        .inject_fault(Fault::new(FaultKind::RateLimited));
    let err = client.viewer().await.unwrap_err();
    assert!(
        matches!(err.class(), ErrorClass::RateLimited { reset_at: Some(_) }),
        "{err:?}"
    );
    let before = sim.control().request_stats().total;
    // Paused: no further request reaches Linear before the reset.
    assert!(matches!(
        client.viewer().await.unwrap_err().class(),
        ErrorClass::RateLimited { .. }
    ));
    assert_eq!(sim.control().request_stats().total, before);
    assert!(client.rate_limit().paused_until.is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn input_error_for_unknown_session_is_permanent() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let client = client_for(&sim);
    let err = client
        .create_activity(&NewActivity::new(
            "00000000-0000-4000-8000-000000000000",
            ActivityContent::Thought {
                body: "hello".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert_eq!(
        sim.control().request_stats().total,
        1,
        "permanent errors are not retried"
    );
    sim.shutdown().await;
}

/// Reconciliation reads every live task's issue each pass, so its query must
/// stay cheap: a few complexity points where `IssueForAgent` costs hundreds.
#[tokio::test]
async fn issue_status_is_a_cheap_read_of_state_and_delegate() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let control = sim.control();
    let client = client_for(&sim);
    let team = engineering_team(&control);
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(team.id.clone()),
            title: "Cheap status".into(),
            ..Default::default()
        })
        .unwrap();
    control.delegate(&issue.id, None).unwrap();

    let status = client.issue_status(&issue.id).await.unwrap();
    let status_cost = client.rate_limit().last_complexity.unwrap();
    assert_eq!(status.id, issue.id);
    assert_eq!(
        status.delegate.map(|d| d.id).as_deref(),
        Some(sim.agent_user_id())
    );
    assert!(status.state.is_some_and(|s| !s.is_terminal()));

    client.issue_for_agent(&issue.id).await.unwrap();
    let full_cost = client.rate_limit().last_complexity.unwrap();
    assert!(
        status_cost * 20 <= full_cost,
        "IssueStatus costs {status_cost}, IssueForAgent {full_cost}"
    );
}
