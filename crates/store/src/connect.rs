//! Opening the database, migrations and health checks.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::group_commit::{GroupCommit, SqliteSync};
use crate::session_accept::SessionAccept;
use crate::{Keyring, Result, StoreError};
use std::sync::Arc;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite writer waits for the write lock before failing; long
/// enough for every burst this service produces.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Page cache of each read-only connection, in KiB (`cache_size` takes a
/// negative number as KiB). SQLite's default is 2 MiB per connection; with
/// four readers that was most of SQLite's share of the worker's memory
/// (heaptrack, 1 000 active runs: 14 MiB of page caches), while the
/// database such a worker reads is a few MiB that the kernel's page cache
/// keeps anyway. The writer keeps the default: it holds the pages every
/// commit touches.
const READER_CACHE_KIB: u32 = 512;
/// The checkpointing connection reads no tables (a checkpoint copies the
/// log with a buffer of its own), so its page cache only holds the schema.
const CHECKPOINTER_CACHE_KIB: u32 = 64;

/// The two backends. An enum rather than `sqlx::Any` because the atomic
/// operations differ (`BEGIN IMMEDIATE` versus `FOR UPDATE SKIP LOCKED`).
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to Cyrus's durable state. Cheap to clone (it wraps a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    /// SQLite only: read-only connections for reporting queries (dashboard,
    /// stats, listings), so a long read never holds up the writer.
    pub(crate) sqlite_readers: Option<SqlitePool>,
    /// The keys that seal OAuth tokens; only the installation operations
    /// need them (see [`Store::with_secret_keys`]).
    pub(crate) keys: Option<Keyring>,
    /// The delivery writer (group commit), shared by this store's clones.
    pub(crate) group_commit: Arc<GroupCommit>,
    /// The writer of new sessions' rows, shared by this store's clones.
    pub(crate) session_accept: Arc<SessionAccept>,
    /// Held by every clone; the background checkpointer (SQLite files)
    /// stops once the last is gone.
    _alive: Arc<()>,
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the SQL
/// in `$body` must be valid on both backends (`$1` placeholders work on both).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::connect::Backend::Sqlite($pool) => $body,
            $crate::connect::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like [`on_pool`], for read-only reporting queries: on SQLite they use the
/// reader connections, leaving the one writer connection to the work.
macro_rules! on_read_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match (&$store.backend, &$store.sqlite_readers) {
            (_, Some($pool)) => $body,
            ($crate::connect::Backend::Sqlite($pool), None) => $body,
            ($crate::connect::Backend::Postgres($pool), _) => $body,
        }
    };
}
pub(crate) use on_read_pool;

