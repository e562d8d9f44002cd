//! Turns stored webhook deliveries into task changes.
//!
//! Processing is idempotent — task creation is unique per agent session, the
//! acknowledgement and follow-ups have dedupe keys, stop requests are sticky —
//! so a delivery processed twice (a crash between processing and marking it
//! processed) changes nothing the second time.

use crate::context::Ctx;
use crate::outbox::OutboxOp;
use cyrus_linear::WebhookEvent;
use cyrus_linear::webhook::{VerifiedDelivery, parse_event};
use cyrus_store::{Delivery, NewTask};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

/// Attempts after which a delivery that keeps failing is set aside.
const MAX_DELIVERY_ATTEMPTS: i64 = 10;
/// How long a prompt for a session without a task is kept for that task to
/// appear (retried as its delivery lease expires, every 30 s).
const PROMPT_WAITS_FOR_TASK_MS: i64 = 5 * 60_000;
/// Attempts per task step before the task is dead-lettered.
pub const MAX_TASK_ATTEMPTS: i64 = 5;

/// How long a claim on a delivery lasts (a crashed worker's deliveries are
/// taken by another pass once it expires).
const DELIVERY_LEASE: Duration = Duration::from_secs(30);

/// Deliveries waiting in memory for this process's processor, at most. Each
/// holds its body (about 3 KiB); past this a delivery is stored unleased
/// and the processor claims it from the store instead.
const HANDOFF: usize = 1024;
/// Marks of deliveries accepted inline waiting for the processor's write,
/// at most (past it, the acceptance marks its delivery itself).
const MARKS: usize = 4096;

/// The webhook handler's side of the hand-off: a delivery this process
/// stores already leased to itself goes to its processor in memory, so the
/// processor neither claims it (a write) nor reads its body back (a read
/// and a copy). The store stays the truth: a handed delivery is committed
/// before it is sent, and if the process dies with it unprocessed its lease
/// expires and any replica's processor claims it from the store.
#[derive(Clone)]
pub(crate) struct Handoff {
    tx: tokio::sync::mpsc::Sender<Handover>,
    /// Set once a delivery stored unleased (for want of room) has
    /// committed: the processor then reads the store on its next pass.
    stored_unleased: std::sync::Arc<std::sync::atomic::AtomicBool>,
    owner: std::sync::Arc<str>,
    /// Deliveries accepted inline, to be marked processed in the
    /// processor's next write (see [`Handoff::processed`]).
    marks: tokio::sync::mpsc::Sender<Mark>,
}

/// A delivery to mark processed, with its outcome.
type Mark = (String, String);

/// The processor's side of the hand-off.
pub(crate) struct Handed {
    rx: tokio::sync::mpsc::Receiver<Handover>,
    stored_unleased: std::sync::Arc<std::sync::atomic::AtomicBool>,
    marks: tokio::sync::mpsc::Receiver<Mark>,
}

/// A committed delivery leased to this process, as it was stored.
type Handover = cyrus_store::NewDelivery;

/// A room reserved in the hand-off before a delivery is stored (so a
/// delivery stored leased always finds its way to the processor).
pub(crate) struct HandoffSlot<'a>(tokio::sync::mpsc::Permit<'a, Handover>);

pub(crate) fn handoff(ctx: &Ctx) -> (Handoff, Handed) {
    handoff_of(ctx.intake_owner(), HANDOFF)
}

fn handoff_of(owner: String, room: usize) -> (Handoff, Handed) {
    let (tx, rx) = tokio::sync::mpsc::channel(room);
    let (marks, marked) = tokio::sync::mpsc::channel(MARKS);
    let stored_unleased = std::sync::Arc::default();
    (
        Handoff {
            tx,
            stored_unleased: std::sync::Arc::clone(&stored_unleased),
            owner: owner.into(),
            marks,
        },
        Handed {
            rx,
            stored_unleased,
            marks: marked,
        },
    )
}

impl Handoff {
    /// A room for one delivery, or `None` when the processor is that far
    /// behind (the delivery is then stored unleased).
    pub(crate) fn reserve(&self) -> Option<HandoffSlot<'_>> {
        self.tx.try_reserve().ok().map(HandoffSlot)
    }

    /// Gives up the lease delivery `id` was stored with when it was
    /// received at `received_at` ([`Handoff::lease`]), the delivery not to
    /// be taken from memory after all, and has the processor read the store
    /// on its next pass, busy or not, so it claims the delivery now rather
    /// than when the lease runs out. Nothing changes for an id that is not
    /// stored, nor for a lease taken since (the processor's claim after
    /// this one expired, or the original's when this was a copy).
    pub(crate) async fn release(
        &self,
        ctx: &Ctx,
        id: &str,
        received_at: i64,
    ) -> cyrus_store::Result<()> {
        ctx.store
            .release_delivery(id, &self.lease(received_at))
            .await?;
        self.stored_unleased();
        ctx.wake.intake.notify_one();
        Ok(())
    }

    /// A delivery stored unleased has committed: the processor reads the
    /// store on its next pass.
    pub(crate) fn stored_unleased(&self) {
        self.stored_unleased
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Leaves marking a delivery accepted inline to the processor, whose
    /// next write marks it with everything else it processed: one
    /// statement for many instead of one (a transaction of its own on
    /// SQLite's one writer) per new session. Answers the mark back when
    /// the processor has no room for it (the caller marks it itself). If
    /// the process dies first, the delivery is processed again once its
    /// lease expires, which changes nothing (the task exists).
    pub(crate) fn processed(&self, id: String, outcome: String) -> Result<(), Mark> {
        self.marks
            .try_send((id, outcome))
            .map_err(|e| e.into_inner())
    }

    /// The lease a delivery handled by this process is stored with.
    pub(crate) fn lease(&self, now_ms: i64) -> cyrus_store::DeliveryLease {
        cyrus_store::DeliveryLease {
            owner: self.owner.to_string(),
            expires_at: now_ms + DELIVERY_LEASE.as_millis() as i64,
        }
    }
}

impl HandoffSlot<'_> {
    /// Hands over a delivery that has committed leased to this process.
    pub(crate) fn send(self, d: Handover) {
        self.0.send(d);
    }
}

/// Processed deliveries deleted per statement when pruning: small enough
/// that the SQLite writer, which intake shares, is held only briefly.
const PRUNE_CHUNK: i64 = 1_000;
/// Statements per pruning pass at most (100 000 deliveries), so that a
/// first pass over a large backlog leaves the rest to later passes rather
/// than holding up the loop it runs in.
const PRUNE_CHUNKS_PER_PASS: usize = 100;

/// Deletes processed deliveries past `store.deliveryRetentionDays` (the
/// table and its unique index of ids would otherwise grow for as long as
/// the worker runs); returns how many.
pub(crate) async fn prune(ctx: &Ctx) -> Result<u64, cyrus_store::StoreError> {
    let before = ctx.retention_cutoff_ms(ctx.config.store.delivery_retention_days);
    prune_in_chunks(&ctx.store, before, PRUNE_CHUNK, PRUNE_CHUNKS_PER_PASS).await
}

/// Prunes `chunk` deliveries a statement until fewer are left or
/// `max_chunks` statements have run.
async fn prune_in_chunks(
    store: &cyrus_store::Store,
    before: i64,
    chunk: i64,
    max_chunks: usize,
) -> Result<u64, cyrus_store::StoreError> {
    let mut pruned = 0;
    for _ in 0..max_chunks {
        let n = store.prune_deliveries(before, chunk).await?;
        pruned += n;
        if n < chunk as u64 {
            break;
        }
    }
    Ok(pruned)
}

