//! Webhook intake under load, measured across processes: `cyrus start`
//! pinned to one core, `cyrus sandbox` (both simulators) and this load
//! generator pinned to the other, so every figure is the worker's own.
//!
//! The generator posts signed, distinct deliveries (a fresh
//! `webhookTimestamp` and `Linear-Delivery` each) through a pooling
//! keep-alive client:
//!
//! - `Issue` updates (about 2.8 KB each; durable intake only): closed loop
//!   at `concurrency` for a while (throughput), then open loop at a fixed
//!   rate (latency from the scheduled send time, so a stall is not hidden,
//!   and failed requests — any answer but 200, or a connection error);
//! - `created` sessions: sessions prepared in the Linear simulator (with
//!   no webhook target, so the simulator only records their webhooks), then
//!   their `created` webhooks re-signed and posted in a closed loop; every
//!   session's acknowledgement is then awaited (Linear's 10 s window);
//! - the acknowledgement lane (a fresh worker and simulator): the simulator
//!   itself delegates issues at a steady rate to the worker and the
//!   webhook → acknowledgement latency is read from its sessions.
//!
//! Peak RSS is the worker's `VmHWM`; rows committed are counted in the store
//! afterwards and must equal the 200 `accepted` answers.

use crate::report::{Figure, Goal};
use crate::stats::{Samples, ms};
use anyhow::Context as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Issue` updates that change no task (a priority edit): the intake
    /// stores them processed as they arrive.
    Issue,
    /// `Issue` updates the processor acts on (a title edit, of issues with
    /// no task): each is also handed to the processor and marked processed.
    IssueEdit,
    Created,
    /// Webhook → acknowledgement at a steady rate of new sessions.
    Ack,
    /// The `Issue` loops against another webhook server
    /// ([`LoadOptions::peer`]), for a ratio read in one run.
    Peer,
}

/// How to start the other server for [`Kind::Peer`].
#[derive(Clone, Debug)]
pub struct PeerCommand {
    /// A shell command; it gets `PORT` and `SECRET` (the webhook signing
    /// secret) in its environment and must listen on 127.0.0.1:`PORT`.
    pub command: String,
    /// The webhook path it serves.
    pub path: String,
}

pub struct LoadOptions {
    pub cyrus_bin: PathBuf,
    pub kind: Kind,
    /// `None`: a SQLite file in a temporary directory.
    pub postgres: Option<String>,
    /// `store.sqliteSynchronous`.
    pub sync: &'static str,
    pub concurrency: usize,
    pub closed_secs: u64,
    pub paced_rate: u32,
    pub paced_secs: u64,
    /// `created`: sessions posted in the closed loop.
    pub sessions: usize,
    /// `created`: delegations per second, and for how long, in the
    /// acknowledgement phase.
    pub ack_rate: u32,
    pub ack_secs: u64,
    /// Drive the closed loop of `Issue` updates with `wrk` (else the
    /// in-process generator).
    pub wrk: bool,
    /// Core for the worker; the simulators and the generator get `other_cpu`.
    pub worker_cpu: usize,
    pub other_cpu: usize,
    /// [`Kind::Peer`]: the server to measure instead of `cyrus start`.
    pub peer: Option<PeerCommand>,
}

/// Whether `wrk` is installed (to drive the closed loop).
pub fn wrk_available() -> bool {
    super::wrk::available()
}

pub async fn run(opts: LoadOptions) -> anyhow::Result<Vec<Figure>> {
    let backend = if opts.postgres.is_some() {
        "PostgreSQL".to_string()
    } else {
        format!("SQLite sync={}", opts.sync)
    };
    let kind = match opts.kind {
        Kind::Issue => "Issue updates",
        Kind::IssueEdit => "Issue title edits",
        Kind::Created => "created sessions",
        Kind::Ack => "acknowledgement lane",
        Kind::Peer => "Issue updates",
    };
    pin_self(opts.other_cpu)?;
    if opts.kind == Kind::Peer {
        let peer = opts
            .peer
            .as_ref()
            .context("the peer kind needs --load-peer-cmd")?;
        let scenario = format!("load {kind}, peer `{}`", peer.command);
        return peer_intake(&opts, peer, &scenario).await;
    }
    let scenario = format!("load {kind}, {backend}");
    let dir = tempfile::tempdir()?;
    // What the paced loop's latency is read against (SQLite `full`: each
    // answer waits for an fsync).
    let floor = match (opts.kind, &opts.postgres) {
        (Kind::Issue | Kind::IssueEdit, None) => {
            super::disk_floor::figures(&scenario, dir.path()).await?
        }
        _ => Vec::new(),
    };
    let sandbox = Sandbox::start(&opts.cyrus_bin, opts.other_cpu)?;
    let result = async {
        let worker = start_worker(&opts, &sandbox, dir.path()).await?;
        let out = match opts.kind {
            Kind::Issue | Kind::IssueEdit => {
                issue_updates(&opts, &sandbox, &worker, &scenario).await
            }
            Kind::Created => created_sessions(&opts, &sandbox, &worker, &scenario).await,
            Kind::Ack => ack_lane(&opts, &sandbox, &worker, &scenario).await,
            Kind::Peer => unreachable!("the peer was measured above"),
        };
        let peak = worker.server.peak_rss_mib();
        let log = worker.server.log_tail();
        let exited = worker.server.stop();
        let mut out = out.with_context(|| format!("worker log tail:\n{log}"))?;
        if let Some(status) = exited {
            anyhow::bail!("the worker exited during the run ({status}):\n{log}");
        }
        out.push(
            Figure::new(&scenario, "worker peak RSS (VmHWM)", peak, "MiB").goal(Goal::AtMost(64.0)),
        );
        out.extend(floor);
        Ok(out)
    }
    .await;
    sandbox.stop();
    result
}

async fn issue_updates(
    opts: &LoadOptions,
    sandbox: &Sandbox,
    worker: &Worker,
    s: &str,
) -> anyhow::Result<Vec<Figure>> {
    let target = Target::new(worker, sandbox);
    let org = sandbox.info["linear_organization_id"]
        .as_str()
        .unwrap_or_default();
    let loops = IssueLoops::new(org, opts.kind == Kind::IssueEdit);
    let (closed_ok, mut out) = loops.closed(opts, &target, s, Some(21_000.0)).await?;
    // Intake alone can look fast by leaving the processing behind (the
    // store is the buffer): what was still unprocessed when the closed loop
    // ended says whether the figure above is sustainable.
    let backlog = worker.unprocessed_count().await?;
    out.push(
        Figure::new(
            s,
            &format!("unprocessed when the c={} loop ended", opts.concurrency),
            Some(backlog as f64),
            "deliveries",
        )
        .note(format!("of {closed_ok} accepted in the loop")),
    );
    let paced = loops.paced(opts, &target).await;
    let batching = worker.batching().await;
    let rows = worker.delivery_count().await?;
    let accepted = closed_ok + paced.ok;
    out.push(
        Figure::new(
            s,
            "deliveries per commit (mean, whole run)",
            batching.0,
            "rows",
        )
        .note(format!(
            "deliveries per processor claim (mean): {}",
            batching.1.map_or("-".into(), |v| format!("{v:.1}"))
        )),
    );
    out.extend(paced.paced_figures(s, opts.paced_rate));
    // A 200 without its row would be a lost delivery. (wrk stops with up
    // to c requests in flight whose rows may have committed unanswered,
    // so the figure can be below 0 by that much, never above.)
    out.push(
        Figure::new(
            s,
            "200s − rows committed",
            Some(accepted as f64 - rows as f64),
            "rows",
        )
        .goal(Goal::AtMost(0.0))
        .note(format!("{rows} rows, {accepted} answered 200")),
    );
    Ok(out)
}

/// The same two `Issue` loops against another webhook server (the peer
/// the issue compares with), started fresh by `peer.command`, pinned to
/// the worker's core: a ratio read from one run compares the two servers,
/// not two days of this machine.
async fn peer_intake(
    opts: &LoadOptions,
    peer: &PeerCommand,
    s: &str,
) -> anyhow::Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let PeerServer { server, target } =
        PeerServer::start(peer, opts.worker_cpu, dir.path()).await?;
    let result: anyhow::Result<Vec<Figure>> = async {
        let loops = IssueLoops::new("bench-organization", false);
        let (_, mut out) = loops.closed(opts, &target, s, None).await?;
        let paced = loops.paced(opts, &target).await;
        out.extend(paced.paced_figures(s, opts.paced_rate));
        out.push(Figure::new(
            s,
            "peak RSS (VmHWM)",
            server.peak_rss_mib(),
            "MiB",
        ));
        Ok(out)
    }
    .await;
    let log = server.log_tail();
    if let Some(status) = server.stop() {
        anyhow::bail!("the peer exited during the run ({status}):\n{log}");
    }
    result.with_context(|| format!("peer log tail:\n{log}"))
}

/// Distinct `Issue` updates for the closed loop (`wrk` or the in-process
/// generator) and the paced loop.
struct IssueLoops {
    org: String,
    counter: AtomicU64,
    /// Title edits rather than priority edits.
    title: bool,
}

impl IssueLoops {
    fn new(org: &str, title: bool) -> IssueLoops {
        IssueLoops {
            org: org.to_string(),
            counter: AtomicU64::new(0),
            title,
        }
    }

    fn body_at(&self, timestamp_ms: i64) -> Vec<u8> {
        let i = self.counter.fetch_add(1, Ordering::Relaxed);
        issue_update(&self.org, i, timestamp_ms, self.title)
    }

    fn body(&self) -> Vec<u8> {
        self.body_at(chrono::Utc::now().timestamp_millis())
    }

    /// The closed loop at `opts.concurrency`: requests answered 200 and the
    /// figures (`goal`: the throughput's).
    async fn closed(
        &self,
        opts: &LoadOptions,
        target: &Target,
        s: &str,
        goal: Option<f64>,
    ) -> anyhow::Result<(u64, Vec<Figure>)> {
        let c = opts.concurrency;
        if opts.closed_secs == 0 {
            // The paced loop alone: its latency on a store that has no
            // closed loop's backlog to checkpoint or process.
            return Ok((0, Vec::new()));
        }
        if !opts.wrk {
            let closed = closed_loop(target, c, Duration::from_secs(opts.closed_secs), &|| {
                self.body()
            })
            .await;
            return Ok((closed.ok, closed.figures(s, c)));
        }
        // Bodies for the whole run, signed now; every request still gets
        // its own delivery id.
        let bodies: Vec<Vec<u8>> = (0..WRK_BODIES).map(|_| self.body()).collect();
        let dir = tempfile::tempdir()?;
        let run = super::wrk::ClosedLoop {
            url: &target.url,
            secret: &target.secret,
            event: "Issue",
            bodies: &bodies,
            connections: c,
            duration: Duration::from_secs(opts.closed_secs),
            cpu: opts.other_cpu,
            once: false,
        }
        .run(dir.path())?;
        let secs = run.elapsed.as_secs_f64().max(1e-9);
        let note = format!(
            "wrk -t1 -c{c}: {} answered, {} not 2xx, {} socket errors in {secs:.1} s",
            run.requests, run.bad_status, run.socket_errors
        );
        let mut throughput = Figure::new(
            s,
            &format!("throughput at c={c} (200s, wrk)"),
            Some(run.ok() as f64 / secs),
            "req/s",
        )
        .note(note);
        if let Some(goal) = goal {
            throughput = throughput.goal(Goal::AtLeast(goal));
        }
        Ok((
            run.ok(),
            vec![
                throughput,
                Figure::new(s, &format!("p50 at c={c} (wrk)"), Some(ms(run.p50)), "ms"),
                Figure::new(s, &format!("p99 at c={c} (wrk)"), Some(ms(run.p99)), "ms"),
                Figure::new(
                    s,
                    &format!("p99.9 at c={c} (wrk)"),
                    Some(ms(run.p999)),
                    "ms",
                ),
                Figure::new(
                    s,
                    &format!("failed at c={c} (not 2xx, or a socket error)"),
                    Some((run.bad_status + run.socket_errors) as f64),
                    "requests",
                )
                .goal(Goal::AtMost(0.0)),
            ],
        ))
    }

    /// The open loop at `opts.paced_rate`.
    async fn paced(&self, opts: &LoadOptions, target: &Target) -> Tally {
        open_loop(
            target,
            opts.paced_rate,
            Duration::from_secs(opts.paced_secs),
            &|t| self.body_at(t),
        )
        .await
    }
}

async fn created_sessions(
    opts: &LoadOptions,
    sandbox: &Sandbox,
    worker: &Worker,
    s: &str,
) -> anyhow::Result<Vec<Figure>> {
    let control = Control::new(sandbox);
    let team = control.team().await?;
    eprintln!("  preparing {} sessions in the simulator…", opts.sessions);
    control.set_webhook_url(None).await?;
    control.delegate_many(&team, opts.sessions).await?;
    let prepared: Vec<Value> = control
        .deliveries()
        .await?
        .into_iter()
        .filter(|d| d["body"]["type"] == "AgentSessionEvent" && d["body"]["action"] == "created")
        .map(|d| d["body"].clone())
        .collect();
    anyhow::ensure!(
        prepared.len() >= opts.sessions,
        "the simulator recorded {} created webhooks for {} delegations",
        prepared.len(),
        opts.sessions
    );
    let sessions: Vec<String> = prepared
        .iter()
        .filter_map(|b| b["agentSession"]["id"].as_str().map(str::to_string))
        .collect();
    let target = Target::new(worker, sandbox);
    let started = chrono::Utc::now();
    let closed = if opts.wrk {
        created_by_wrk(opts, &target, s, prepared)?
    } else {
        let queue = Arc::new(std::sync::Mutex::new(prepared.into_iter()));
        let body = {
            let queue = queue.clone();
            move || {
                let mut body = queue.lock().ok()?.next()?;
                body["webhookTimestamp"] = json!(chrono::Utc::now().timestamp_millis());
                Some(serde_json::to_vec(&body).unwrap_or_default())
            }
        };
        let tally = closed_loop_until_empty(&target, opts.concurrency, &body).await;
        CreatedBurst {
            ok: tally.ok,
            elapsed: tally.elapsed,
            figures: tally.figures(s, opts.concurrency),
        }
    };
    // Every acknowledgement within Linear's 10 s of its webhook.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acked = Samples::default();
    let mut missing = 0;
    let mut late = 0;
    for id in &sessions {
        let first = loop {
            match control.first_activity_ms(id).await? {
                Some(at) => break Some(at),
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                None => break None,
            }
        };
        match first {
            Some(at) => {
                let d = Duration::from_millis((at - started.timestamp_millis()).max(0) as u64);
                if d > Duration::from_secs(10) + closed.elapsed {
                    late += 1;
                }
                acked.push(d);
            }
            None => missing += 1,
        }
    }
    let mut out = closed.figures;
    out.push(
        Figure::new(
            s,
            "sessions without an acknowledgement after 30 s",
            Some(missing as f64),
            "sessions",
        )
        .goal(Goal::AtMost(0.0)),
    );
    out.push(
        Figure::new(
            s,
            "last acknowledgement after the first webhook",
            acked.max().map(|d| d.as_secs_f64()),
            "s",
        )
        .note(format!(
            "{late} acknowledged later than 10 s after the burst ended"
        )),
    );
    let rows = worker.delivery_count().await?;
    out.push(
        Figure::new(
            s,
            "rows committed − 200s",
            Some(rows as f64 - closed.ok as f64),
            "rows",
        )
        .goal(Goal::AtMost(0.0))
        .note(format!("{rows} rows, {} answered 200", closed.ok)),
    );
    Ok(out)
}

/// What the burst of `created` webhooks answered.
struct CreatedBurst {
    /// Sessions answered 200.
    ok: u64,
    /// From the first send to the last session's answer.
    elapsed: Duration,
    figures: Vec<Figure>,
}

/// The burst driven by `wrk`, every session once: the in-process generator
/// shares its core with the Linear simulator, which takes every
/// acknowledgement, and the two together saturated that core before the
/// worker's (read from `/proc/stat`).
fn created_by_wrk(
    opts: &LoadOptions,
    target: &Target,
    s: &str,
    prepared: Vec<Value>,
) -> anyhow::Result<CreatedBurst> {
    let c = opts.concurrency;
    let now = chrono::Utc::now().timestamp_millis();
    let bodies: Vec<Vec<u8>> = prepared
        .into_iter()
        .map(|mut body| {
            body["webhookTimestamp"] = json!(now);
            serde_json::to_vec(&body).unwrap_or_default()
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let sessions = bodies.len();
    let run = super::wrk::ClosedLoop {
        url: &target.url,
        secret: &target.secret,
        event: "AgentSessionEvent",
        bodies: &bodies,
        connections: c,
        // `wrk` runs for its whole duration even once its thread has
        // stopped: long enough for 1 000 sessions a second, and short
        // enough that the last is sent inside the worker's 60 s replay
        // window of the time the bodies were signed.
        duration: Duration::from_secs((sessions as u64 / 1_000 + 5).min(50)),
        cpu: opts.other_cpu,
        once: true,
    }
    .run(dir.path())?;
    let elapsed = run.once.unwrap_or(run.elapsed);
    let ok = (sessions as u64).saturating_sub(run.bad_status + run.socket_errors);
    let note = format!(
        "wrk -t1 -c{c}: {sessions} sessions sent once, the last answered after {:.2} s; {} not 2xx, {} socket errors{}",
        elapsed.as_secs_f64(),
        run.bad_status,
        run.socket_errors,
        if run.once.is_none() {
            " (not every session was answered)"
        } else {
            ""
        }
    );
    Ok(CreatedBurst {
        ok,
        elapsed,
        figures: vec![
            Figure::new(
                s,
                &format!("accepted per second at c={c} (wrk)"),
                Some(ok as f64 / elapsed.as_secs_f64().max(1e-9)),
                "sessions/s",
            )
            .goal(Goal::AtLeast(5_000.0))
            .note(note),
            Figure::new(s, &format!("p50 at c={c} (wrk)"), Some(ms(run.p50)), "ms"),
            Figure::new(s, &format!("p99 at c={c} (wrk)"), Some(ms(run.p99)), "ms"),
            Figure::new(
                s,
                &format!(
                    "failed at c={c} (a socket error or a timeout; 503s are in the note above)"
                ),
                Some(run.socket_errors as f64),
                "requests",
            )
            .goal(Goal::AtMost(0.0)),
        ],
    })
}

/// The acknowledgement lane, on a fresh worker and simulator (after the
/// burst above, its 10 000 tasks' downstream work would be measured too):
/// the simulator delegates issues at a steady rate and sends each
/// `created` itself; the latency is read from its sessions.
async fn ack_lane(
    opts: &LoadOptions,
    sandbox: &Sandbox,
    worker: &Worker,
    s: &str,
) -> anyhow::Result<Vec<Figure>> {
    let control = Control::new(sandbox);
    let team = control.team().await?;
    let mut out = Vec::new();
    control
        .set_webhook_url(Some(format!("http://{}/webhooks/linear", worker.addr)))
        .await?;
    let n = (opts.ack_rate as u64 * opts.ack_secs) as usize;
    let issues = control.create_issues(&team, n).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / opts.ack_rate.max(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Each delegation is its own request, so a slow answer from the
    // simulator does not hold back the next one.
    let mut pending = Vec::with_capacity(n);
    let began = Instant::now();
    for issue in issues {
        ticker.tick().await;
        let at = chrono::Utc::now().timestamp_millis();
        let control = control.clone();
        pending.push(tokio::spawn(async move {
            control.delegate(&issue).await.map(|s| (s, at))
        }));
    }
    let rate = n as f64 / began.elapsed().as_secs_f64();
    let mut sent = Vec::with_capacity(n);
    for p in pending {
        sent.push(p.await??);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut lat = Samples::default();
    let mut unacked = 0;
    for (session, at) in &sent {
        match control.first_activity_ms(session).await? {
            Some(first) => lat.push(Duration::from_millis((first - at).max(0) as u64)),
            None => unacked += 1,
        }
    }
    let note = format!("{n} delegations by the simulator at {rate:.0}/s; {unacked} unacknowledged");
    out.push(
        Figure::new(s, "webhook → ack p50", lat.percentile(50.0).map(ms), "ms").note(note.clone()),
    );
    out.push(
        Figure::new(s, "webhook → ack p99", lat.percentile(99.0).map(ms), "ms")
            .goal(Goal::AtMost(25.0))
            .note(note),
    );
    Ok(out)
}

/// Where to post and how to sign.
struct Target {
    url: String,
    secret: SecretString,
}

impl Target {
    fn new(worker: &Worker, sandbox: &Sandbox) -> Target {
        Target {
            url: format!("http://{}/webhooks/linear", worker.addr),
            secret: SecretString::from(
                sandbox.info["linear_webhook_secret"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
        }
    }
}

/// A pooling keep-alive client, idle connections dropped after 60 s as a
/// sender's pool does (below the server's 75 s).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client builds")
}

/// One signed POST; `Ok(status)` or the connection error.
async fn post(client: &reqwest::Client, target: &Target, body: Vec<u8>) -> Result<u16, String> {
    let signature = cyrus_linear::webhook::verify::sign(&body, &target.secret);
    send(client, &target.url, body, signature).await
}

/// POSTs a body already signed.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    signature: String,
) -> Result<u16, String> {
    let event = if body.starts_with(br#"{"type":"Issue""#) {
        "Issue"
    } else {
        "AgentSessionEvent"
    };
    client
        .post(url)
        .header("content-type", "application/json")
        .header("linear-signature", signature)
        .header("linear-delivery", uuid::Uuid::new_v4().to_string())
        .header("linear-event", event)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:#}"))
}

#[derive(Default)]
struct Tally {
    ok: u64,
    unavailable: u64,
    other: u64,
    errors: u64,
    first_failure: Option<String>,
    latencies: Samples,
    elapsed: Duration,
}

impl Tally {
    fn record(&mut self, answer: Result<u16, String>, latency: Duration) {
        match answer {
            Ok(200) => self.ok += 1,
            Ok(503) => self.unavailable += 1,
            Ok(code) => {
                self.other += 1;
                self.first_failure.get_or_insert(format!("HTTP {code}"));
            }
            Err(e) => {
                self.errors += 1;
                self.first_failure.get_or_insert(e);
            }
        }
        self.latencies.push(latency);
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.unavailable += other.unavailable;
        self.other += other.other;
        self.errors += other.errors;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        for d in other.latencies.into_vec() {
            self.latencies.push(d);
        }
    }

    fn failed(&self) -> u64 {
        self.other + self.errors
    }

    fn note(&self) -> String {
        format!(
            "{} answered 200, {} 503, {} other, {} connection errors in {:.1} s{}",
            self.ok,
            self.unavailable,
            self.other,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.first_failure
                .as_ref()
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        )
    }

    fn figures(&self, s: &str, concurrency: usize) -> Vec<Figure> {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        vec![
            Figure::new(
                s,
                &format!("throughput at c={concurrency} (200s)"),
                Some(self.ok as f64 / secs),
                "req/s",
            )
            .note(self.note()),
            Figure::new(
                s,
                &format!("p99 at c={concurrency}"),
                self.latencies.percentile(99.0).map(ms),
                "ms",
            ),
            Figure::new(
                s,
                &format!("failed at c={concurrency} (neither 200 nor 503)"),
                Some(self.failed() as f64),
                "requests",
            )
            .goal(Goal::AtMost(0.0)),
        ]
    }

    fn paced_figures(&self, s: &str, rate: u32) -> Vec<Figure> {
        let pct = |p| self.latencies.percentile(p).map(ms);
        vec![
            Figure::new(s, &format!("p50 at {rate}/s"), pct(50.0), "ms").note(self.note()),
            Figure::new(s, &format!("p99 at {rate}/s"), pct(99.0), "ms").goal(Goal::AtMost(1.0)),
            Figure::new(s, &format!("p99.9 at {rate}/s"), pct(99.9), "ms").goal(Goal::AtMost(3.0)),
            Figure::new(
                s,
                &format!("failed at {rate}/s (pooled keep-alive)"),
                Some((self.failed() + self.unavailable) as f64),
                "requests",
            )
            .goal(Goal::AtMost(0.0)),
        ]
    }
}

/// `concurrency` senders, each posting as soon as its last answer came,
/// for `duration`.
async fn closed_loop(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    body: &(impl Fn() -> Vec<u8> + Sync),
) -> Tally {
    let end = Instant::now() + duration;
    closed_loop_until_empty(target, concurrency, &|| (Instant::now() < end).then(body)).await
}

/// `concurrency` senders, each posting as soon as its last answer came,
/// until `body` runs out.
async fn closed_loop_until_empty(
    target: &Target,
    concurrency: usize,
    body: &(impl Fn() -> Option<Vec<u8>> + Sync),
) -> Tally {
    let client = client();
    let started = Instant::now();
    let senders = (0..concurrency.max(1)).map(|_| async {
        let mut t = Tally::default();
        while let Some(b) = body() {
            let at = Instant::now();
            let answer = post(&client, target, b).await;
            t.record(answer, at.elapsed());
        }
        t
    });
    let mut total = Tally::default();
    for t in futures::future::join_all(senders).await {
        total.merge(t);
    }
    total.elapsed = started.elapsed();
    total
}

/// One request every `1/rate` s whatever the answers, for `duration`;
/// latency from the scheduled time.
///
/// Every request is built and signed before the run (its
/// `webhookTimestamp` is its send time, inside the worker's replay window
/// whenever it is sent), so the measured path is the send alone. The
/// schedule is kept by a thread of its own sleeping to each send time
/// (`std::thread::sleep` wakes within tens of microseconds; tokio's timer
/// has millisecond granularity, which alone put up to 1 ms of the pacer's
/// lateness into every figure), handing each request to the runtime.
async fn open_loop(
    target: &Target,
    rate: u32,
    duration: Duration,
    body_at: &(impl Fn(i64) -> Vec<u8> + Sync),
) -> Tally {
    let client = client();
    let url: Arc<str> = target.url.clone().into();
    let n = rate as u64 * duration.as_secs();
    let period = Duration::from_secs(1) / rate.max(1);
    // Building takes well under `lead` (about 15 µs a request); the first
    // send is at `t0 + lead`, which is also the first body's timestamp.
    let lead = Duration::from_secs(3);
    let t0 = Instant::now();
    let first_ms = chrono::Utc::now().timestamp_millis() + lead.as_millis() as i64;
    let mut requests: std::collections::VecDeque<(Vec<u8>, String)> = (0..n)
        .map(|i| {
            let body = body_at(first_ms + (period * i as u32).as_millis() as i64);
            let signature = cyrus_linear::webhook::verify::sign(&body, &target.secret);
            (body, signature)
        })
        .collect();
    let (tick_tx, mut ticks) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let started = t0 + lead;
    let pacer = std::thread::spawn(move || {
        for i in 0..n {
            let at = started + period * (i as u32);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tick_tx.send(at).is_err() {
                return;
            }
        }
    });
    let mut inflight = Vec::with_capacity(n as usize);
    while let Some(at) = ticks.recv().await {
        let Some((body, signature)) = requests.pop_front() else {
            break;
        };
        let (client, url) = (client.clone(), url.clone());
        inflight.push(tokio::spawn(async move {
            let answer = send(&client, &url, body, signature).await;
            (answer, at.elapsed())
        }));
    }
    let _ = pacer.join();
    let mut t = Tally::default();
    for h in inflight {
        match h.await {
            Ok((answer, latency)) => t.record(answer, latency),
            Err(e) => t.record(Err(e.to_string()), Duration::ZERO),
        }
    }
    t.elapsed = started.elapsed();
    t
}

/// Distinct bodies `wrk` cycles through (each request has its own delivery
/// id; the body only has to be signed).
const WRK_BODIES: usize = 20_000;

/// A distinct `Issue` update of about 2.8 KB: of its priority, or of its
/// title.
fn issue_update(org: &str, i: u64, timestamp_ms: i64, title: bool) -> Vec<u8> {
    let updated_at = chrono::Utc::now().to_rfc3339();
    let updated_from = if title {
        json!({"updatedAt": updated_at, "title": format!("Bench issue {i}, before")})
    } else {
        json!({"updatedAt": updated_at, "priority": 3})
    };
    let filler = prose(i, 2_250);
    serde_json::to_vec(&json!({
        "type": "Issue", "action": "update", "organizationId": org,
        "webhookTimestamp": timestamp_ms,
        "webhookId": uuid::Uuid::new_v4().to_string(),
        "createdAt": chrono::Utc::now().to_rfc3339(),
        "url": format!("https://linear.example/issue/BENCH-{i}"),
        "data": {
            "id": format!("bench-issue-{i}"), "identifier": format!("BENCH-{i}"),
            "title": format!("Bench issue {i}"), "description": filler,
            "priority": 2, "teamId": "bench-team", "stateId": "bench-state",
            "labelIds": ["l1", "l2"], "updatedAt": chrono::Utc::now().to_rfc3339()
        },
        "updatedFrom": updated_from
    }))
    .unwrap_or_default()
}

/// About `len` characters of prose-like text, different for each `seed`:
/// words of random syllables compress about as English prose of this
/// length does (a whole body to about half with zstd), where a repeated
/// sentence would compress to almost nothing and flatter any store or
/// transport that compresses.
fn prose(seed: u64, len: usize) -> String {
    const SYLLABLES: [&str; 32] = [
        "ka", "ro", "mi", "te", "shi", "no", "va", "lu", "pe", "dor", "an", "is", "um", "bre",
        "qua", "zel", "fi", "go", "ha", "jo", "ex", "ty", "wen", "sa", "lor", "ic", "ment", "ing",
        "pro", "con", "der", "tion",
    ];
    // xorshift64: enough randomness, no dependency.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        if !out.is_empty() {
            out.push_str(if next() % 10 == 0 { ". " } else { " " });
        }
        for _ in 0..1 + next() % 3 {
            out.push_str(SYLLABLES[(next() % 32) as usize]);
        }
    }
    out
}

/// `cyrus sandbox`, pinned; its first stdout line describes it.
struct Sandbox {
    child: Child,
    info: Value,
    /// Kept open: a closed pipe would fail the sandbox's later writes.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Sandbox {
    fn start(cyrus_bin: &Path, cpu: usize) -> anyhow::Result<Sandbox> {
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(cyrus_bin)
            .arg("sandbox")
            // Linear's hourly budget would throttle the acknowledgements
            // themselves, which is not what this measures.
            .arg("--linear-requests-per-hour")
            .arg("100000000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `taskset … cyrus sandbox` (is util-linux's taskset installed?)")?;
        let stdout = child.stdout.take().context("sandbox stdout")?;
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(stdout);
        stdout.read_line(&mut line)?;
        let info: Value = serde_json::from_str(&line)
            .with_context(|| format!("reading the sandbox's first line {line:?}"))?;
        Ok(Sandbox {
            child,
            info,
            _stdout: stdout,
        })
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A measured server process and the file its output goes to.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text.get(start..).unwrap_or_default().to_string()
    }

    /// Its peak resident set (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let kib = crate::rig::proc_status_kib(self.child.id(), "VmHWM:").ok()?;
        Some((kib as f64 / 1024.0 * 10.0).round() / 10.0)
    }

    /// Stops it; `Some(status)` if it had already exited.
    fn stop(mut self) -> Option<std::process::ExitStatus> {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        exited
    }
}

/// `cyrus start`, pinned, on a free port.
struct Worker {
    server: Server,
    addr: std::net::SocketAddr,
    store_url: String,
}

async fn start_worker(opts: &LoadOptions, sandbox: &Sandbox, dir: &Path) -> anyhow::Result<Worker> {
    let i = &sandbox.info;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let store_url = match &opts.postgres {
        Some(url) => {
            reset_postgres(url).await?;
            url.clone()
        }
        None => format!("sqlite://{}", dir.join("cyrus.db").display()),
    };
    let org = i["linear_organization_id"].clone();
    let config = json!({
        "repositories": [{
            "id": "web", "name": "web", "linearWorkspaceId": org, "codegenRepoId": 7,
            "teamKeys": ["ENG"]
        }],
        "codegen": {
            "enabled": true, "orgId": i["codegen_org_id"], "apiToken": i["codegen_token"],
            "baseUrl": i["codegen_url"],
            "maxCostPerTask": 2.0, "maxCostPerDay": 1_000_000.0, "maxConcurrentRuns": 50,
            "defaultModel": "claude-3-5-sonnet",
            "pricing": {"claude-3-5-sonnet": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "perRun": 0.05},
            "pollIntervalSecs": 1
        },
        "linear": {
            "apiUrl": i["linear_url"], "webhookSecret": i["linear_webhook_secret"],
            "agentUserId": i["linear_agent_user_id"],
            "workspaces": [{
                "organizationId": org, "token": i["linear_api_key"],
                "webhookSecret": i["linear_webhook_secret"], "agentUserId": i["linear_agent_user_id"]
            }]
        },
        "server": {"listen": addr.to_string()},
        "store": {"url": store_url, "sqliteSynchronous": opts.sync}
    });
    let path = dir.join("cyrus.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    let log = dir.join("worker.log");
    let child = Command::new("taskset")
        .arg("-c")
        .arg(opts.worker_cpu.to_string())
        .arg(&opts.cyrus_bin)
        .arg("start")
        .arg("--config")
        .arg(&path)
        // The worker's log filter: errors only, unless a diagnosis asks
        // for more (its log is kept in the run's directory).
        .env(
            "RUST_LOG",
            std::env::var("CYRUS_BENCH_WORKER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting `taskset … cyrus start`")?;
    let worker = Worker {
        server: Server { child, log },
        addr,
        store_url,
    };
    if !crate::rig::wait_healthy(addr, Duration::from_secs(30)).await {
        let tail = worker.server.log_tail();
        worker.server.stop();
        anyhow::bail!("cyrus start did not become healthy:\n{tail}");
    }
    Ok(worker)
}

impl Worker {
    /// Means of the worker's `cyrus_store_delivery_batch_callers` and
    /// `cyrus_intake_claimed_deliveries` histograms, from `/metrics`.
    async fn batching(&self) -> (Option<f64>, Option<f64>) {
        let Ok(text) = async {
            reqwest::get(format!("http://{}/metrics", self.addr))
                .await?
                .text()
                .await
        }
        .await
        else {
            return (None, None);
        };
        let mean = |name: &str| {
            let read = |suffix: &str| {
                text.lines()
                    .find(|l| l.starts_with(&format!("{name}_{suffix} ")))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            };
            Some(read("sum")? / read("count")?.max(1.0))
        };
        (
            mean("cyrus_store_delivery_batch_callers"),
            mean("cyrus_intake_claimed_deliveries"),
        )
    }

    async fn unprocessed_count(&self) -> anyhow::Result<i64> {
        let store = cyrus_store::Store::connect_without_migrating(&self.store_url).await?;
        let n = store.unprocessed_delivery_count().await?;
        store.close().await;
        Ok(n)
    }

    async fn delivery_count(&self) -> anyhow::Result<i64> {
        let store = cyrus_store::Store::connect_without_migrating(&self.store_url).await?;
        let n = store.delivery_count().await?;
        store.close().await;
        Ok(n)
    }
}

/// The PostgreSQL database must start empty so rows can be counted.
/// The peer's server, pinned, on a free port.
struct PeerServer {
    server: Server,
    target: Target,
}

impl PeerServer {
    async fn start(peer: &PeerCommand, cpu: usize, dir: &Path) -> anyhow::Result<PeerServer> {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?
        };
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let log = dir.join("peer.log");
        let out = std::fs::File::create(&log)?;
        // `exec`, so the pinned process whose memory is read is the
        // server, not a shell.
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg("sh")
            .arg("-c")
            .arg(format!("exec {}", peer.command))
            .env("PORT", addr.port().to_string())
            .env("SECRET", &secret)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting `taskset … sh -c <peer command>`")?;
        let peer = PeerServer {
            server: Server { child, log },
            target: Target {
                url: format!("http://{addr}{}", peer.path),
                secret: SecretString::from(secret),
            },
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                let tail = peer.server.log_tail();
                peer.server.stop();
                anyhow::bail!("the peer did not listen on {addr} within 30 s:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(peer)
    }
}

async fn reset_postgres(url: &str) -> anyhow::Result<()> {
    let store = cyrus_store::Store::connect(url).await?;
    let n = store.delivery_count().await?;
    store.close().await;
    anyhow::ensure!(
        n == 0,
        "the PostgreSQL database at --postgres already holds {n} deliveries; give the load scenario an empty database"
    );
    Ok(())
}

/// The Linear simulator's control API (it runs in the sandbox process).
#[derive(Clone)]
struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    fn new(sandbox: &Sandbox) -> Control {
        Control {
            http: reqwest::Client::new(),
            base: sandbox.info["linear_control_url"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        anyhow::ensure!(
            status.is_success(),
            "simulator control: HTTP {status}: {text}"
        );
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn team(&self) -> anyhow::Result<String> {
        let team = self
            .call(
                self.http
                    .post(format!("{}/teams", self.base))
                    .json(&json!({"key": "ENG", "name": "Engineering"})),
            )
            .await?;
        team["id"].as_str().map(str::to_string).context("team id")
    }

    async fn set_webhook_url(&self, url: Option<String>) -> anyhow::Result<()> {
        self.call(
            self.http
                .post(format!("{}/webhook-url", self.base))
                .json(&json!({"url": url})),
        )
        .await
        .map(drop)
    }

    async fn create_issues(&self, team: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let issue = self
                .call(
                    self.http
                        .post(format!("{}/issues", self.base))
                        .json(&json!({
                            "teamId": team, "title": format!("Bench task {i}"),
                            "description": "[sim never_finish] a benchmark task."
                        })),
                )
                .await?;
            out.push(issue["id"].as_str().context("issue id")?.to_string());
        }
        Ok(out)
    }

    async fn delegate(&self, issue: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                self.http
                    .post(format!("{}/issues/{issue}/delegate", self.base)),
            )
            .await?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .context("session id")
    }

    async fn delegate_many(&self, team: &str, n: usize) -> anyhow::Result<()> {
        let issues = self.create_issues(team, n).await?;
        for issue in &issues {
            self.delegate(issue).await?;
        }
        Ok(())
    }

    async fn deliveries(&self) -> anyhow::Result<Vec<Value>> {
        let v = self
            .call(self.http.get(format!("{}/deliveries", self.base)))
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Unix ms of the session's first activity, if any.
    async fn first_activity_ms(&self, session: &str) -> anyhow::Result<Option<i64>> {
        let v = self
            .call(self.http.get(format!("{}/sessions/{session}", self.base)))
            .await?;
        Ok(v["activities"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["createdAt"].as_str().or_else(|| a["created_at"].as_str()))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis()))
    }
}

/// Pins this process (the generator) to `cpu`; its children inherit it.
fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .arg("-a")
        .arg("-p")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    anyhow::ensure!(status.success(), "taskset -a -p -c {cpu} failed: {status}");
    Ok(())
}
