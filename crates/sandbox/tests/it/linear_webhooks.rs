//! Linear simulator webhooks: signature (checked with Linear's documented
//! algorithm, computed here), headers, payloads, retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cyrus_sandbox::linear::{LinearSim, LinearSimOptions, NewIssue, NewTeam};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

/// One webhook as the receiver saw it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) raw: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.raw).expect("JSON body")
    }
}

/// Where the receiver forwards requests, and the statuses still to answer.
type ReceiverState = (
    mpsc::UnboundedSender<Received>,
    Arc<Mutex<std::vec::IntoIter<u16>>>,
);

/// A receiver on its own port that answers the scripted statuses in turn,
/// then 200, and forwards every request.
pub(crate) struct Receiver {
    pub(crate) url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

pub(crate) async fn receiver(statuses: Vec<u16>) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(statuses.into_iter()));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State((tx, script)): State<ReceiverState>,
                 headers: HeaderMap,
                 raw: Bytes| async move {
                    let _ = tx.send(Received { headers, raw });
                    let status = script.lock().unwrap().next().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state((tx, script));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, app).await });
    Receiver { url, rx }
}

impl Receiver {
    /// The next webhook (a generous bound; a missing webhook fails the test
    /// instead of hanging it).
    pub(crate) async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a webhook within 10 s")
            .expect("receiver open")
    }
    /// The next webhook with this `Linear-Event`, skipping others.
    pub(crate) async fn next_event(&mut self, event: &str) -> Received {
        loop {
            let r = self.next().await;
            if r.header("linear-event") == event {
                return r;
            }
        }
    }
}

/// Linear's documented check: hex HMAC-SHA256 of the raw body, compared in
/// constant time.
fn signature_ok(secret: &str, r: &Received) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.raw);
    let expected = hex::decode(r.header("linear-signature")).expect("hex signature");
    mac.verify_slice(&expected).is_ok()
}

#[track_caller]
pub(crate) fn verify(secret: &str, r: &Received) {
    assert!(
        signature_ok(secret, r),
        "signature mismatch for {}",
        String::from_utf8_lossy(&r.raw)
    );
}

async fn sim_with(rx: &Receiver, opts: LinearSimOptions) -> (LinearSim, String) {
    let sim = LinearSim::start(LinearSimOptions {
        webhook_url: Some(rx.url.clone()),
        ..opts
    })
    .await
    .unwrap();
    let c = sim.control();
    c.create_team(NewTeam {
        key: "ENG".into(),
        name: "Engineering".into(),
        ..NewTeam::default()
    })
    .unwrap();
    let issue = c
        .create_issue(NewIssue {
            title: "Login test is flaky".into(),
            description: Some("1 in 5".into()),
            ..NewIssue::default()
        })
        .unwrap();
    (sim, issue.id)
}

#[tokio::test]
async fn delegation_sends_a_signed_created_webhook() {
    let mut rx = receiver(vec![]).await;
    let (sim, issue_id) = sim_with(&rx, LinearSimOptions::default()).await;
    let create = rx.next_event("Issue").await;
    verify(sim.webhook_secret(), &create);
    assert_eq!(create.json()["action"], "create");

    let session = sim.control().delegate(&issue_id, None).unwrap();
    let created = rx.next_event("AgentSessionEvent").await;
    verify(sim.webhook_secret(), &created);
    assert_eq!(created.header("user-agent"), "Linear-Webhook");
    assert!(
        created
            .header("content-type")
            .starts_with("application/json")
    );
    uuid::Uuid::parse_str(created.header("linear-delivery")).expect("Linear-Delivery is a UUID");
    let body = created.json();
    assert_eq!(body["type"], "AgentSessionEvent");
    assert_eq!(body["action"], "created");
    assert_eq!(body["appUserId"], sim.agent_user_id());
    assert_eq!(body["organizationId"], sim.organization_id());
    assert_eq!(body["agentSession"]["id"], session);
    assert_eq!(body["agentSession"]["status"], "pending");
    assert_eq!(body["agentSession"]["issue"]["id"], issue_id);
    assert_eq!(body["agentSession"]["issue"]["identifier"], "ENG-1");
    assert!(
        body["agentSession"]["comment"]["body"]
            .as_str()
            .unwrap()
            .starts_with("This thread is for an agent session")
    );
    assert!(
        body["promptContext"]
            .as_str()
            .unwrap()
            .contains("<title>Login test is flaky</title>")
    );
    let ts = body["webhookTimestamp"]
        .as_i64()
        .expect("numeric webhookTimestamp");
    assert!(
        (chrono::Utc::now().timestamp_millis() - ts).abs() < 60_000,
        "milliseconds, fresh"
    );
    assert!(body["webhookId"].is_string());

    // A tampered body no longer verifies: the check above can fail.
    let mut tampered = Received {
        headers: created.headers.clone(),
        raw: created.raw.clone(),
    };
    let mut bytes = tampered.raw.to_vec();
    bytes[10] ^= 1;
    tampered.raw = bytes.into();
    assert!(!signature_ok(sim.webhook_secret(), &tampered));
    assert!(!signature_ok("another-secret", &created));
    sim.shutdown().await;
}