/// When a handover's lease expires; one without a lease (never handed so)
/// reads as expired, leaving it to the store.
fn lease_expires_at(h: &Handover) -> i64 {
    h.arrival.lease().map_or(0, |l| l.expires_at)
}

/// A handover as the store would answer a claim of it (its first).
fn into_delivery(h: Handover) -> Delivery {
    let payload = serde_json::from_str(&h.body).unwrap_or_else(|err| {
        // The verifier parsed this body before it was stored.
        tracing::error!(delivery = %h.delivery_id, error = %err, "intake: a handed delivery's body does not parse");
        serde_json::Value::Null
    });
    Delivery {
        delivery_id: h.delivery_id,
        organization_id: h.organization_id,
        event_type: h.event_type,
        action: h.action,
        payload,
        received_at: h.received_at,
        attempts: 1,
        processed_at: None,
        outcome: None,
    }
}

/// Processes deliveries until shutdown: those handed over in memory, and
/// those claimed from the store (stored while the hand-off was full, or
/// left by a replica that stopped).
pub async fn run_processor(ctx: Ctx, mut handed: Handed) {
    let owner = ctx.intake_owner();
    let mut waiting: Vec<Handover> = Vec::with_capacity(CLAIM_BATCH as usize);
    // The store is read at least every STORE_PASS whatever is handed over:
    // it holds what nobody handed over (stored unleased, released, left
    // for a retry, a handover whose lease ran out, another replica's).
    let mut store_read_at: Option<std::time::Instant> = None;
    let mut store_behind = false;
    let mut marks: Vec<Mark> = Vec::new();
    // Woken by marks alone: nothing new is waiting in the store either.
    let mut marks_only = false;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        while waiting.len() < CLAIM_BATCH as usize {
            match handed.rx.try_recv() {
                Ok(h) => waiting.push(h),
                Err(_) => break,
            }
        }
        // A handover that waited so long its lease is nearly over is left
        // to the store, where the claim that follows its expiry takes it;
        // processing it now could overlap another replica's claim.
        let now = ctx.now_ms();
        let before = waiting.len();
        waiting.retain(|h| lease_expires_at(h) - now > LEASE_MARGIN.as_millis() as i64);
        store_behind |= waiting.len() < before;
        let flagged = handed
            .stored_unleased
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let due = store_read_at.is_none_or(|at| at.elapsed() >= STORE_PASS);
        let marks_wake = std::mem::take(&mut marks_only);
        let idle_wake = waiting.is_empty() && !marks_wake;
        let mut batch = if idle_wake || flagged || store_behind || due {
            store_read_at = Some(std::time::Instant::now());
            let claimed = ctx
                .store
                .claim_unprocessed_deliveries(&owner, DELIVERY_LEASE, now, CLAIM_BATCH)
                .await
                .unwrap_or_else(|err| {
                    tracing::error!(error = %err, "intake: claiming deliveries failed");
                    Vec::new()
                });
            // A full claim means there is more: read the store again next.
            store_behind = claimed.len() as i64 >= CLAIM_BATCH;
            claimed
        } else {
            Vec::new()
        };
        let leases = Leases {
            claimed_until: now + DELIVERY_LEASE.as_millis() as i64,
            handed_until: waiting
                .iter()
                .map(|h| (h.delivery_id.clone(), lease_expires_at(h)))
                .collect(),
        };
        // Older first: what the store holds was stored before what waits.
        batch.extend(waiting.drain(..).map(into_delivery));
        let busy = !batch.is_empty();
        if busy {
            metrics::histogram!("cyrus_intake_claimed_deliveries").record(batch.len() as f64);
        }
        let full = batch.len() >= CLAIM_BATCH as usize;
        let mut done = process_batch(&ctx, batch, &leases).await;
        // With the deliveries accepted inline since the last pass.
        while let Ok(mark) = handed.marks.try_recv() {
            marks.push(mark);
        }
        done.append(&mut marks);
        // One write for the whole batch. A crash before it leaves these
        // deliveries to be processed again, which changes nothing (see the
        // module's comment).
        mark_processed(&ctx, &done).await;
        if !busy {
            // A closed channel (the HTTP server's side dropped without a
            // shutdown) would answer at once, every turn: its branch is
            // off then, and what it still held was taken above.
            tokio::select! {
                _ = handed.rx.recv_many(&mut waiting, CLAIM_BATCH as usize), if !handed.rx.is_closed() => {}
                // Marks gather for a moment, as deliveries do below.
                _ = handed.marks.recv_many(&mut marks, MARKS), if !handed.marks.is_closed() => {
                    marks_only = true;
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => {}
                        _ = ctx.shutdown.cancelled() => break,
                    }
                }
                _ = ctx.wake.intake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = ctx.shutdown.cancelled() => break,
            }
        } else if !full {
            // Deliveries are arriving one by one: let a few gather before
            // the next pass, so the pass's one write to mark them covers
            // several (each write waits for the store's one writer, as the
            // webhook's commits do). An idle processor still takes the
            // first delivery at once.
            tokio::select! {
                _ = tokio::time::sleep(GATHER) => {}
                _ = ctx.shutdown.cancelled() => break,
            }
        }
    }
    // Stopping: what was accepted inline is marked now rather than
    // processed again by whoever claims it next. Closed first, so that an
    // acceptance finishing later marks its delivery itself.
    handed.marks.close();
    while let Ok(mark) = handed.marks.try_recv() {
        marks.push(mark);
    }
    mark_processed(&ctx, &marks).await;
}

async fn mark_processed(ctx: &Ctx, done: &[Mark]) {
    if let Err(err) = ctx
        .store
        .mark_deliveries_processed(done, ctx.now_ms())
        .await
    {
        tracing::error!(error = %err, deliveries = done.len(), "intake: marking processed failed");
    }
}

/// Processes a batch in order, except that deliveries about different
/// issues are independent of each other, so a run of them is processed
/// concurrently: a burst of delegations past the inline bound is otherwise
/// acknowledged one Linear round trip at a time, and a burst of issue
/// edits read one store round trip at a time. Two deliveries about one
/// issue are not (a second session becomes a follow-up of the first's
/// task; a state change and an edit keep their order). Answers the
/// deliveries to mark processed, with their outcomes.
async fn process_batch(ctx: &Ctx, batch: Vec<Delivery>, leases: &Leases) -> Vec<(String, String)> {
    // Webhooks being answered come first, for a moment (`intake_first`),
    // when all the batch holds is new sessions and edits; a prompt, a stop
    // or a state change goes ahead at once, even with an edit beside it.
    if batch.iter().all(|d| is_new_session(d) || is_edit_alone(d))
        && let Some(oldest) = batch.iter().map(|d| d.received_at).min()
    {
        let deadline = crate::intake_first::deadline(oldest, ctx.now_ms());
        ctx.intake_load.yield_until_quiet(deadline).await;
    }
    let mut done = Vec::new();
    let posts_until = tokio::time::Instant::now() + DIRECT_POSTS_FOR;
    for run in runs(batch) {
        let read = RunRead::of(ctx, &run).await;
        if run.len() == 1 {
            let delivery = run.into_iter().next().expect("one");
            let lease = leases.end_of(&delivery);
            done.extend(handle(ctx, delivery, &read, posts_until, lease).await);
            continue;
        }
        let read = &read;
        let outcomes: Vec<_> = futures::stream::iter(run)
            .map(|d| {
                let lease = leases.end_of(&d);
                handle(ctx, d, read, posts_until, lease)
            })
            .buffer_unordered(CONCURRENT_DELIVERIES)
            .collect()
            .await;
        done.extend(outcomes.into_iter().flatten());
    }
    done
}

