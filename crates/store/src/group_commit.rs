//! Group commit for webhook deliveries: concurrent inserts gathered into one
//! transaction, each caller answered only after the transaction holding its
//! row committed.
//!
//! One task per store (started on first use) owns the writing. A caller
//! queues its row and waits; the task takes everything queued (up to
//! [`MAX_BATCH`] rows), writes it in one transaction and answers every
//! caller of that batch. Nothing is held back on purpose: rows arriving
//! while a batch commits form the next one, so an idle store commits a lone
//! delivery at once and a busy one commits hundreds per fsync. The wait is
//! therefore bounded by one commit plus the writer's turn.
//!
//! On SQLite the batch holds the one writer connection for one transaction,
//! so a burst of deliveries is a single entry in the writer's queue rather
//! than one entry per delivery interleaved with the scheduler's writes. With
//! [`SqliteSync::Full`] the batch's callers are answered only once the
//! write-ahead log holding its commit is fsynced, so a 200 survives a power
//! cut; the fsync runs on a thread of its own while the writer commits the
//! next batch (see [`Syncer`]). On PostgreSQL a batch is one statement
//! (`INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING RETURNING`), one
//! round trip.
//!
//! The writing task, not the caller, runs the transaction: a caller that
//! goes away (its HTTP connection closed) never cancels a commit others are
//! waiting for.

use std::collections::{HashMap, HashSet};

use sqlx::{PgPool, QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::batch_queue::{self, BatchQueue, Failure};
use crate::connect::Backend;
use crate::{Insert, NewDelivery, Result};

/// Most callers in one transaction (a caller usually brings one row).
const MAX_BATCH: usize = 512;
/// Rows per SQLite `INSERT` statement: a few statement shapes, all cached.
const SQLITE_CHUNK: usize = 32;
/// Deliveries that may wait for the writer; past this the store answers
/// [`crate::StoreError::Overloaded`] at once (the webhook answers 503 and Linear
/// retries) instead of queueing memory without bound.
const QUEUE: usize = 4096;

/// What a commit backing a delivery's 200 guarantees on SQLite
/// (`store.sqliteSynchronous`). PostgreSQL's durability is the server's own
/// (`synchronous_commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// The batch's commit is fsynced before anyone is answered: a delivery
    /// answered 200 survives a power cut.
    #[default]
    Full,
    /// No fsync at commit (WAL, `synchronous=NORMAL`): survives a crash of
    /// the process, but a power cut may lose the last deliveries answered.
    Normal,
}

/// A row ready to bind: the delivery as the caller gave it (its body is
/// the received text, bound without another copy).
type Row = NewDelivery;

type Answer = batch_queue::Answer<Vec<Insert>>;

/// One caller's rows, answered together.
struct Job {
    rows: Vec<Row>,
    answer: oneshot::Sender<Answer>,
}

/// The queue into the writing task; shared by the clones of one store.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: BatchQueue<Job>,
    sync: SqliteSync,
    /// SQLite in memory: no file, nothing to fsync.
    memory: bool,
}

impl GroupCommit {
    pub(crate) fn new(sync: SqliteSync, memory: bool) -> GroupCommit {
        GroupCommit {
            queue: BatchQueue::new(QUEUE, "deliveries"),
            sync,
            memory,
        }
    }

    pub(crate) fn sync(&self) -> SqliteSync {
        self.sync
    }

    /// The same store with another [`SqliteSync`] (and a writer of its own).
    pub(crate) fn with_sync(&self, sync: SqliteSync) -> GroupCommit {
        GroupCommit::new(sync, self.memory)
    }

    /// Queues `rows` (kept together in one batch) and waits for that batch
    /// to commit; one answer per row, in order.
    pub(crate) async fn insert(
        &self,
        backend: &Backend,
        rows: Vec<NewDelivery>,
    ) -> Result<Vec<Insert>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let fsync = self.sync == SqliteSync::Full && !self.memory;
        self.queue
            .submit(
                |answer| Job { rows, answer },
                |rx| Writer::run(backend.clone(), fsync, rx),
            )
            .await
    }
}

