//! Issue #17: webhook intake under load on the real binary. A SIGKILL while
//! batches of deliveries are committing loses no delivery that was answered
//! 200; an overload of new sessions is answered 200 or 503 (never a timeout
//! or a dropped connection) with the worker's memory bounded.

use crate::support::{Replica, World, seed};
use rand::{RngExt as _, SeedableRng as _};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent senders, as in the issue's measurements.
const SENDERS: usize = 64;

/// What the senders saw.
#[derive(Default)]
struct Seen {
    /// Delivery ids answered 200.
    ok: HashSet<String>,
    /// Delivery ids sent and answered otherwise, or not at all.
    unanswered: HashSet<String>,
    /// Answers that were neither 200 nor 503, or no answer (with why).
    failures: Vec<String>,
    unavailable: usize,
}

/// `SENDERS` keep-alive senders posting the bodies `next` yields (with a
/// fresh timestamp and signature) to `addr` until it returns `None`.
async fn send_all(
    addr: std::net::SocketAddr,
    secret: &SecretString,
    next: Arc<dyn Fn() -> Option<(String, &'static str, Value)> + Send + Sync>,
) -> Seen {
    // Linear gives a webhook 5 s; a slower answer is a timeout.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        let (http, next, seen, secret) = (http.clone(), next.clone(), seen.clone(), secret.clone());
        senders.spawn(async move {
            while let Some((id, event, mut body)) = next() {
                body["webhookTimestamp"] = json!(chrono::Utc::now().timestamp_millis());
                let raw = serde_json::to_vec(&body).expect("json");
                let answer = http
                    .post(format!("http://{addr}/webhooks/linear"))
                    .header("content-type", "application/json")
                    .header(
                        "linear-signature",
                        cyrus_linear::webhook::verify::sign(&raw, &secret),
                    )
                    .header("linear-delivery", &id)
                    .header("linear-event", event)
                    .body(raw)
                    .send()
                    .await;
                let mut seen = seen.lock().expect("seen");
                match answer.map(|r| r.status().as_u16()) {
                    Ok(200) => {
                        seen.ok.insert(id);
                    }
                    Ok(503) => {
                        seen.unavailable += 1;
                        seen.unanswered.insert(id);
                    }
                    Ok(code) => {
                        seen.failures.push(format!("{id}: HTTP {code}"));
                        seen.unanswered.insert(id);
                    }
                    Err(err) => {
                        seen.failures.push(format!("{id}: {err}"));
                        seen.unanswered.insert(id);
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    Arc::try_unwrap(seen)
        .ok()
        .expect("senders done")
        .into_inner()
        .expect("seen")
}

fn issue_update(org: &str, n: usize) -> Value {
    json!({
        "type": "Issue", "action": "update", "organizationId": org,
        "data": {"id": format!("kill-issue-{n}"), "title": "load", "description": "x".repeat(2_000)},
        "updatedFrom": {"updatedAt": "2026-01-01T00:00:00.000Z"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_commit_and_answers_loses_no_answered_delivery() {
    let seed = seed("intake-kill");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let world = World::start().await;
    let db = world.dir.path().join("cyrus.db");
    let url = format!("sqlite://{}", db.display());
    let config = world.config(&url, 10);
    let secret = SecretString::from(world.linear.webhook_secret().to_string());
    let org = world.linear.organization_id().to_string();
    let mut replica = Replica::spawn("cyrus", &config, world.dir.path());
    replica.wait_ready().await;

    let mut answered: HashSet<String> = HashSet::new();
    let mut sent_total = 0;
    for round in 0..3 {
        // Senders run until the kill makes every request fail; the kill
        // lands while batches are being committed and answered.
        let counter = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let next: Arc<dyn Fn() -> Option<(String, &'static str, Value)> + Send + Sync> = {
            let (counter, stop, org) = (counter.clone(), stop.clone(), org.clone());
            Arc::new(move || {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                Some((format!("kill-{round}-{n}"), "Issue", issue_update(&org, n)))
            })
        };
        let addr = replica.addr;
        let sending = tokio::spawn({
            let secret = secret.clone();
            let next = next.clone();
            async move { send_all(addr, &secret, next).await }
        });
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..2_000))).await;
        replica.kill();
        stop.store(true, Ordering::Relaxed);
        let seen = sending.await.expect("senders");
        let sent = counter.load(Ordering::Relaxed);
        sent_total += sent;
        eprintln!(
            "intake-kill: round {round}: SIGKILL after {sent} sent, {} answered 200",
            seen.ok.len()
        );
        assert!(
            !seen.ok.is_empty(),
            "round {round}: nothing was accepted before the kill"
        );

        // Every delivery answered 200 is in the database.
        let store = cyrus_store::Store::connect(&url).await.expect("store");
        let mut lost = Vec::new();
        for id in &seen.ok {
            if store.get_delivery(id).await.expect("read").is_none() {
                lost.push(id.clone());
            }
        }
        assert!(
            lost.is_empty(),
            "round {round}: {} deliveries answered 200 are not stored: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        store.close().await;
        answered.extend(seen.ok);

        // Linear retries what was not answered: every retry is answered
        // 200 (accepted, or duplicate when its batch had committed before
        // the kill), and each delivery ends up stored once.
        replica.restart().await;
        let retries: Arc<Mutex<Vec<String>>> =
            Arc::new(Mutex::new(seen.unanswered.into_iter().collect()));
        let next: Arc<dyn Fn() -> Option<(String, &'static str, Value)> + Send + Sync> = {
            let (retries, org) = (retries.clone(), org.clone());
            Arc::new(move || {
                let id = retries.lock().expect("retries").pop()?;
                let n: usize = id
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Some((id, "Issue", issue_update(&org, n)))
            })
        };
        let again = send_all(replica.addr, &secret, next).await;
        assert!(
            again.failures.is_empty() && again.unavailable == 0,
            "round {round}: retries after the restart failed: {:?}",
            &again.failures[..again.failures.len().min(5)]
        );
        answered.extend(again.ok);
    }
    let store = cyrus_store::Store::connect(&url).await.expect("store");
    let rows = store.delivery_count().await.expect("count");
    assert_eq!(
        rows as usize,
        answered.len(),
        "one row per delivery answered 200 ({sent_total} sent over three kills)"
    );
    replica.kill();
}

/// Peak resident memory of `pid` in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overload_of_new_sessions_is_answered_200_or_503_in_bounded_memory() {
    const SESSIONS: usize = 3_000;
    const RSS_BOUND_MIB: f64 = 64.0;
    let world = World::start().await;
    let db = world.dir.path().join("cyrus.db");
    let config = world.config(&format!("sqlite://{}", db.display()), 10);
    let secret = SecretString::from(world.linear.webhook_secret().to_string());
    // Real sessions in the simulator; their webhooks are recorded, not sent,
    // and the test posts them itself as fast as the worker answers.
    let control = world.linear.control();
    control.set_webhook_url(None);
    for i in 0..SESSIONS {
        world.delegate(&format!("Overload {i}"), "[sim never_finish]");
    }
    let bodies: Vec<(String, Value)> = control
        .deliveries()
        .into_iter()
        .filter(|d| d.body["type"] == "AgentSessionEvent" && d.body["action"] == "created")
        .map(|d| (d.id, d.body))
        .collect();
    assert_eq!(bodies.len(), SESSIONS);
    let mut replica = Replica::spawn("cyrus", &config, world.dir.path());
    replica.wait_ready().await;
    let pid = replica.pid().expect("running");
    let baseline = peak_rss_mib(pid);

    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let next: Arc<dyn Fn() -> Option<(String, &'static str, Value)> + Send + Sync> = {
        let queue = queue.clone();
        Arc::new(move || {
            let (id, body) = queue.lock().expect("queue").next()?;
            Some((id, "AgentSessionEvent", body))
        })
    };
    let started = Instant::now();
    let seen = send_all(replica.addr, &secret, next).await;
    let peak = peak_rss_mib(pid);
    eprintln!(
        "overload: {} answered 200, {} 503 in {:.1} s; VmHWM {baseline:.1} MiB at start, {peak:.1} MiB after",
        seen.ok.len(),
        seen.unavailable,
        started.elapsed().as_secs_f64()
    );
    assert!(
        seen.failures.is_empty(),
        "{} requests were neither 200 nor 503 (first: {:?})\n{}",
        seen.failures.len(),
        seen.failures.first(),
        replica.log_tail(40)
    );
    assert_eq!(seen.ok.len() + seen.unavailable, SESSIONS);
    assert!(
        peak < RSS_BOUND_MIB,
        "peak RSS {peak:.1} MiB is over {RSS_BOUND_MIB} MiB under an overload of new sessions"
    );
    assert!(replica.is_running(), "{}", replica.log_tail(40));
    replica.kill();
}