/// When the leases of a batch's deliveries end (Unix ms).
struct Leases {
    /// A claim's: a full lease from the claim.
    claimed_until: i64,
    /// A handover's: what is left of the lease it was stored with.
    handed_until: std::collections::HashMap<String, i64>,
}

impl Leases {
    fn end_of(&self, delivery: &Delivery) -> i64 {
        self.handed_until
            .get(&delivery.delivery_id)
            .copied()
            .unwrap_or(self.claimed_until)
    }
}

/// Splits a batch, in order, into runs that may be processed concurrently:
/// consecutive deliveries each about one issue (a new session, or an
/// `Issue` event), no two about the same one. Anything else (a prompt, a
/// comment, a revocation, a permission change, …) is a run of its own.
fn runs(batch: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    let mut runs: Vec<Vec<Delivery>> = Vec::new();
    // The issues of the last run: empty when that run is one delivery
    // about no issue (or there is none yet), which nothing joins.
    let mut issues = std::collections::HashSet::new();
    for delivery in batch {
        let issue = issue_of(&delivery);
        let joins = !issues.is_empty() && issue.as_ref().is_some_and(|i| !issues.contains(i));
        if !joins {
            issues.clear();
            runs.push(Vec::new());
        }
        issues.extend(issue);
        runs.last_mut().expect("a run was pushed").push(delivery);
    }
    runs
}

/// What a run's one read of the store says before its deliveries are
/// handled: which of the issues its title and description edits are about
/// have a live task. Most edits are of issues Cyrus has no task on, and
/// listing each one's tasks was most of the processor's work on a burst
/// of them. A run holds at most one delivery per issue and the runs before
/// it have finished, so nothing in the run changes the answer; an edit is
/// forwarded only to a running or waiting task, and one created meanwhile
/// elsewhere reads the issue fresh when its run starts.
#[derive(Default)]
struct RunRead {
    /// The issues asked about that have no live task.
    without_live_task: std::collections::HashSet<String>,
}

impl RunRead {
    async fn of(ctx: &Ctx, run: &[Delivery]) -> RunRead {
        let asked: std::collections::HashSet<String> = run
            .iter()
            .filter(|d| is_edit(d))
            .filter_map(issue_of)
            .collect();
        if asked.is_empty() {
            return RunRead::default();
        }
        let ids: Vec<&str> = asked.iter().map(String::as_str).collect();
        match ctx.store.issues_with_live_tasks(&ids).await {
            Ok(live) => RunRead {
                without_live_task: asked.difference(&live).cloned().collect(),
            },
            Err(err) => {
                // Each edit then reads its own issue's tasks.
                tracing::warn!(error = %err, "intake: reading a run's live tasks failed");
                RunRead::default()
            }
        }
    }

    /// Whether the read found that `issue` has no live task.
    fn no_live_task(&self, issue: &str) -> bool {
        self.without_live_task.contains(issue)
    }
}

/// An `Issue` update that changed the title or the description (one
/// [`forward_edit`] acts on).
fn is_edit(delivery: &Delivery) -> bool {
    let changed = &delivery.payload["updatedFrom"];
    delivery.event_type == "Issue"
        && delivery.action.as_deref() == Some("update")
        && (changed.get("title").is_some() || changed.get("description").is_some())
}

/// An `Issue` update whose only changes the processor acts on are to the
/// title or the description: one that also moves the state or the delegate
/// (a stop, the agent unassigned) or the labels is not only an edit.
fn is_edit_alone(delivery: &Delivery) -> bool {
    is_edit(delivery)
        && delivery.payload["updatedFrom"]
            .as_object()
            .is_some_and(|changed| {
                changed
                    .keys()
                    .filter(|field| ISSUE_FIELDS_ACTED_ON.contains(&field.as_str()))
                    .all(|field| field == "title" || field == "description")
            })
}

/// The one issue a delivery is about, for a new session or an `Issue`
/// event (`None` for anything else, or one that names no issue).
fn issue_of(delivery: &Delivery) -> Option<String> {
    let id = if is_new_session(delivery) {
        let session = &delivery.payload["agentSession"];
        session["issueId"]
            .as_str()
            .or_else(|| session["issue"]["id"].as_str())
    } else if delivery.event_type == "Issue" {
        delivery.payload["data"]["id"].as_str()
    } else {
        None
    };
    id.filter(|id| !id.is_empty()).map(str::to_string)
}

/// Deliveries claimed at once.
const CLAIM_BATCH: i64 = 128;
/// The longest the processor goes without reading the store.
const STORE_PASS: Duration = Duration::from_secs(1);
/// A handover with less of its lease left than this is left to the store.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How long a busy processor lets deliveries gather between claims.
const GATHER: Duration = Duration::from_millis(5);

/// Deliveries about different issues the processor handles at once (see
/// [`process_batch`]): as many as one claim brings (a batch may hold as
/// many again handed over in memory). Each new session waits on round
/// trips (the acknowledgement's to Linear, its reads and its batched
/// write to the store), so after a burst left to the processor its rate is
/// about this many over one session's latency: on PostgreSQL 32 at a time
/// acknowledged 10 000 sessions at 900 a second, past 10 s for the last.
const CONCURRENT_DELIVERIES: usize = CLAIM_BATCH as usize;

fn is_new_session(delivery: &Delivery) -> bool {
    accepts_inline(
        &delivery.event_type,
        delivery.action.as_deref().unwrap_or_default(),
    )
}

/// Processes one claimed delivery: `Some((id, outcome))` to mark it
/// processed, `None` to leave it for its lease to expire and another pass
/// to retry. `posts_until`: see [`DIRECT_POSTS_FOR`]. `lease_ends` (Unix
/// ms): when this process's lease on it runs out. The lease is checked
/// here, as the delivery's turn comes, not only when its batch began: a
/// batch's runs are handled one after another and may take long (Linear
/// slow to answer a prompt's checks), and one handled past its lease may
/// be handled at the same time by whoever claimed it after.
async fn handle(
    ctx: &Ctx,
    delivery: Delivery,
    read: &RunRead,
    posts_until: tokio::time::Instant,
    lease_ends: i64,
) -> Option<(String, String)> {
    let id = delivery.delivery_id.clone();
    let left = Duration::from_millis(u64::try_from(lease_ends - ctx.now_ms()).unwrap_or(0));
    if left <= LEASE_MARGIN {
        tracing::info!(delivery = %id, left_ms = left.as_millis() as u64, "intake: too little of the lease is left; the claim that follows its expiry takes the delivery");
        return None;
    }
    // A direct post that may take DIRECT_ACK_AT_MOST still ends inside
    // this delivery's own lease, with the margin to spare.
    let own = tokio::time::Instant::now() + left.saturating_sub(LEASE_MARGIN + DIRECT_ACK_AT_MOST);
    let posts_until = posts_until.min(own);
    let outcome = if delivery.attempts > MAX_DELIVERY_ATTEMPTS {
        "error: gave up after repeated failures".to_string()
    } else {
        match process(ctx, delivery, read, posts_until).await {
            Ok(outcome) => outcome,
            Err(IntakeError::Store(cyrus_store::StoreError::NotFound(what))) => {
                tracing::info!(delivery = %id, "intake: waiting for {what}; will retry");
                return None;
            }
            Err(err) => {
                tracing::error!(delivery = %id, error = %err, "intake: processing failed; will retry");
                return None;
            }
        }
    };
    Some((id, outcome))
}

