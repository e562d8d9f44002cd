//! Inserting new outbox rows and tasks, one or many per statement, and
//! learning which of them were new.
//!
//! Both tables are written idempotently on a key (an activity's
//! `dedupe_key`, a task's agent session), so a retried step or a
//! redelivered webhook writes nothing twice. A lone
//! [`crate::Store::enqueue_activity`] or [`crate::Store::create_task_if_absent`]
//! and a batch of new sessions (`session_accept.rs`) insert through this one
//! place, so the column lists and what each column is bound to exist once.

use std::collections::HashSet;

use sqlx::QueryBuilder;
use sqlx::types::Json;

use crate::rows::priority_rank;
use crate::{NewActivity, NewTask, Result, UnixMillis};

/// Rows per `INSERT` statement (a few statement shapes, all cached).
const CHUNK: usize = 32;

/// Keys of what an insert wrote: activities' `dedupe_key`s and tasks'
/// agent session ids that were not stored before.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) activities: HashSet<String>,
    pub(crate) tasks: HashSet<String>,
}

/// Inserts `activities` (each with the time it is enqueued) and then
/// `tasks` on `conn`, skipping any whose key is already stored, and returns
/// the keys that were new. Activities go first, so nothing the scheduler
/// enqueues for a task can be ahead of the task's own acknowledgement in
/// the session's outbox order.
///
/// Rows are written in key order: two replicas' transactions on PostgreSQL
/// then take their unique-key locks in the same order and never deadlock.
/// (What was new comes from the keys `RETURNING` gives, whatever the order.)
/// The same SQL on both backends; the caller chooses the transaction.
pub(crate) async fn insert<C, DB>(
    conn: &mut C,
    activities: &[(&NewActivity, UnixMillis)],
    tasks: &[&NewTask],
) -> Result<Written>
where
    C: sqlx::Connection<Database = DB>,
    DB: sqlx::Database,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Json<&'q serde_json::Value>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut activities = activities.to_vec();
    activities.sort_by(|a, b| a.0.dedupe_key.cmp(&b.0.dedupe_key));
    let mut tasks = tasks.to_vec();
    tasks.sort_by(|a, b| a.agent_session_id.cmp(&b.agent_session_id));
    let mut written = Written {
        activities: HashSet::with_capacity(activities.len()),
        tasks: HashSet::with_capacity(tasks.len()),
    };
    for chunk in activities.chunks(CHUNK) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO activities (session_id, kind, body, ephemeral, dedupe_key, not_before, \
             created_at, status, delivered_at) ",
        );
        q.push_values(chunk, |mut b, (a, now)| {
            b.push_bind(a.session_id.as_str())
                .push_bind(a.kind.as_str())
                .push_bind(Json(&a.body))
                .push_bind(a.ephemeral)
                .push_bind(a.dedupe_key.as_str())
                .push_bind(a.not_before)
                .push_bind(*now)
                .push_bind(if a.delivered_at.is_some() {
                    "delivered"
                } else {
                    "pending"
                })
                .push_bind(a.delivered_at);
        });
        q.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key");
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *conn).await?;
        written.activities.extend(new.into_iter().map(|(k,)| k));
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
        q.push_values(chunk.iter().zip(&ids), |mut b, (t, id)| {
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
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *conn).await?;
        written.tasks.extend(new.into_iter().map(|(s,)| s));
    }
    Ok(written)
}
