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

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::batch_queue::{Answer, BatchQueue, Failure};
use crate::connect::Backend;
use crate::new_rows::{self, Written};
use crate::{Insert, NewActivity, NewTask, Result, Store, UnixMillis};

/// Most sessions in one transaction.
const MAX_BATCH: usize = 256;
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

/// One transaction for the batch's acknowledgements and tasks.
async fn write_on(backend: &Backend, batch: &[Job]) -> Result<Written> {
    let acks: Vec<(&NewActivity, UnixMillis)> = batch.iter().map(|j| (&j.ack, j.now)).collect();
    let tasks: Vec<&NewTask> = batch.iter().map(|j| &j.task).collect();
    match backend {
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let written = new_rows::insert(&mut *tx, &acks, &tasks).await?;
            tx.commit().await?;
            Ok(written)
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let written = new_rows::insert(&mut *tx, &acks, &tasks).await?;
            tx.commit().await?;
            Ok(written)
        }
    }
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
            let ack_new = first_ack[key.as_str()] == i && written.activities.contains(key);
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
            activities: ["ack:a", "ack:b"].map(String::from).into(),
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

    /// A batch with one session whose rows cannot be written (here a
    /// trigger refuses its task) is written again one session at a time:
    /// the others are accepted, the one that fails is told so, and nothing
    /// of it is left half-written.
    #[tokio::test]
    async fn a_failed_batch_is_written_one_session_at_a_time() {
        let (_dir, store, writer) = crate::test_support::sqlite_store().await;
        sqlx::query(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON tasks \
             WHEN NEW.agent_session_id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .execute(&writer)
        .await
        .unwrap();
        let (tx, rx) = mpsc::channel(8);
        let mut answered = Vec::new();
        // Queued before the writer starts, so the three form one batch.
        for session in ["a", "poison", "b"] {
            let (job, rx) = job(session);
            tx.send(job).await.unwrap();
            answered.push(rx);
        }
        drop(tx);
        run(store.backend.clone(), rx).await;
        let mut told = Vec::new();
        for answered in answered {
            told.push(answered.await.unwrap());
        }
        let new = Accepted {
            acknowledgement: Insert::Inserted,
            task_created: true,
        };
        assert_eq!(told[0].as_ref().unwrap(), &new);
        assert!(
            told[1].as_ref().unwrap_err().0.contains("poisoned"),
            "{:?}",
            told[1]
        );
        assert_eq!(told[2].as_ref().unwrap(), &new);
        let count = |sql: &'static str| {
            let writer = writer.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&writer).await.unwrap();
                n
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM tasks").await, 2);
        assert_eq!(
            count("SELECT COUNT(*) FROM activities WHERE dedupe_key = 'ack:poison'").await,
            0,
            "the failed session's acknowledgement was rolled back with its task"
        );
    }
}