type Outcome = Result<String, IntakeError>;

/// The fields of an `Issue` update the processor acts on: the state (a
/// stop, an experiment's outcome, unblocked tasks, triage), the delegate
/// (the agent unassigned), the title and the description (forwarded to a
/// running task) and the labels (triage). [`process`] looks at an update
/// only if it changed one of them, so this list is the one place to add a
/// field to.
const ISSUE_FIELDS_ACTED_ON: [&str; 5] =
    ["stateId", "delegateId", "title", "description", "labelIds"];

/// The outcome of an `Issue` update that changes no task.
const NO_TASK_CHANGE: &str = "ignored: no change that affects a task";

fn acts_on_issue_update<'a>(mut changed: impl Iterator<Item = &'a str>) -> bool {
    changed.any(|field| ISSUE_FIELDS_ACTED_ON.contains(&field))
}

/// The outcome of a delivery that is settled by what it is alone, before
/// it is stored: an `Issue` update that changed none of the fields the
/// processor acts on. Linear sends one for every edit of every issue the
/// webhook sees (priority, estimate, sort order, …), and most change no
/// task; such a delivery is stored already processed (it still answers
/// its copies as duplicates), and costs the processor nothing. An update
/// whose changed fields are not known (`None`) is left to the processor.
pub(crate) fn settled_on_arrival(
    event_type: &str,
    action: &str,
    updated_fields: Option<&[String]>,
) -> Option<&'static str> {
    let settled = event_type == "Issue"
        && action == "update"
        && updated_fields.is_some_and(|f| !acts_on_issue_update(f.iter().map(String::as_str)));
    settled.then_some(NO_TASK_CHANGE)
}