struct Writer {
    backend: Backend,
    /// SQLite with [`SqliteSync::Full`] on a file: makes each committed
    /// batch durable before its callers are answered.
    syncer: Option<Syncer>,
}

/// The write-ahead log of the database `pool` has open, as SQLite names it
/// (the main database's full path, symbolic links resolved, plus `-wal`):
/// the file its commits go to, whatever path the store was given.
async fn wal_of(pool: &SqlitePool) -> std::path::PathBuf {
    let named: std::result::Result<(String,), sqlx::Error> =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await;
    let db = match named {
        Ok((file,)) if !file.is_empty() => std::path::PathBuf::from(file),
        other => {
            let given = pool.connect_options().get_filename().to_path_buf();
            tracing::warn!(result = ?other.map(|(f,)| f), path = %given.display(), "store: SQLite did not name its database file; syncing the log beside the path given");
            given
        }
    };
    let mut wal = db.into_os_string();
    wal.push("-wal");
    wal.into()
}

/// Answers of a committed batch, waiting for the log to reach the disk.
type Committed = Vec<(oneshot::Sender<Answer>, Answer)>;

/// Makes committed batches durable on a thread of its own, so that the
/// writer commits the next batch while the disk flushes the last one.
///
/// A batch commits with `synchronous=NORMAL`: its frames, commit marker
/// included, are in the write-ahead log but perhaps not yet on the disk.
/// This thread then fsyncs the log file and only after that answers the
/// batch's callers, so every 200 stands for a commit that is on the disk,
/// which is what `synchronous=FULL` would give, but without holding the
/// writer through the fsync. One fsync covers every batch committed before
/// it began. Anything SQLite itself writes keeps NORMAL's guarantees: a
/// power cut loses at most commits not yet answered, never one answered,
/// and never leaves the database inconsistent; the log is only rewritten
/// from its start once a checkpoint has copied it into the database file
/// and synced that.
struct Syncer {
    queue: std::sync::mpsc::Sender<(Committed, tokio::sync::OwnedSemaphorePermit)>,
    /// Committed batches waiting for the log to be on the disk, at most
    /// [`SYNCS_WAITING`]: a permit goes with each and comes back once its
    /// callers are answered. Past it the writer waits, its queue fills and
    /// callers are told [`crate::StoreError::Overloaded`] (503): a disk
    /// that stops answering must not hold an unbounded number of
    /// committed batches, each with its callers (and their bodies, in the
    /// handlers) waiting.
    room: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Committed batches that may wait for the log's fsync at once. Each
/// fsync answers every batch that was waiting, so under load one or two
/// wait; this many means the disk has stopped keeping up.
const SYNCS_WAITING: usize = 64;

impl Syncer {
    fn start(wal: std::path::PathBuf) -> Syncer {
        let (queue, committed) =
            std::sync::mpsc::channel::<(Committed, tokio::sync::OwnedSemaphorePermit)>();
        std::thread::Builder::new()
            .name("cyrus-wal-sync".into())
            .spawn(move || {
                // After a failed fsync the kernel may have dropped the
                // pages it could not write and report the next fsync as a
                // success, so nothing committed since can be vouched for:
                // every later batch is answered as failed (503, Linear
                // retries) until the worker is restarted and SQLite reads
                // the log back from the disk.
                let mut failed: Option<Failure> = None;
                // Ends when the writer (the only sender) is gone.
                while let Ok(first) = committed.recv() {
                    let (ready, permits): (Vec<Committed>, Vec<_>) =
                        std::iter::once(first).chain(committed.try_iter()).unzip();
                    // Opened for each sync rather than held: a descriptor
                    // kept across a log SQLite deleted and made again would
                    // sync the old file and vouch for nothing.
                    if failed.is_none()
                        && let Err(err) = std::fs::File::open(&wal).and_then(|f| f.sync_data())
                    {
                        tracing::error!(error = %err, wal = %wal.display(), "store: syncing the write-ahead log failed; webhooks are answered 503 until the worker is restarted");
                        failed = Some(Failure::new(format!(
                            "syncing the write-ahead log failed ({err}); restart the worker"
                        )));
                    }
                    for (answer, result) in ready.into_iter().flatten() {
                        let result = match &failed {
                            None => result,
                            Some(why) => Err(why.clone()),
                        };
                        let _ = answer.send(result);
                    }
                    drop(permits);
                }
            })
            .expect("starting the write-ahead log syncer thread");
        Syncer {
            queue,
            room: std::sync::Arc::new(tokio::sync::Semaphore::new(SYNCS_WAITING)),
        }
    }