#[tokio::test]
async fn prompts_stop_undelegation_and_state_changes() {
    let mut rx = receiver(vec![]).await;
    let (sim, issue_id) = sim_with(&rx, LinearSimOptions::default()).await;
    let c = sim.control();
    let session = c.delegate(&issue_id, None).unwrap();
    rx.next_event("AgentSessionEvent").await;

    c.prompt(&session, "Also cover logout", false).unwrap();
    let prompted = rx.next_event("AgentSessionEvent").await.json();
    assert_eq!(prompted["action"], "prompted");
    assert_eq!(
        prompted["agentActivity"]["content"]["body"],
        "Also cover logout"
    );
    assert_eq!(prompted["agentActivity"]["content"]["type"], "prompt");
    assert_eq!(prompted["agentActivity"]["signal"], Value::Null);
    assert_eq!(prompted["agentActivity"]["agentSessionId"], session);

    c.prompt(&session, "stop", true).unwrap();
    let stop = rx.next_event("AgentSessionEvent").await.json();
    assert_eq!(stop["agentActivity"]["signal"], "stop");

    c.set_state(&issue_id, "Canceled").unwrap();
    let state = rx.next_event("Issue").await.json();
    assert_eq!(state["action"], "update");
    assert!(state["updatedFrom"].get("stateId").is_some(), "{state:#}");
    assert_eq!(state["data"]["state"]["type"], "canceled");

    c.undelegate(&issue_id).unwrap();
    let update = rx.next_event("Issue").await.json();
    assert_eq!(update["updatedFrom"]["delegateId"], sim.agent_user_id());
    assert_eq!(update["data"]["delegateId"], Value::Null);
    let note = rx.next_event("AppUserNotification").await.json();
    assert_eq!(note["action"], "issueUnassignedFromYou");
    assert_eq!(note["notification"]["issueId"], issue_id);

    c.delete_issue(&issue_id).unwrap();
    let removed = rx.next_event("Issue").await.json();
    assert_eq!(removed["action"], "remove");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_delivery_id() {
    // 500, then 503, then 200; Linear's 1 min / 1 h / 6 h compressed.
    let mut rx = receiver(vec![500, 503]).await;
    let opts = LinearSimOptions {
        webhook_retry_delays: vec![
            Duration::from_millis(20),
            Duration::from_millis(40),
            Duration::from_millis(80),
        ],
        ..LinearSimOptions::default()
    };
    let (sim, _issue) = sim_with(&rx, opts).await;
    let first = rx.next().await;
    let second = rx.next().await;
    let third = rx.next().await;
    let id = first.header("linear-delivery");
    assert_eq!(second.header("linear-delivery"), id);
    assert_eq!(third.header("linear-delivery"), id);
    for r in [&first, &second, &third] {
        verify(sim.webhook_secret(), r);
    }
    let d = wait_settled(&sim.control(), id).await;
    let statuses: Vec<Option<u16>> = d.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert!(d.delivered && !d.gave_up);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_receiver_counts_as_failed() {
    // The receiver takes 2 s on the first request; the simulator's timeout
    // (Linear's 5 s, compressed to 100 ms) makes that a failed attempt.
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let calls = Arc::new(Mutex::new(0u32));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State((tx, calls)): State<(mpsc::UnboundedSender<String>, Arc<Mutex<u32>>)>,
                 headers: HeaderMap| async move {
                    let n = {
                        let mut c = calls.lock().unwrap();
                        *c += 1;
                        *c
                    };
                    let id = headers
                        .get("linear-delivery")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string();
                    let _ = tx.send(id);
                    if n == 1 {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    StatusCode::OK
                },
            ),
        )
        .with_state((tx, calls));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, app).await });

    let opts = LinearSimOptions {
        webhook_url: Some(url),
        webhook_timeout: Duration::from_millis(100),
        webhook_retry_delays: vec![Duration::from_millis(10); 3],
        ..LinearSimOptions::default()
    };
    let sim = LinearSim::start(opts).await.unwrap();
    let c = sim.control();
    c.create_team(NewTeam {
        key: "ENG".into(),
        ..NewTeam::default()
    })
    .unwrap();
    c.create_issue(NewIssue {
        title: "x".into(),
        ..NewIssue::default()
    })
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a webhook")
                .unwrap(),
        );
    }
    let (first, second) = (ids[0].clone(), ids[1].clone());
    assert_eq!(first, second, "the retry reuses Linear-Delivery");
    let d = wait_settled(&c, &first).await;
    assert_eq!(d.attempts[0].status, None, "{d:?}");
    assert_eq!(d.attempts[0].error.as_deref(), Some("timed out"));
    assert_eq!(d.attempts[1].status, Some(200));
    sim.shutdown().await;
}

/// The delivery once its outcome is recorded (the receiver sees the request
/// a moment before the simulator records the answer).
async fn wait_settled(
    c: &cyrus_sandbox::linear::LinearControl,
    id: &str,
) -> cyrus_sandbox::linear::Delivery {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(d) = c
                .deliveries()
                .into_iter()
                .find(|d| d.id == id && (d.delivered || d.gave_up))
            {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("delivery {id} never settled: {:?}", c.deliveries()))
}