/// Why processing a delivery must be retried later (its lease expires and
/// another pass takes it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IntakeError {
    #[error(transparent)]
    Store(#[from] cyrus_store::StoreError),
    /// Linear could not answer a question the delivery depends on.
    #[error("Linear: {0}")]
    Linear(#[from] cyrus_linear::LinearError),
}

async fn process(
    ctx: &Ctx,
    delivery: Delivery,
    read: &RunRead,
    posts_until: tokio::time::Instant,
) -> Outcome {
    let (received_at, attempts) = (delivery.received_at, delivery.attempts);
    let verified = VerifiedDelivery {
        delivery_id: delivery.delivery_id,
        organization_id: delivery.organization_id,
        event_type: delivery.event_type,
        action: delivery.action.unwrap_or_default(),
        // When Linear sent it, as the webhook handler read it (the time to
        // an acknowledgement counts from there); its arrival if unreadable.
        sent_at: chrono::DateTime::from_timestamp_millis(
            delivery.payload["webhookTimestamp"]
                .as_f64()
                .map_or(received_at, |sent| sent as i64),
        )
        .unwrap_or_default(),
        payload: delivery.payload,
    };
    let event = match parse_event(&verified) {
        Ok(event) => event,
        Err(err) => return Ok(format!("ignored: {err}")),
    };
    match event {
        WebhookEvent::SessionCreated(created) => {
            // On a delivery's first attempt no acceptance of this delivery
            // has posted the acknowledgement, so it is posted now, as the
            // inline acceptance does (a burst leaves most sessions to the
            // processor, and the outbox's own claim and marks cost as much
            // again). A later attempt's goes through the outbox: that
            // delivery's inline acceptance, stored as a first attempt and
            // claimed again as a second, may have posted it already, and
            // posting again doubled its Linear calls. (Copies of a session
            // under other delivery ids may post too: one activity id, so
            // Linear keeps one.)
            let in_time = tokio::time::Instant::now() < posts_until;
            let acked_at = if attempts == 1 && !created.is_self_triggered() && in_time {
                let sent_at = verified.sent_at.timestamp_millis();
                post_acknowledgement(ctx, &created, sent_at).await
            } else {
                None
            };
            accept_created(ctx, &created, &verified.payload, acked_at).await
        }
        WebhookEvent::SessionPrompted(prompted) => {
            let Some(task) = ctx.store.get_task_by_session(&prompted.session.id).await? else {
                // The session's `created` may still be on its way (its task
                // is created after the acknowledgement, or by a replica
                // that was killed first): a "stop" or a message sent right
                // away must wait for it, not be dropped.
                if ctx.now_ms() - received_at < PROMPT_WAITS_FOR_TASK_MS {
                    return Err(IntakeError::Store(cyrus_store::StoreError::NotFound(
                        format!(
                            "the task of session {} (a prompt waits for it)",
                            prompted.session.id
                        ),
                    )));
                }
                return Ok("ignored: prompt for an unknown session".into());
            };
            let now = ctx.now_ms();
            if prompted.stop || is_stop_message(&prompted.message) {
                let reason = "You asked me to stop.";
                let by = prompted
                    .user
                    .as_ref()
                    .map(|u| u.email.clone().unwrap_or_else(|| u.id.clone()))
                    .unwrap_or_else(|| "someone in the session".into());
                crate::requests::request_stop(
                    ctx,
                    &task,
                    &format!("stop:{}", prompted.activity_id),
                    reason,
                    &by,
                )
                .await?;
                return Ok("ok: stop requested".into());
            }
            if let Some(refused) = refuse_prompt(ctx, &task, &prompted).await? {
                return Ok(refused);
            }
            ctx.store
                .add_followup(&task.id, &prompted.activity_id, &prompted.message, now)
                .await?;
            ctx.store.reopen_task(&task.id, now).await?;
            ctx.store.wake_task(&task.id, now).await?;
            ctx.wake.scheduler.notify_one();
            Ok("ok: follow-up queued".into())
        }
        WebhookEvent::IssueUpdated(updated) => {
            if !acts_on_issue_update(updated.updated_from.keys().map(String::as_str)) {
                return Ok(NO_TASK_CHANGE.into());
            }
            let app_user = agent_user_id(ctx, &updated.organization_id);
            let reason = if updated.became_terminal() {
                let name = updated
                    .issue
                    .state
                    .as_ref()
                    .and_then(|s| s.name.clone())
                    .unwrap_or_default();
                Some(format!(
                    "The issue moved to {name}, so I've stopped working on it."
                ))
            } else if app_user
                .as_deref()
                .is_some_and(|u| updated.delegate_removed(u))
            {
                Some("I've been unassigned and am stopping work now.".to_string())
            } else {
                None
            };
            if reason.is_none()
                && (updated.title_changed() || updated.description_changed())
                && !read.no_live_task(&updated.issue.id)
            {
                forward_edit(ctx, &updated, &verified.delivery_id).await?;
            }
            if updated.state_changed() {
                record_issue_outcome(ctx, &updated).await?;
            }
            // A state change may resolve a blocker of some parked task.
            let woke = if updated.state_changed() {
                // Orchestrations waiting on a blocker outside their set too.
                crate::requests::wake_parked(
                    ctx,
                    cyrus_core::lifecycle::WaitReason::WaitingForChildren,
                )
                .await?;
                crate::requests::wake_parked(ctx, cyrus_core::lifecycle::WaitReason::Blocked)
                    .await?
            } else {
                0
            };
            match reason {
                Some(reason) => {
                    stop_issue_tasks(ctx, &updated.issue.id, &verified.delivery_id, &reason).await
                }
                None => {
                    // An edit can make an issue match a rule (a label, the
                    // Triage state); triage never starts twice per issue.
                    let triaged = if updated.state_changed()
                        || updated.updated_from.contains_key("labelIds")
                    {
                        crate::triage::consider(ctx, &updated.organization_id, &updated.issue)
                            .await?
                    } else {
                        None
                    };
                    match triaged {
                        Some(outcome) => Ok(outcome),
                        None if woke > 0 => Ok(format!("ok: woke {woke} blocked task(s)")),
                        None => Ok(NO_TASK_CHANGE.into()),
                    }
                }
            }
        }
        WebhookEvent::IssueCreated(created) => {
            Ok(
                crate::triage::consider(ctx, &created.organization_id, &created.issue)
                    .await?
                    .unwrap_or_else(|| "ignored: no triage rule matches".into()),
            )
        }
        WebhookEvent::IssueRemoved { issue_id, .. } => {
            stop_issue_tasks(
                ctx,
                &issue_id,
                &verified.delivery_id,
                "The issue was deleted, so I've stopped working on it.",
            )
            .await
        }
        WebhookEvent::AppUserNotification(n) if n.action == "issueUnassignedFromYou" => {
            match n.issue_id() {
                Some(issue_id) => {
                    let issue_id = issue_id.to_string();
                    stop_issue_tasks(
                        ctx,
                        &issue_id,
                        &verified.delivery_id,
                        "I've been unassigned and am stopping work now.",
                    )
                    .await
                }
                None => Ok("ignored: notification without an issue".into()),
            }
        }
        WebhookEvent::OAuthRevoked {
            organization_id,
            oauth_client_id,
        } => {
            if ctx
                .linear
                .foreign_app(&organization_id, oauth_client_id.as_deref())
            {
                return Ok("ignored: another OAuth app was revoked".into());
            }
            // A revocation delivered late (a backlog, a restart) must not
            // undo an install made after it.
            let installed_after = ctx
                .store
                .list_installation_infos()
                .await?
                .iter()
                .any(|i| i.workspace_id == organization_id && i.installed_at > received_at);
            if installed_after {
                return Ok("ignored: revocation older than the current installation".into());
            }
            match ctx.store.mark_revoked(&organization_id, ctx.now_ms()).await {
                Ok(info) => {
                    let text = crate::installation_tokens::reconnect_advice(
                        &info.workspace_name,
                        info.status,
                    );
                    let key = crate::installation_tokens::reconnect_alert_key(&organization_id);
                    crate::alerts::raise(ctx, &key, &text, ctx.now_ms()).await;
                    Ok("ok: installation revoked".into())
                }
                Err(cyrus_store::StoreError::NotFound(_)) => {
                    Ok("ignored: revoked in a workspace with no installation".into())
                }
                Err(err) => Err(err.into()),
            }
        }
        WebhookEvent::PermissionChanged(change) => {
            let record = cyrus_store::PermissionChange {
                dedupe_key: verified.delivery_id.clone(),
                workspace_id: change.organization_id.clone(),
                changed_at: ctx.now_ms(),
                added_team_ids: change.added_team_ids.clone(),
                removed_team_ids: change.removed_team_ids.clone(),
            };
            ctx.store.record_permission_change(&record).await?;
            tracing::info!(
                workspace = %change.organization_id,
                added = ?change.added_team_ids,
                removed = ?change.removed_team_ids,
                "the agent's team access changed"
            );
            Ok("ok: permission change recorded".into())
        }
        WebhookEvent::Unknown { event_type, action } => {
            Ok(format!("ignored: {event_type}/{action}"))
        }
        _ => Ok("ignored: not acted on".into()),
    }
}

/// A `created` session accepted straight from the webhook handler, before
/// the delivery processor gets to it. The acknowledgement is posted to
/// Linear at once, *while* the delivery commits (Linear flags agents silent
/// for 10 s, and a commit waits for its batch's fsync) — unless a burst of
/// webhooks is in flight, which it yields to for a moment (see
/// `intake_first`). If the delivery is not stored (a copy, or a 503), the
/// acceptance is abandoned, and the post with it unless it has gone out:
/// the stored original, or the copy Linear sends after the 503,
/// acknowledges the session, with the same activity id, so Linear keeps
/// one. (A commit that failed after all its rows were written, which an
/// fsync's failure or a lost PostgreSQL connection can leave, is released
/// by the handler a moment later and acknowledged by the processor.) After
/// the commit the task is
/// created and the acknowledgement recorded as delivered
/// ([`InlineAccept::finish`]). Idempotent with the processor's later pass
/// over the same delivery, which enqueues the same activity if the direct
/// post failed; a failure here is only logged (the stored delivery is the
/// guarantee).
pub(crate) struct InlineAccept {
    delivery_id: String,
    /// When its delivery was received: what its lease was computed from.
    received_at: i64,
    /// Parses the delivery and posts its acknowledgement; `None` for a
    /// delivery that is not a session to accept here (one the agent opened
    /// itself, whose acceptance the processor decides).
    ack: tokio::task::JoinHandle<Option<Acknowledged>>,
}

/// A new session as the acknowledgement's post left it.
struct Acknowledged {
    created: Box<cyrus_linear::webhook::event::SessionCreated>,
    payload: serde_json::Value,
    /// `Some(when)` if Linear has the acknowledgement.
    acked_at: Option<i64>,
}

impl InlineAccept {
    /// Starts accepting `delivery`, a new session that arrived at
    /// `received_at` (Unix ms): its acknowledgement is on its way, or
    /// waiting for a burst of webhooks to be answered, when this returns.
    /// The payload is parsed there too, off the webhook's answer.
    pub(crate) fn begin(
        ctx: &Ctx,
        delivery: cyrus_linear::webhook::VerifiedBody,
        received_at: i64,
    ) -> InlineAccept {
        let delivery_id = delivery.delivery_id.clone();
        let ack = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let deadline = crate::intake_first::deadline(received_at, ctx.now_ms());
                ctx.intake_load.yield_until_quiet(deadline).await;
                let delivery = delivery.parse().ok()?;
                let Ok(WebhookEvent::SessionCreated(created)) = parse_event(&delivery) else {
                    return None;
                };
                if created.is_self_triggered() {
                    return None;
                }
                let sent_at = delivery.sent_at.timestamp_millis();
                let acked_at = post_acknowledgement(&ctx, &created, sent_at).await;
                Some(Acknowledged {
                    created,
                    payload: delivery.payload,
                    acked_at,
                })
            })
        };
        InlineAccept {
            delivery_id,
            received_at,
            ack,
        }
    }

    /// The delivery was not stored (a copy, or a 503): nothing is posted
    /// if the acknowledgement has not gone out yet.
    pub(crate) fn abandon(self) {
        self.ack.abort();
    }

    /// The delivery has committed: creates the task and has the delivery
    /// marked processed, by the processor's next write (see
    /// [`Handoff::processed`]) or by itself when the processor has no room
    /// (the processor need not repeat it; if it already holds the
    /// delivery, its pass changes nothing). A delivery it does not accept
    /// is freed for the processor.
    pub(crate) async fn finish(self, ctx: &Ctx, handoff: &Handoff) {
        let id = &self.delivery_id;
        let outcome = match self.ack.await.ok().flatten() {
            Some(a) => accept_created(ctx, &a.created, &a.payload, a.acked_at)
                .await
                .inspect_err(|err| {
                    tracing::warn!(delivery = %id, error = %err, "intake: early acceptance failed; the processor will retry");
                })
                .ok(),
            None => None,
        };
        let Some(outcome) = outcome else {
            // It was stored leased to this process: free it for the
            // processor.
            if let Err(err) = handoff.release(ctx, id, self.received_at).await {
                tracing::warn!(delivery = %id, error = %err, "intake: releasing a delivery failed; it is retried when its lease expires");
            }
            return;
        };
        let Err((id, outcome)) = handoff.processed(id.clone(), outcome) else {
            return;
        };
        if let Err(err) = ctx
            .store
            .mark_delivery_processed(&id, &outcome, ctx.now_ms())
            .await
        {
            tracing::warn!(delivery = %id, error = %err, "intake: marking an accepted delivery failed; the processor will repeat it");
        }
    }
}