    /// Hands a committed batch's answers over to be sent once the log is
    /// on the disk; waits while [`SYNCS_WAITING`] batches already do.
    /// Answers them back if the syncer has stopped.
    async fn hand_over(&self, answers: Committed) -> Result<(), Committed> {
        let Ok(permit) = self.room.clone().acquire_owned().await else {
            return Err(answers);
        };
        self.queue
            .send((answers, permit))
            .map_err(|std::sync::mpsc::SendError((answers, _))| answers)
    }
}

impl Writer {
    /// Writes what `rx` brings until every sender is gone; `fsync`: SQLite
    /// batches are answered only once the log is on the disk.
    async fn run(backend: Backend, fsync: bool, mut rx: mpsc::Receiver<Job>) {
        let syncer = match &backend {
            Backend::Sqlite(pool) if fsync => Some(Syncer::start(wal_of(pool).await)),
            _ => None,
        };
        let writer = Writer { backend, syncer };
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        // Ends when every store handle (and so every sender) is gone.
        while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
            let batch = std::mem::take(&mut jobs);
            metrics::histogram!("cyrus_store_delivery_batch_callers").record(batch.len() as f64);
            tracing::trace!(
                rows = batch.len(),
                "store: committing a batch of deliveries"
            );
            writer.commit(batch).await;
        }
    }

    /// Commits one batch and answers its callers. A batch the database
    /// refuses for what one row holds (a value PostgreSQL's `jsonb` cannot
    /// take, a constraint) is written again one caller at a time, so that
    /// row fails alone instead of failing every delivery it was batched
    /// with, at every retry.
    async fn commit(&self, jobs: Vec<Job>) {
        match self.write(&jobs).await {
            Err(err) if jobs.len() > 1 && refused_for_its_rows(&self.backend, &err) => {
                tracing::warn!(error = %err, callers = jobs.len(), "store: a batch of deliveries was refused; writing its callers one at a time");
                for job in jobs {
                    let job = vec![job];
                    let written = self.write(&job).await;
                    self.answer(job, written).await;
                }
            }
            written => self.answer(jobs, written).await,
        }
    }

    /// Writes the batch's rows, a delivery id seen twice written once;
    /// returns the ids that were new.
    async fn write(&self, jobs: &[Job]) -> Result<HashSet<String>> {
        let mut seen = HashSet::with_capacity(jobs.len());
        let unique: Vec<&Row> = jobs
            .iter()
            .flat_map(|job| &job.rows)
            .filter(|row| seen.insert(row.delivery_id.as_str()))
            .collect();
        let written = match &self.backend {
            Backend::Sqlite(pool) => self.write_sqlite(pool, &unique).await,
            Backend::Postgres(pool) => write_postgres(pool, &unique).await,
        };
        if let Err(e) = &written {
            tracing::error!(error = %e, rows = unique.len(), "store: a batch of deliveries failed");
        }
        written
    }

