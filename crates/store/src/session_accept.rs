//! Accepting new agent sessions in batches: each session's acknowledgement
//! (an outbox row) and its task, written for many concurrent sessions in
//! one transaction.
//!
//! A burst of delegations is thousands of sessions a second, and each is
//! two rows in tables with several indexes. Written one transaction per
//! row, every row costs the writer connection a round trip per statement
//! and the log a page per index; gathered, rows of one batch share those
//! pages (new rows land at the right edge of the same index pages). As for
//! deliveries (`group_commit.rs`), nothing is held back on purpose: what
//! queues while a batch commits forms the next one, so a lone session is
//! written at once.
//!
//! These writes keep the store's ordinary durability (no fsync before the
//! answer): the stored delivery, already durable, is what brings a session
//! back after a crash, and accepting it again changes nothing.

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};

use crate::batch_queue::{Answer, BatchQueue, Failure};
use crate::connect::Backend;
use crate::rows::priority_rank;
use crate::{Insert, NewActivity, NewTask, Result, Store, UnixMillis};
use sqlx::types::Json;

/// Most sessions in one transaction.
const MAX_BATCH: usize = 256;
/// Rows per `INSERT` statement (a few statement shapes, all cached).
const CHUNK: usize = 32;
/// Sessions that may wait for the writer.
const QUEUE: usize = 4096;

/// What accepting a session wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The acknowledgement's outbox row (a duplicate: one with its
    /// `dedupe_key` was already stored).
    pub acknowledgement: Insert,
    /// Whether the task is new (`false`: the session already had one).
    pub task_created: bool,
}

struct Job {
    ack: NewActivity,
    task: NewTask,
    now: UnixMillis,
    answer: oneshot::Sender<Answer<Accepted>>,
}

/// The queue into the writing task; shared by the clones of one store.
#[derive(Debug)]
pub(crate) struct SessionAccept {
    queue: BatchQueue<Job>,
}

impl SessionAccept {
    pub(crate) fn new() -> SessionAccept {
        SessionAccept {
            queue: BatchQueue::new(QUEUE, "new sessions"),
        }
    }
}

impl Store {
    /// Stores a new session's acknowledgement (`ack`, as
    /// [`Store::enqueue_activity`] would) and then its task (as
    /// [`Store::create_task_if_absent`] would), in one transaction shared
    /// with the sessions accepted at the same time. Both are idempotent on
    /// their keys, so accepting a session again writes nothing.
    /// [`crate::StoreError::Overloaded`] when too many sessions are
    /// waiting already.
    pub async fn accept_session(
        &self,
        ack: NewActivity,
        task: NewTask,
        now: UnixMillis,
    ) -> Result<Accepted> {
        self.session_accept
            .queue
            .submit(
                |answer| Job {
                    ack,
                    task,
                    now,
                    answer,
                },
                |rx| run(self.backend.clone(), rx),
            )
            .await
    }
}

/// Writes what `rx` brings until every sender is gone.
async fn run(backend: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut jobs);
        match write_on(&backend, &batch).await {
            Err(err) if batch.len() > 1 => {
                // One session's rows (or a deadlock with another replica's
                // batch on PostgreSQL) must not fail everyone it was
                // batched with: each is written alone and told its own
                // outcome.
                tracing::warn!(error = %err, sessions = batch.len(), "store: a batch of new sessions failed; writing them one at a time");
                for job in batch {
                    let written = write_on(&backend, std::slice::from_ref(&job)).await;
                    answer(vec![job], written);
                }
            }
            written => answer(batch, written),
        }
    }
}

async fn write_on(backend: &Backend, batch: &[Job]) -> Result<Written> {
    match backend {
        Backend::Sqlite(pool) => write(pool.begin_with("BEGIN IMMEDIATE").await, batch).await,
        Backend::Postgres(pool) => write(pool.begin().await, batch).await,
    }
}

/// Keys of what a batch wrote: acknowledgements' `dedupe_key`s and tasks'
/// session ids that were new.
struct Written {
    acks: HashSet<String>,
    tasks: HashSet<String>,
}

/// Each caller learns what of *its* rows was new: a key that two callers
/// of one batch share was written for the first of them.
fn answer(batch: Vec<Job>, written: Result<Written>) {
    let written = match written {
        Ok(written) => written,
        Err(err) => {
            tracing::error!(error = %err, sessions = batch.len(), "store: a batch of new sessions failed");
            let failure = Failure::new(err.to_string());
            for job in batch {
                let _ = job.answer.send(Err(failure.clone()));
            }
            return;
        }
    };
    let mut first_ack: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut first_task: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        first_ack.entry(job.ack.dedupe_key.as_str()).or_insert(i);
        first_task
            .entry(job.task.agent_session_id.as_str())
            .or_insert(i);
    }
    let answers: Vec<Accepted> = batch
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let (key, session) = (&job.ack.dedupe_key, &job.task.agent_session_id);
            let ack_new = first_ack[key.as_str()] == i && written.acks.contains(key);
            Accepted {
                acknowledgement: if ack_new {
                    Insert::Inserted
                } else {
                    Insert::Duplicate
                },
                task_created: first_task[session.as_str()] == i && written.tasks.contains(session),
            }
        })
        .collect();
    for (job, accepted) in batch.into_iter().zip(answers) {
        // A caller that went away needs no answer; its rows stand.
        let _ = job.answer.send(Ok(accepted));
    }
}