/// Whether [`InlineAccept`] has anything to do with a delivery of this
/// type and action (a new agent session); everything else is left to the
/// processor.
pub(crate) fn accepts_inline(event_type: &str, action: &str) -> bool {
    event_type == "AgentSessionEvent" && action == "created"
}

/// Posts the acknowledgement now; `Some(when)` if Linear has it.
async fn post_acknowledgement(
    ctx: &Ctx,
    created: &cyrus_linear::webhook::event::SessionCreated,
    sent_at_ms: i64,
) -> Option<i64> {
    let linear = ctx
        .linear
        .client_or_sync(&ctx.store, &created.organization_id)
        .await?;
    let session_id = &created.session.id;
    let ack = acknowledgement(created);
    let send = crate::outbox::send(&linear, session_id, &ack);
    match tokio::time::timeout(DIRECT_ACK_AT_MOST, send).await {
        Ok(Ok(())) => {
            let now = ctx.now_ms();
            metrics::counter!("cyrus_outbox_delivered_total", "kind" => "thought").increment(1);
            metrics::histogram!("cyrus_time_to_ack_seconds")
                .record((now - sent_at_ms).max(0) as f64 / 1000.0);
            Some(now)
        }
        Ok(Err(err)) => {
            tracing::warn!(session = %session_id, error = %err, "intake: direct acknowledgement failed; the outbox will post it");
            None
        }
        Err(_) => {
            tracing::warn!(session = %session_id, "intake: Linear did not answer a direct acknowledgement within {DIRECT_ACK_AT_MOST:?}; the outbox will post it");
            None
        }
    }
}

/// The longest a direct acknowledgement waits for Linear (the client's
/// retries included) before leaving it to the outbox. The processor waits
/// for its batch's slowest post, and the batch's other deliveries, the
/// next batch and the leases of both wait with it: without a bound, a slow
/// Linear held them for a minute, past the leases' 30 s, so another
/// replica's claim took the same deliveries again. A post cut short may
/// still land; the outbox's copy has the same activity id.
const DIRECT_ACK_AT_MOST: Duration = Duration::from_secs(5);

/// How long after a batch began its deliveries' acknowledgements may still
/// be posted directly; later ones go to the outbox. A batch's runs are
/// handled one after another, and each run with a new session may wait
/// [`DIRECT_ACK_AT_MOST`] for a slow Linear, so without a bound for the
/// whole batch a batch of many short runs outlived the leases of its
/// deliveries (claimed for [`DELIVERY_LEASE`]), and another replica's
/// claim took them again. The bound leaves the last post and the
/// processor's [`LEASE_MARGIN`] inside the lease.
const DIRECT_POSTS_FOR: Duration = DELIVERY_LEASE
    .saturating_sub(LEASE_MARGIN)
    .saturating_sub(DIRECT_ACK_AT_MOST);
const _: () = assert!(
    !DIRECT_POSTS_FOR.is_zero(),
    "the lease leaves no time to post"
);

/// The acknowledgement of a new session. Built from the webhook alone, with
/// an activity id derived from the session, so the direct post and the
/// outbox's copy are one activity at Linear whichever lands first.
fn acknowledgement(created: &cyrus_linear::webhook::event::SessionCreated) -> OutboxOp {
    let issue = created.session.issue.as_ref();
    let identifier = issue.and_then(|i| i.identifier.clone()).unwrap_or_default();
    let title = issue.and_then(|i| i.title.clone()).unwrap_or_default();
    let body = if identifier.is_empty() {
        "On it — I've picked this up and am getting started.".to_string()
    } else {
        format!("On it — I've picked up {identifier} ({title}) and am getting started.")
    };
    let id = uuid::Uuid::new_v5(&ACK_ID_NAMESPACE, created.session.id.as_bytes());
    OutboxOp::activity(crate::outbox::ActivityKind::Thought, body).with_id(id.to_string())
}

/// Namespace of acknowledgement activity ids (a fixed random UUID).
const ACK_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5e1f_0c3a_9b7d_4e21_8a6f_2d4c_1b9e_7a30);

/// A new agent session: its task (one per session, one live task per
/// issue) and the acknowledgement (`acked_at`: already posted directly).
async fn accept_created(
    ctx: &Ctx,
    created: &cyrus_linear::webhook::event::SessionCreated,
    payload: &serde_json::Value,
    acked_at: Option<i64>,
) -> Outcome {
    let session = &created.session;
    let issue = session.issue.as_ref();
    let issue_id = session
        .issue_id
        .clone()
        .or_else(|| issue.map(|i| i.id.clone()))
        .unwrap_or_default();
    // Sessions our own app opened are ignored (self-trigger loops), except
    // the one an orchestration's stored hand-over of a sub-issue opened:
    // that child acts for whoever asked for the orchestration.
    let parent = if created.is_self_triggered() {
        match crate::orchestration::releasing_parent(ctx, &issue_id).await? {
            Some(parent) => Some(parent),
            None => return Ok("ignored: session created by the agent itself".into()),
        }
    } else {
        None
    };
    // One active run per issue: a second session on an issue that is
    // already being worked on becomes a follow-up to the live task — once
    // its requester passes the access policy (the new task's first step).
    // The issue is held from this read until the task is stored, so a
    // session accepted at the same moment sees this one's task.
    let issue_held = ctx.issue_gate.enter(&issue_id).await;
    let now = ctx.now_ms();
    let merged_into = ctx
        .store
        .find_active_task_for_issue(&issue_id)
        .await?
        .filter(|t| t.agent_session_id != session.id)
        .map(|live| live.id);
    let mut data = json!({
        "prompt_context": created.prompt_context,
        "guidance": created.guidance.iter().map(|g| g.body.clone()).collect::<Vec<_>>(),
        "mention": created.mention_text(),
        "app_user_id": created.app_user_id,
        "merged_into": merged_into,
        "requested_by": session.creator_id,
        "requested_by_email": session.creator.as_ref().and_then(|c| c.email.clone()),
    });
    if let Some(parent) = &parent {
        let from = crate::task_data::TaskData::from_value(&parent.data);
        data["requested_by"] = json!(from.requested_by);
        data["requested_by_email"] = json!(from.requested_by_email);
        data["triage_rule"] = json!(from.triage_rule);
        data["orchestration_parent"] = json!(parent.id);
    }
    let new = NewTask {
        agent_session_id: session.id.clone(),
        issue_id,
        issue_identifier: issue.and_then(|i| i.identifier.clone()).unwrap_or_default(),
        organization_id: created.organization_id.clone(),
        state: cyrus_core::lifecycle::TaskState::Received,
        // Refined from the issue query when the task is prepared.
        priority: payload["agentSession"]["issue"]["priority"]
            .as_f64()
            .map(|p| p as i64)
            .unwrap_or(0),
        created_at: now,
        run_at: now,
        max_attempts: MAX_TASK_ATTEMPTS,
        data,
    };
    // The acknowledgement is stored with the task (before it, in one
    // transaction shared with other new sessions), so nothing the scheduler
    // enqueues for the task can be ahead of it in the session's outbox
    // order.
    let ack = crate::outbox::outbox_row(
        &session.id,
        format!("ack:{}", session.id),
        &acknowledgement(created),
        acked_at,
        now,
    );
    let accepted = ctx.store.accept_session(ack, new, now).await?;
    drop(issue_held);
    if acked_at.is_none() {
        ctx.wake.outbox.notify_one();
    }
    ctx.wake.scheduler.notify_one();
    Ok(if accepted.task_created {
        "ok: task created".into()
    } else {
        "ok: task already existed".into()
    })
}