    /// Answers each caller of `jobs` for its rows: a row is `Inserted` if
    /// it was new and the first of its id in the batch, else `Duplicate`.
    /// With a syncer, the answers wait for the log to be on the disk.
    async fn answer(&self, jobs: Vec<Job>, written: Result<HashSet<String>>) {
        let mut outcome = written.map_err(|e| Failure::new(e.to_string()));
        let answers: Vec<Answer> = jobs
            .iter()
            .map(|job| match &mut outcome {
                // Taken out as it is answered: a later copy of the id is a
                // duplicate.
                Ok(inserted) => Ok(job
                    .rows
                    .iter()
                    .map(|row| match inserted.remove(row.delivery_id.as_str()) {
                        true => Insert::Inserted,
                        false => Insert::Duplicate,
                    })
                    .collect()),
                Err(failure) => Err(failure.clone()),
            })
            .collect();
        let answers: Committed = jobs
            .into_iter()
            .map(|job| job.answer)
            .zip(answers)
            .collect();
        let answers = match (&self.syncer, &outcome) {
            // Answered once the log is on the disk.
            (Some(syncer), Ok(_)) => match syncer.hand_over(answers).await {
                Ok(()) => return,
                Err(answers) => answers
                    .into_iter()
                    .map(|(answer, _)| {
                        let stopped = Failure::new("the log syncer has stopped");
                        (answer, Err(stopped))
                    })
                    .collect(),
            },
            _ => answers,
        };
        for (answer, result) in answers {
            // A caller that went away needs no answer; its rows stand.
            let _ = answer.send(result);
        }
    }

    /// One `BEGIN IMMEDIATE … COMMIT` on the writer connection; returns the
    /// ids that were new.
    async fn write_sqlite(&self, pool: &SqlitePool, rows: &[&Row]) -> Result<HashSet<String>> {
        // NORMAL, as every write on this connection: the syncer, if any,
        // makes the commit durable (see [`Syncer`]). A transaction dropped
        // on an error is rolled back; the callers are told the batch failed
        // and answer 503, so Linear sends it again.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut inserted = HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(SQLITE_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO deliveries (delivery_id, organization_id, event_type, action, received_at, \
                 lease_owner, lease_expires_at, attempts, processed_at, outcome) ",
            );
            q.push_values(chunk, |mut b, r| {
                let lease = r.arrival.lease();
                let outcome = r.arrival.outcome();
                b.push_bind(r.delivery_id.as_str())
                    .push_bind(r.organization_id.as_str())
                    .push_bind(r.event_type.as_str())
                    .push_bind(r.action.as_deref())
                    .push_bind(r.received_at)
                    .push_bind(lease.map(|l| l.owner.as_str()))
                    .push_bind(lease.map(|l| l.expires_at))
                    .push_bind(i64::from(lease.is_some()))
                    .push_bind(outcome.map(|_| r.received_at))
                    .push_bind(outcome);
            });
            q.push(" ON CONFLICT (delivery_id) DO NOTHING RETURNING seq, delivery_id");
            let new: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
            // Bodies of the new rows only (a duplicate keeps the
            // first), under the row's sequence number.
            if !new.is_empty() {
                let body: HashMap<&str, &str> = chunk
                    .iter()
                    .map(|r| (r.delivery_id.as_str(), r.body.as_str()))
                    .collect();
                let mut q: QueryBuilder<Sqlite> =
                    // OR REPLACE: a body left by a deleted delivery
                    // whose `seq` SQLite hands out again is not this
                    // one's.
                    QueryBuilder::new("INSERT OR REPLACE INTO delivery_bodies (seq, payload) ");
                q.push_values(&new, |mut b, (seq, id)| {
                    b.push_bind(*seq)
                        .push_bind(body.get(id.as_str()).copied().unwrap_or_default());
                });
                q.build().execute(&mut *tx).await?;
            }
            let new = new.into_iter().map(|(_, id)| id);
            inserted.extend(new);
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// One statement, one round trip: the batch as arrays, unnested; the
/// bodies of the rows that were new go to `delivery_payloads` in the same
/// statement.
async fn write_postgres(pool: &PgPool, rows: &[&Row]) -> Result<HashSet<String>> {
    // In key order, so that two replicas' batches take their unique-key
    // locks in the same order and never deadlock (the answers come from
    // the ids RETURNING gives, whatever the order).
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
    let ids: Vec<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
    let orgs: Vec<&str> = rows.iter().map(|r| r.organization_id.as_str()).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    let actions: Vec<Option<&str>> = rows.iter().map(|r| r.action.as_deref()).collect();
    let storable: Vec<std::borrow::Cow<'_, str>> =
        rows.iter().map(|r| without_nul_escapes(&r.body)).collect();
    let payloads: Vec<&str> = storable.iter().map(|p| p.as_ref()).collect();
    let received: Vec<i64> = rows.iter().map(|r| r.received_at).collect();
    let owners: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.arrival.lease().map(|l| l.owner.as_str()))
        .collect();
    let expiries: Vec<Option<i64>> = rows
        .iter()
        .map(|r| r.arrival.lease().map(|l| l.expires_at))
        .collect();
    let outcomes: Vec<Option<&str>> = rows.iter().map(|r| r.arrival.outcome()).collect();
    let inserted: Vec<(String,)> = sqlx::query_as(
        "WITH b AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                                  $7::text[], $8::int8[], $9::text[])
                 AS b(d, o, e, a, p, r, lo, le, oc)
         ), new AS (
             INSERT INTO deliveries (delivery_id, organization_id, event_type, action, received_at,
                                     lease_owner, lease_expires_at, attempts, processed_at, outcome)
             SELECT d, o, e, a, r, lo, le, CASE WHEN lo IS NULL THEN 0 ELSE 1 END,
                    CASE WHEN oc IS NULL THEN NULL ELSE r END, oc FROM b
             ON CONFLICT (delivery_id) DO NOTHING
             RETURNING delivery_id
         ), bodies AS (
             INSERT INTO delivery_payloads (delivery_id, payload)
             SELECT b.d, b.p::jsonb FROM b JOIN new ON new.delivery_id = b.d
         )
         SELECT delivery_id FROM new",
    )
    .bind(&ids)
    .bind(&orgs)
    .bind(&types)
    .bind(&actions)
    .bind(&payloads)
    .bind(&received)
    .bind(&owners)
    .bind(&expiries)
    .bind(&outcomes)
    .fetch_all(pool)
    .await?;
    Ok(inserted.into_iter().map(|(id,)| id).collect())
}

