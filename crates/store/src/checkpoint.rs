//! SQLite checkpoints off the writer's path.
//!
//! In WAL mode SQLite copies the log back into the database file
//! ("checkpoint") on the connection that commits once the log passes
//! `wal_autocheckpoint` pages, and fsyncs the database file there. On the
//! one writer connection that stalled every write behind it: under a steady
//! stream of webhook deliveries (about 3 KiB each) a checkpoint of 4 MiB
//! ran every second or so, the writer's thread waited on its fsync, and the
//! worker's core sat in I/O wait about 20 % of the time (read from
//! `/proc/stat` under the closed-loop load bench) while every delivery's
//! commit queued behind it.
//!
//! So a connection of its own copies the log in the background (`PASSIVE`:
//! it never waits for, or blocks, the writer or readers). That alone left
//! the log growing: SQLite writes the log again from its start ("restarts"
//! it), and syncs the database file, only after a checkpoint that reached
//! the log's very end, and under a steady stream of commits (one every
//! 2 ms at 500 deliveries a second) some commit always lands while a
//! background pass copies, so no pass ever did — although each reported
//! every page copied, counting the log as it was when the pass began. The
//! log was restarted only by the writer's own automatic checkpoint, at
//! 16 MiB: 10–25 ms of writer stall every 2 s at 500 deliveries a second
//! (`strace` on the writer's thread), a 16 MiB log to walk and a database
//! file full of unsynced pages to fsync. It was the intake's p99 at that
//! rate, and its p99 at c=64.
//!
//! So once the log is past [`FINISH_AT_PAGES`], the background pass is
//! finished on the writer connection: it copies what was committed since
//! the background pass (a few pages), fsyncs the log and the database file
//! (which holds the pages the background passes wrote since the last
//! finish, a quarter of what the backstop flushed), and the next write
//! restarts the log. Only a checkpoint on the writer can do that: one on
//! another connection that reaches the end is overtaken by the next commit
//! before the writer begins its next transaction. The database file is not
//! synced from a descriptor of our own beforehand: closing any descriptor
//! of a file drops every POSIX lock the process holds on it, SQLite's
//! included. The writer's own automatic checkpoint stays as the backstop,
//! for a disk that cannot keep up.

use std::sync::Weak;
use std::time::Duration;

use sqlx::SqlitePool;

/// Pages of log after which the writer checkpoints itself (16 MiB of
/// 4 KiB pages): the log's bound when the background passes fall behind.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 4_096;

/// How often the background connection copies the log into the database.
const INTERVAL: Duration = Duration::from_millis(100);

/// Log pages past which a background pass is finished on the writer (see
/// the module's comment): often enough that the writer's backstop is not
/// reached, rarely enough that its short stall stays out of the tail (at
/// 500 deliveries a second, about three times a second).
const FINISH_AT_PAGES: i64 = 1_024;

/// Checkpoints `writer`'s database from `pool` (a connection apart from
/// the writer) until every handle of the store is gone (`alive` no longer
/// upgrades) or the runtime stops.
pub(crate) fn spawn(pool: SqlitePool, writer: SqlitePool, alive: Weak<()>) {
    tokio::spawn(async move {
        // The log's size at the last finish: while no commit comes, a
        // finished log stays that size until the next write restarts it,
        // and finishing it again would do nothing.
        let mut finished: Option<i64> = None;
        loop {
            tokio::time::sleep(INTERVAL).await;
            if alive.upgrade().is_none() {
                break;
            }
            // The writer's own checkpoints still run; nothing is lost if a
            // pass fails.
            let log = match passive(&pool).await {
                Ok(log) => log,
                Err(err) => {
                    tracing::debug!(error = %err, "store: a background checkpoint failed");
                    continue;
                }
            };
            if log < FINISH_AT_PAGES || finished == Some(log) {
                continue;
            }
            match passive(&writer).await {
                Ok(log) => finished = Some(log),
                Err(err) => {
                    tracing::debug!(error = %err, "store: finishing a checkpoint on the writer failed");
                }
            }
        }
        pool.close().await;
    });
}

/// One `PASSIVE` checkpoint on `pool`; answers the pages in the log.
async fn passive(pool: &SqlitePool) -> sqlx::Result<i64> {
    let (_busy, log, _copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewDelivery, SqliteSync};

    /// Frames in the log, from the header of SQLite's shared-memory
    /// index (`mxFrame`, the fifth 32-bit word, in the machine's byte
    /// order): read without a connection, because a checkpoint run to
    /// look would change what is looked at. (Closing the descriptor drops
    /// this process's POSIX locks on the file; no other process has this
    /// test's database open, so nothing relies on them here.)
    fn frames_in_log(shm: &std::path::Path) -> u32 {
        let index = std::fs::read(shm).unwrap();
        u32::from_ne_bytes(index[16..20].try_into().unwrap())
    }

    /// Under a steady stream of one-delivery commits (each writes several
    /// pages of log) the log is restarted long before the writer's
    /// backstop. Without the finishing pass on the writer it grew to the
    /// backstop's 4 096 pages every time: a background pass that a commit
    /// overtakes leaves the log as it is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_commits_restarts_the_log_before_the_backstop() {
        let (dir, store, _writer) = crate::test_support::sqlite_store().await;
        let store = store.with_sqlite_sync(SqliteSync::Normal);
        let shm = dir.path().join("cyrus.db-shm");
        let body = "x".repeat(2_800);
        let mut sizes = Vec::new();
        for i in 0..6_000 {
            let row = NewDelivery {
                delivery_id: format!("delivery-{i}"),
                organization_id: "org".into(),
                event_type: "Issue".into(),
                action: Some("update".into()),
                body: format!("{{\"n\":{i},\"filler\":\"{body}\"}}"),
                received_at: i,
                arrival: crate::Arrival::Unclaimed,
            };
            store.insert_deliveries(vec![row]).await.unwrap();
            if i % 20 == 0 {
                sizes.push(frames_in_log(&shm));
                // Commits as fast as the machine writes, with a breath
                // between runs of them: paced to a fixed rate (1 000 a
                // second was tried), background passes catch up between
                // commits and restart the log by themselves, which is not
                // the case under test.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let largest = sizes.iter().copied().max().unwrap_or_default();
        let restarts = sizes.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(
            // Without the finishing pass every restart came at the
            // backstop (3 861–4 083 pages as sampled); with it, at about
            // 1 024 pages plus one interval's growth (2 100–2 200 here).
            largest < WRITER_AUTOCHECKPOINT_PAGES * 7 / 8 && restarts > 0,
            "the log reached {largest} pages and restarted {restarts} times; its sizes: {sizes:?}"
        );
    }
}