/// Late outcomes for model experiments: the issue reached a completed
/// state, or left it again (reopened).
async fn record_issue_outcome(
    ctx: &Ctx,
    updated: &cyrus_linear::webhook::event::IssueUpdated,
) -> Result<(), IntakeError> {
    let kind = updated.issue.state.as_ref().and_then(|s| s.kind.as_deref());
    let now = ctx.now_ms();
    match kind {
        Some("completed") => {
            ctx.store
                .mark_experiment_issue_completed(&updated.issue.id, now)
                .await?;
        }
        Some("canceled" | "duplicate") | None => {}
        Some(_) => {
            ctx.store
                .mark_experiment_issue_reopened(&updated.issue.id, now)
                .await?;
        }
    }
    Ok(())
}

/// A follow-up from someone the access policy does not allow is not passed
/// on; they get a `thought` saying so. (A stop is honoured from anyone in
/// the session: it spends nothing.)
async fn refuse_prompt(
    ctx: &Ctx,
    task: &cyrus_store::Task,
    prompted: &cyrus_linear::webhook::event::SessionPrompted,
) -> Result<Option<String>, IntakeError> {
    let Some(linear) = ctx
        .linear
        .client_or_sync(&ctx.store, &task.organization_id)
        .await
    else {
        // Undecidable now (the workspace is not connected on this replica
        // yet): retried, never let through.
        return Err(IntakeError::Store(cyrus_store::StoreError::NotFound(
            format!(
                "a Linear client for workspace {} (to check who prompted)",
                task.organization_id
            ),
        )));
    };
    let Some(user) = &prompted.user else {
        let reason = "the message does not say who wrote it";
        ctx.enqueue(
            &task.agent_session_id,
            format!("refused:{}", prompted.activity_id),
            OutboxOp::activity(
                crate::outbox::ActivityKind::Thought,
                crate::access::refusal(ctx, reason),
            ),
        )
        .await?;
        return Ok(Some(format!("refused: prompt without an author: {reason}")));
    };
    let data = crate::task_data::TaskData::from_value(&task.data);
    let requester = crate::access::Requester {
        id: &user.id,
        email: user.email.as_deref(),
    };
    let decision = crate::access::decide(
        ctx,
        &linear,
        &task.organization_id,
        &requester,
        data.repository.as_deref(),
    )
    .await?;
    let cyrus_core::access::AccessDecision::Refused(reason) = decision else {
        return Ok(None);
    };
    metrics::counter!("cyrus_access_refused_total").increment(1);
    let actor = user.email.clone().unwrap_or_else(|| user.id.clone());
    crate::audit::task(
        ctx,
        task,
        cyrus_store::AuditKind::PromptRefused,
        &prompted.activity_id,
        Some(&actor),
        &reason,
        None,
    )
    .await?;
    ctx.enqueue(
        &task.agent_session_id,
        format!("refused:{}", prompted.activity_id),
        OutboxOp::activity(
            crate::outbox::ActivityKind::Thought,
            crate::access::refusal(ctx, &reason),
        ),
    )
    .await?;
    Ok(Some(format!("refused: prompt from {actor}: {reason}")))
}

async fn stop_issue_tasks(ctx: &Ctx, issue_id: &str, delivery_id: &str, reason: &str) -> Outcome {
    let filter = cyrus_store::TaskFilter {
        issue_id: Some(issue_id.to_string()),
        active_only: true,
        ..Default::default()
    };
    let tasks = ctx.store.list_tasks(&filter).await?;
    for task in &tasks {
        crate::requests::request_stop(
            ctx,
            task,
            &format!("stop:{delivery_id}:{}", task.id),
            reason,
            "linear",
        )
        .await?;
    }
    Ok(format!("ok: stop requested for {} task(s)", tasks.len()))
}

/// A title or description edit reaches a live run as a follow-up prompt
/// (Codegen has no mid-run input: it is delivered with resume when the run
/// ends or pauses). Tasks whose run has not started yet read the issue
/// fresh anyway.
async fn forward_edit(
    ctx: &Ctx,
    updated: &cyrus_linear::webhook::event::IssueUpdated,
    delivery_id: &str,
) -> Result<(), cyrus_store::StoreError> {
    use cyrus_core::lifecycle::TaskState;
    let filter = cyrus_store::TaskFilter {
        issue_id: Some(updated.issue.id.clone()),
        active_only: true,
        ..Default::default()
    };
    let mut text = String::from("The issue was edited in Linear while you worked on it.");
    if updated.title_changed() {
        text.push_str(&format!(
            "\n\nNew title: {}",
            updated.issue.title.clone().unwrap_or_default()
        ));
    }
    if updated.description_changed() {
        text.push_str(&format!(
            "\n\nNew description:\n{}",
            updated.issue.description.clone().unwrap_or_default()
        ));
    }
    let now = ctx.now_ms();
    for task in ctx.store.list_tasks(&filter).await? {
        let live = task.state == TaskState::Running || task.state == TaskState::AwaitingInput;
        if live {
            ctx.store
                .add_followup(
                    &task.id,
                    &format!("edit:{delivery_id}:{}", task.id),
                    &text,
                    now,
                )
                .await?;
            if task.state == TaskState::AwaitingInput {
                ctx.store.wake_task(&task.id, now).await?;
            }
        }
    }
    Ok(())
}

fn agent_user_id(ctx: &Ctx, organization_id: &str) -> Option<String> {
    ctx.linear.app_user_id(organization_id)
}

/// `stop`, `stop session`, `stop working` (any case, optional punctuation).
pub fn is_stop_message(text: &str) -> bool {
    let t = text
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_lowercase();
    matches!(t.as_str(), "stop" | "stop session" | "stop working")
}