/// Runs `$body` inside a write transaction that is serialised against every
/// other one using the same `$key` (across replicas): SQLite takes the
/// database write lock up front (`BEGIN IMMEDIATE`, so no lock upgrade can
/// deadlock); PostgreSQL takes a transaction-scoped advisory lock on a hash
/// of `$key`. `$tx` is the transaction; an early `?` rolls back.
macro_rules! in_write_tx {
    ($store:expr, $key:expr, $tx:ident => $body:block) => {
        match &$store.backend {
            $crate::connect::Backend::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::connect::Backend::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind($key)
                    .execute(&mut *$tx)
                    .await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use in_write_tx;

impl Store {
    /// Opens `sqlite://PATH` (created if missing; WAL, busy timeout, foreign
    /// keys), `sqlite::memory:` (one connection, for tests) or
    /// `postgres://…`, then applies pending migrations. Safe to call from
    /// several replicas at once: sqlx serialises migrations with a lock.
    pub async fn connect(url: &str) -> Result<Store> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without touching its schema (for `/readyz`-style
    /// checks of a database that another process migrates).
    pub async fn connect_without_migrating(url: &str) -> Result<Store> {
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let options = if memory {
                options
            } else {
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            };
            // One writer connection: SQLite writes one transaction at a
            // time anyway, and several writer connections wait for its lock
            // in the busy handler's sleeps (up to 100 ms each), which showed
            // as tail latency on webhook intake; one connection queues them
            // in order instead. (An in-memory database exists per
            // connection, so it must be exactly one there as well.)
            // The writer checkpoints the log itself only as a backstop (see
            // `checkpoint.rs`).
            let writer_options = if memory {
                options.clone()
            } else {
                options
                    .clone()
                    .pragma(
                        "wal_autocheckpoint",
                        crate::checkpoint::WRITER_AUTOCHECKPOINT_PAGES.to_string(),
                    )
                    // A statement that may fail halfway through a
                    // transaction (a batch's multi-row `INSERT`: a `NOT
                    // NULL` column could abort it) keeps the pages it
                    // changes in a statement journal, and past 64 KiB
                    // SQLite spills that to a temporary file: under a
                    // stream of webhook batches, a file created, written
                    // page by page and deleted for most batches (a fifth of
                    // the writer's writes, `strace`). In memory it is a
                    // few hundred KiB for a moment, and never written. (The
                    // readers keep the default: a report's sort of many
                    // rows may spill to a file rather than hold memory.)
                    .pragma("temp_store", "memory")
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                .connect_with(writer_options)
                .await?;
            let sqlite_readers = if memory {
                None
            } else {
                Some(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .min_connections(0)
                        .idle_timeout(Some(Duration::from_secs(600)))
                        .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                        .connect_with(
                            options
                                .clone()
                                .read_only(true)
                                .pragma("cache_size", format!("-{READER_CACHE_KIB}")),
                        )
                        .await?,
                )
            };
            let alive = Arc::new(());
            if !memory {
                let checkpointer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(0)
                    .idle_timeout(Some(Duration::from_secs(600)))
                    .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                    .connect_lazy_with(
                        options.pragma("cache_size", format!("-{CHECKPOINTER_CACHE_KIB}")),
                    );
                crate::checkpoint::spawn(checkpointer, pool.clone(), Arc::downgrade(&alive));
            }
            Ok(Store {
                backend: Backend::Sqlite(pool),
                sqlite_readers,
                keys: None,
                group_commit: Arc::new(GroupCommit::new(SqliteSync::default(), memory)),
                session_accept: Arc::new(SessionAccept::new()),
                _alive: alive,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            Self::connect_postgres_with(options).await
        } else {
            Err(StoreError::UnsupportedUrl(redact(url)))
        }
    }

    /// Opens PostgreSQL with explicit options (e.g. a per-test `search_path`);
    /// does not migrate.
    pub async fn connect_postgres_with(options: PgConnectOptions) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Store {
            backend: Backend::Postgres(pool),
            sqlite_readers: None,
            keys: None,
            group_commit: Arc::new(GroupCommit::new(SqliteSync::default(), false)),
            session_accept: Arc::new(SessionAccept::new()),
            _alive: Arc::new(()),
        })
    }

    /// Chooses what a delivery's commit guarantees on SQLite (see
    /// [`SqliteSync`]; the default is [`SqliteSync::Full`]). Call it before
    /// the first delivery is stored; PostgreSQL ignores it.
    pub fn with_sqlite_sync(mut self, sync: SqliteSync) -> Store {
        self.group_commit = Arc::new(self.group_commit.with_sync(sync));
        self
    }

    /// What a delivery's commit guarantees on SQLite.
    pub fn sqlite_sync(&self) -> SqliteSync {
        self.group_commit.sync()
    }

    /// Applies pending migrations; applying them again is a no-op.
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Backend::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// Picks the statement text for the backend in use, where the dialects
    /// differ (PostgreSQL's `FOR UPDATE SKIP LOCKED`).
    pub(crate) fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => sqlite,
            Backend::Postgres(_) => postgres,
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and status output.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Round-trips a trivial query (liveness of the database connection).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// True when every migration embedded in this binary is applied
    /// successfully (readiness: a replica must not serve an older schema).
    pub async fn migrations_applied(&self) -> Result<bool> {
        let (migrator, applied): (&sqlx::migrate::Migrator, Vec<(i64, bool)>) = match &self.backend
        {
            Backend::Sqlite(p) => (&SQLITE_MIGRATIONS, applied_versions(p).await?),
            Backend::Postgres(p) => (&POSTGRES_MIGRATIONS, applied_versions(p).await?),
        };
        Ok(migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration() || !m.migration_type.is_down_migration())
            .all(|m| applied.iter().any(|(v, ok)| *v == m.version && *ok)))
    }

    /// Closes every pooled connection (graceful shutdown).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

async fn applied_versions<'c, E>(executor: E) -> Result<Vec<(i64, bool)>>
where
    E: sqlx::Executor<'c>,
    i64: sqlx::Type<E::Database> + for<'r> sqlx::Decode<'r, E::Database>,
    bool: sqlx::Type<E::Database> + for<'r> sqlx::Decode<'r, E::Database>,
    for<'q> <E::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<E::Database>,
    usize: sqlx::ColumnIndex<<E::Database as sqlx::Database>::Row>,
{
    match sqlx::query_as::<_, (i64, bool)>("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(executor)
        .await
    {
        Ok(rows) => Ok(rows),
        // No migrations table yet: nothing is applied.
        Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Drops any password from a URL before it goes into an error message.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::READER_CACHE_KIB;

    /// The value a `PRAGMA` statement reads on a connection of `pool`.
    async fn pragma(pool: &sqlx::SqlitePool, statement: &'static str) -> i64 {
        let (value,): (i64,) = sqlx::query_as(statement).fetch_one(pool).await.unwrap();
        value
    }

    /// The readers' page cache is the small one; the writer's is SQLite's
    /// default (a pragma given to the wrong pool would pass unnoticed, as
    /// both work either way).
    #[tokio::test]
    async fn sqlite_readers_keep_a_small_page_cache_and_the_writer_the_default() {
        let (_dir, store, writer) = crate::test_support::sqlite_store().await;
        let readers = store.sqlite_readers.as_ref().expect("a file has readers");
        assert_eq!(
            pragma(readers, "PRAGMA cache_size").await,
            -i64::from(READER_CACHE_KIB)
        );
        assert_eq!(
            pragma(&writer, "PRAGMA cache_size").await,
            -2000,
            "SQLite's default"
        );
    }

    /// The writer keeps temporary data, statement journals included, in
    /// memory (`2`): a batch's statement journal then never becomes a file
    /// (see the pragma's comment). SQLite's default, `0`, works as well,
    /// only slower, so nothing else would notice it gone.
    #[tokio::test]
    async fn the_sqlite_writer_keeps_statement_journals_in_memory() {
        let (_dir, store, writer) = crate::test_support::sqlite_store().await;
        assert_eq!(pragma(&writer, "PRAGMA temp_store").await, 2);
        let readers = store.sqlite_readers.as_ref().expect("a file has readers");
        assert_eq!(
            pragma(readers, "PRAGMA temp_store").await,
            0,
            "SQLite's default"
        );
    }
}