/// Whether the database refused a write for what its rows hold (a data
/// exception or a constraint: PostgreSQL's classes 22 and 23, SQLite's
/// `TOOBIG`, `CONSTRAINT` and `MISMATCH`), rather than failing as a whole
/// (a lost connection, a busy database), where writing the rows one by one
/// would only fail as many times more.
fn refused_for_its_rows(backend: &Backend, err: &crate::StoreError) -> bool {
    let crate::StoreError::Database(sqlx::Error::Database(db)) = err else {
        return false;
    };
    let Some(code) = db.code() else { return false };
    match backend {
        // The extended result code; its low byte is the primary one.
        Backend::Sqlite(_) => code
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, 18..=20)),
        Backend::Postgres(_) => code.starts_with("22") || code.starts_with("23"),
    }
}

/// `body` with each JSON `\u0000` escape replaced by `\ufffd` (the
/// replacement character): PostgreSQL's `jsonb` cannot hold a NUL and
/// refuses the whole value, and with it every delivery of its batch. The
/// signature was checked on the body as received; what is stored differs
/// only there. Borrowed unchanged when there is none (almost always).
fn without_nul_escapes(body: &str) -> std::borrow::Cow<'_, str> {
    if !body.contains("\\u0000") {
        return std::borrow::Cow::Borrowed(body);
    }
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            // An escape: `\u0000` is replaced; any other (`\\` included)
            // is skipped whole, so an escaped backslash followed by
            // `u0000` stays text.
            if bytes[i + 1..].starts_with(b"u0000") {
                out.push_str(&body[copied..i]);
                out.push_str("\\ufffd");
                copied = i + 6;
                i += 6;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&body[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only an unescaped `\u0000` is replaced; text that merely looks
    /// like one (an escaped backslash before `u0000`) is kept.
    #[test]
    fn nul_escapes_are_replaced_and_nothing_else() {
        let plain = r#"{"a":"b\nc\u0001"}"#;
        assert!(matches!(
            without_nul_escapes(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            without_nul_escapes(r#"{"a":"x\u0000y\u0000","b":"\\u0000","c":"\"\u0000"}"#),
            r#"{"a":"x\ufffdy\ufffd","b":"\\u0000","c":"\"\ufffd"}"#
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&without_nul_escapes(r#"{"a":"\u0000"}"#)).unwrap();
        assert_eq!(parsed["a"], "\u{fffd}");
        assert_eq!(without_nul_escapes(r#"{"t":"\"}"#), r#"{"t":"\"}"#);
    }

    /// A committed batch of one caller whose row was new, and where that
    /// caller hears its answer.
    fn one_caller() -> (Committed, oneshot::Receiver<Answer>) {
        let (answer, answered) = oneshot::channel();
        (vec![(answer, Ok(vec![Insert::Inserted]))], answered)
    }

    /// Sends one committed batch of one caller through `syncer`; answers
    /// what that caller is told.
    async fn through(syncer: &Syncer) -> Answer {
        let (committed, answered) = one_caller();
        syncer.hand_over(committed).await.unwrap();
        answered.await.unwrap()
    }

    /// A disk that stops answering (here: the syncer opens the log by
    /// name and finds a FIFO nobody writes to, so it waits forever) does
    /// not gather committed batches without bound: past
    /// [`SYNCS_WAITING`] the writer's hand-over waits, so the writer takes
    /// no more batches, its bounded queue fills, and further deliveries are
    /// answered `Overloaded` at once (503, Linear retries).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_that_stops_answering_stops_the_writer_after_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("cyrus.db-wal");
        let made = std::process::Command::new("mkfifo").arg(&wal).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "mkfifo makes the stand-in log"
        );
        let syncer = Syncer::start(wal.clone());
        let mut waiting = Vec::new();
        for _ in 0..SYNCS_WAITING {
            let (committed, answered) = one_caller();
            let handed = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                syncer.hand_over(committed),
            )
            .await;
            assert!(matches!(handed, Ok(Ok(()))), "room for {SYNCS_WAITING}");
            waiting.push(answered);
        }
        let (committed, _answered) = one_caller();
        let one_more = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            syncer.hand_over(committed),
        )
        .await;
        assert!(one_more.is_err(), "the writer waits past {SYNCS_WAITING}");
        assert!(
            waiting.iter_mut().all(|w| w.try_recv().is_err()),
            "nothing is answered before the log is synced"
        );
        // Let the syncer's open return (its fsync of a FIFO then fails).
        let _unblock = std::fs::OpenOptions::new().write(true).open(&wal);
    }

    /// A log that cannot be synced (here: it is not there) fails the
    /// batch, and every batch after it even once syncing would succeed
    /// again: after a failed fsync the kernel may have dropped the pages
    /// it could not write, so a later success vouches for nothing.
    #[tokio::test]
    async fn a_failed_sync_fails_its_batch_and_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("cyrus.db-wal");
        std::fs::write(&wal, b"log").unwrap();
        let syncer = Syncer::start(wal.clone());
        assert_eq!(through(&syncer).await.unwrap(), vec![Insert::Inserted]);

        std::fs::remove_file(&wal).unwrap();
        let failed = through(&syncer).await.unwrap_err();
        assert!(
            failed.0.contains("syncing the write-ahead log failed"),
            "{failed:?}"
        );

        std::fs::write(&wal, b"log again").unwrap();
        let later = through(&syncer).await.unwrap_err();
        assert!(later.0.contains("restart the worker"), "{later:?}");
    }
}