#[cfg(test)]
mod tests {
    use super::{
        ISSUE_FIELDS_ACTED_ON, handoff_of, into_delivery, is_edit_alone, is_stop_message,
        lease_expires_at, prune_in_chunks, runs, settled_on_arrival,
    };
    use std::sync::atomic::Ordering;

    fn delivery(id: &str) -> cyrus_store::NewDelivery {
        cyrus_store::NewDelivery {
            delivery_id: id.into(),
            organization_id: "org".into(),
            event_type: "Issue".into(),
            action: Some("update".into()),
            body: r#"{"type":"Issue","n":1}"#.into(),
            received_at: 7,
            arrival: cyrus_store::Arrival::Unclaimed,
        }
    }

    #[tokio::test]
    async fn pruning_runs_chunk_by_chunk_up_to_its_cap() {
        let store = cyrus_store::Store::connect("sqlite::memory:")
            .await
            .unwrap();
        let ids: Vec<String> = (0..7).map(|i| format!("d{i}")).collect();
        let rows = ids.iter().map(|id| delivery(id)).collect();
        store.insert_deliveries(rows).await.unwrap();
        let done: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), "ok".into())).collect();
        store.mark_deliveries_processed(&done, 10).await.unwrap();
        // Chunks of 2, at most 3 a pass: 6 of the 7, then the last one.
        assert_eq!(prune_in_chunks(&store, 8, 2, 3).await.unwrap(), 6);
        assert_eq!(prune_in_chunks(&store, 8, 2, 3).await.unwrap(), 1);
        assert_eq!(prune_in_chunks(&store, 8, 2, 3).await.unwrap(), 0);
        assert_eq!(store.delivery_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_full_hand_off_sends_the_processor_to_the_store() {
        let (handoff, mut handed) = handoff_of("me-intake".into(), 1);
        let lease = handoff.lease(1_000);
        assert_eq!(
            (lease.owner.as_str(), lease.expires_at),
            ("me-intake", 31_000)
        );
        let slot = handoff.reserve().expect("room for one");
        assert!(handoff.reserve().is_none(), "no room for a second");
        // Only a committed unleased delivery sends the processor to the
        // store (a flag set before the commit could be cleared by a claim
        // that ran before the row existed).
        assert!(!handed.stored_unleased.load(Ordering::Relaxed));
        handoff.stored_unleased();
        assert!(handed.stored_unleased.load(Ordering::Relaxed));
        let mut leased = delivery("d1");
        leased.arrival = cyrus_store::Arrival::Leased(lease.clone());
        slot.send(leased);
        let got = handed.rx.recv().await.unwrap();
        assert_eq!(lease_expires_at(&got), 31_000);
        let got = into_delivery(got);
        assert_eq!(
            (got.delivery_id.as_str(), got.attempts, got.received_at),
            ("d1", 1, 7)
        );
        assert_eq!(got.payload["n"], 1);
        // A slot given back (the delivery was a duplicate) frees the room.
        drop(handoff.reserve().expect("room again"));
        assert!(handoff.reserve().is_some());
    }

    #[test]
    fn recognises_stop_messages_only() {
        for yes in ["stop", " Stop ", "STOP!", "stop session", "stop working."] {
            assert!(is_stop_message(yes), "{yes}");
        }
        for no in ["stop the flaky test", "don't stop", "", "stopped"] {
            assert!(!is_stop_message(no), "{no}");
        }
    }

    /// Only an `Issue` update is settled on arrival, and only when it
    /// names its changed fields and none of them is one the processor
    /// acts on.
    #[test]
    fn only_updates_that_change_no_field_acted_on_are_settled_on_arrival() {
        let fields = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let settled = |event: &str, action: &str, changed: Option<Vec<String>>| {
            settled_on_arrival(event, action, changed.as_deref()).is_some()
        };
        assert!(settled(
            "Issue",
            "update",
            Some(fields(&["priority", "updatedAt"]))
        ));
        assert!(
            settled("Issue", "update", Some(Vec::new())),
            "no updatedFrom"
        );
        for field in ISSUE_FIELDS_ACTED_ON {
            let changed = Some(fields(&["priority", field]));
            assert!(!settled("Issue", "update", changed), "{field}");
        }
        assert!(!settled("Issue", "update", None), "fields not known");
        for (event, action) in [
            ("Issue", "create"),
            ("Issue", "remove"),
            ("Comment", "update"),
            ("AgentSessionEvent", "created"),
            ("AppUserNotification", "issueUnassignedFromYou"),
        ] {
            assert!(
                !settled(event, action, Some(Vec::new())),
                "{event}/{action}"
            );
        }
    }

    /// Consecutive deliveries about different issues form one run; one
    /// about an issue already in the run, or about no issue, starts anew.
    #[test]
    fn a_batch_runs_concurrently_only_across_different_issues() {
        let stored = |id: &str, event_type: &str, action: &str, payload| cyrus_store::Delivery {
            delivery_id: id.into(),
            organization_id: "org".into(),
            event_type: event_type.into(),
            action: Some(action.into()),
            payload,
            received_at: 1,
            attempts: 1,
            processed_at: None,
            outcome: None,
        };
        let edit = |id: &str, issue: &str| {
            stored(
                id,
                "Issue",
                "update",
                serde_json::json!({"data": {"id": issue}}),
            )
        };
        let session = |id: &str, issue: &str| {
            let payload = serde_json::json!({"agentSession": {"id": id, "issueId": issue}});
            stored(id, "AgentSessionEvent", "created", payload)
        };
        let prompt = |id: &str| {
            let payload = serde_json::json!({"agentSession": {"id": "s", "issueId": "A"}});
            stored(id, "AgentSessionEvent", "prompted", payload)
        };
        let batch = vec![
            edit("1", "A"),
            session("2", "B"),
            edit("3", "C"),
            edit("4", "A"),
            prompt("5"),
            edit("6", "D"),
            edit("7", "E"),
            edit("8", ""),
            edit("9", "D"),
        ];
        let ids: Vec<Vec<String>> = runs(batch)
            .into_iter()
            .map(|run| run.into_iter().map(|d| d.delivery_id).collect())
            .collect();
        let expected: Vec<Vec<&str>> = vec![
            vec!["1", "2", "3"],
            vec!["4"],
            vec!["5"],
            vec!["6", "7"],
            vec!["8"],
            vec!["9"],
        ];
        assert_eq!(ids, expected);
    }

    /// Only an update that changes nothing the processor acts on but the
    /// title or the description may wait for a burst: one that also moves
    /// the state or the delegate is a stop or an unassignment.
    #[test]
    fn an_edit_beside_a_stop_is_not_an_edit_alone() {
        let update = |updated_from: &str| {
            into_delivery(cyrus_store::NewDelivery {
                body: format!(
                    r#"{{"type":"Issue","action":"update","data":{{"id":"i"}},"updatedFrom":{updated_from}}}"#
                ),
                ..delivery("d")
            })
        };
        assert!(is_edit_alone(&update(r#"{"title":"Old"}"#)));
        assert!(is_edit_alone(&update(
            r#"{"description":"Old","priority":2}"#
        )));
        assert!(!is_edit_alone(&update(r#"{"priority":2}"#)));
        for other in ["stateId", "delegateId", "labelIds"] {
            let both = update(&format!(r#"{{"title":"Old","{other}":"x"}}"#));
            assert!(!is_edit_alone(&both), "{other}");
        }
    }
}