/// One transaction (`begun`) for the batch: every acknowledgement first,
/// then every task, so nothing the scheduler enqueues for a task can be
/// ahead of its acknowledgement in the session's outbox order. The same SQL
/// on both backends.
async fn write<DB>(
    begun: std::result::Result<sqlx::Transaction<'static, DB>, sqlx::Error>,
    batch: &[Job],
) -> Result<Written>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Json<&'q serde_json::Value>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut tx = begun?;
    // Rows in key order, so that two replicas' batches on PostgreSQL take
    // their unique-key locks in the same order and never deadlock. (The
    // answers come from the keys RETURNING gives, whatever the order.)
    let mut acks: Vec<&Job> = batch.iter().collect();
    acks.sort_by(|a, b| a.ack.dedupe_key.cmp(&b.ack.dedupe_key));
    let mut tasks: Vec<&Job> = batch.iter().collect();
    tasks.sort_by(|a, b| a.task.agent_session_id.cmp(&b.task.agent_session_id));
    let mut written = Written {
        acks: HashSet::with_capacity(batch.len()),
        tasks: HashSet::with_capacity(batch.len()),
    };
    for chunk in acks.chunks(CHUNK) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO activities (session_id, kind, body, ephemeral, dedupe_key, not_before, \
             created_at, status, delivered_at) ",
        );
        q.push_values(chunk, |mut b, job| {
            let a = &job.ack;
            b.push_bind(a.session_id.as_str())
                .push_bind(a.kind.as_str())
                .push_bind(Json(&a.body))
                .push_bind(a.ephemeral)
                .push_bind(a.dedupe_key.as_str())
                .push_bind(a.not_before)
                .push_bind(job.now)
                .push_bind(if a.delivered_at.is_some() {
                    "delivered"
                } else {
                    "pending"
                })
                .push_bind(a.delivered_at);
        });
        q.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key");
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        written.acks.extend(new.into_iter().map(|(k,)| k));
    }
    for chunk in tasks.chunks(CHUNK) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO tasks (id, agent_session_id, issue_id, issue_identifier, organization_id, \
             state, priority, priority_rank, created_at, run_at, max_attempts, data) ",
        );
        let ids: Vec<String> = chunk
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        q.push_values(chunk.iter().zip(&ids), |mut b, (job, id)| {
            let t = &job.task;
            b.push_bind(id.as_str())
                .push_bind(t.agent_session_id.as_str())
                .push_bind(t.issue_id.as_str())
                .push_bind(t.issue_identifier.as_str())
                .push_bind(t.organization_id.as_str())
                .push_bind(t.state.as_str())
                .push_bind(t.priority)
                .push_bind(priority_rank(t.priority))
                .push_bind(t.created_at)
                .push_bind(t.run_at)
                .push_bind(t.max_attempts)
                .push_bind(Json(&t.data));
        });
        q.push(" ON CONFLICT (agent_session_id) DO NOTHING RETURNING agent_session_id");
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        written.tasks.extend(new.into_iter().map(|(s,)| s));
    }
    tx.commit().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(session: &str) -> (Job, oneshot::Receiver<Answer<Accepted>>) {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            ack: NewActivity {
                session_id: session.into(),
                kind: "thought".into(),
                body: serde_json::json!({}),
                ephemeral: false,
                dedupe_key: format!("ack:{session}"),
                not_before: 1,
                delivered_at: None,
            },
            task: NewTask {
                agent_session_id: session.into(),
                issue_id: "issue".into(),
                issue_identifier: "ENG-1".into(),
                organization_id: "org".into(),
                state: cyrus_core::lifecycle::TaskState::Received,
                priority: 0,
                created_at: 1,
                run_at: 1,
                max_attempts: 3,
                data: serde_json::json!({}),
            },
            now: 1,
            answer,
        };
        (job, answered)
    }

    /// Two copies of a session in one batch: the first is told its rows
    /// were written, the second that they already were; a session whose
    /// keys the table already held is told so; a failed batch fails each.
    #[tokio::test]
    async fn each_caller_is_told_what_of_its_own_rows_was_new() {
        let (jobs, answered): (Vec<_>, Vec<_>) =
            ["a", "b", "a", "old"].into_iter().map(job).unzip();
        let written = Written {
            acks: ["ack:a", "ack:b"].map(String::from).into(),
            tasks: ["a", "b"].map(String::from).into(),
        };
        answer(jobs, Ok(written));
        let mut told = Vec::new();
        for answered in answered {
            told.push(answered.await.unwrap().unwrap());
        }
        let new = Accepted {
            acknowledgement: Insert::Inserted,
            task_created: true,
        };
        let existed = Accepted {
            acknowledgement: Insert::Duplicate,
            task_created: false,
        };
        assert_eq!(told, vec![new, new, existed, existed]);

        let (job, answered) = job("c");
        answer(
            vec![job],
            Err(crate::StoreError::BatchFailed("disk".into())),
        );
        assert!(answered.await.unwrap().unwrap_err().0.contains("disk"));
    }
}
