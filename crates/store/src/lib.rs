//! Cyrus's durable state behind one type, [`Store`], over SQLite (single
//! replica, zero setup) or PostgreSQL (several replicas).
//!
//! Every operation that more than one worker can race on is atomic in the
//! database itself — claims, leases, run slots, budget holds, rate tokens —
//! so correctness never depends on there being only one process. SQLite gets
//! this from single-writer `BEGIN IMMEDIATE` transactions; PostgreSQL from
//! row locks (`FOR UPDATE`, `SKIP LOCKED`).
//!
//! Times are UTC unix milliseconds passed in by the caller (`now`), so the
//! scheduler is testable with a controllable clock.

mod activities;
mod audit;
mod batch_queue;
mod checkpoint;
mod connect;
mod costs;
mod deliveries;
mod error;
mod experiments;
mod followups;
mod group_commit;
mod installations;
mod new_rows;
mod oauth_pending;
mod permission_changes;
mod rate_limit;
mod records;
mod rows;
mod runs;
mod secret_key;
mod session_accept;
mod stats;
mod tasks;
mod triage;

pub use connect::Store;
pub use error::{Result, StoreError};
pub use group_commit::SqliteSync;
pub use records::*;
pub use runs::INTENT_STATUS;
pub use secret_key::{
    KeySource, Keyring, PREVIOUS_SECRET_KEY_ENV, SECRET_KEY_ENV, SecretError, SecretKey,
};
pub use session_accept::Accepted;

/// What the crate's unit tests share.
#[cfg(test)]
mod test_support {
    use crate::Store;
    use crate::connect::Backend;

    /// A migrated store on a SQLite file of its own (kept while the
    /// directory lives) and its writer pool.
    pub(crate) async fn sqlite_store() -> (tempfile::TempDir, Store, sqlx::SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cyrus.db").display());
        let store = Store::connect(&url).await.unwrap();
        let Backend::Sqlite(writer) = &store.backend else {
            panic!("a SQLite store has a SQLite writer");
        };
        let writer = writer.clone();
        (dir, store, writer)
    }
}
