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
//! it never waits for, or blocks, the writer or readers), and the writer's
//! own automatic checkpoint is kept only as a backstop at a much larger
//! log: under a load that never pauses, the background passes never catch
//! up with the very end of the log, so the log is only restarted by a
//! checkpoint on the writer, which then has little left to copy.

use std::sync::Weak;
use std::time::Duration;

use sqlx::SqlitePool;

/// Pages of log after which the writer checkpoints itself (16 MiB of
/// 4 KiB pages): the log's bound when the background passes fall behind.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 4_096;

/// How often the background connection copies the log into the database.
const INTERVAL: Duration = Duration::from_millis(100);

/// Checkpoints on `pool` (a connection apart from the writer) until every
/// handle of the store is gone (`alive` no longer upgrades) or the runtime
/// stops.
pub(crate) fn spawn(pool: SqlitePool, alive: Weak<()>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if alive.upgrade().is_none() {
                break;
            }
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                // The writer's own checkpoints still run; nothing is lost.
                tracing::debug!(error = %err, "store: a background checkpoint failed");
            }
        }
        pool.close().await;
    });
}
