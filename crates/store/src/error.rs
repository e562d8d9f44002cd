//! The store's error type: callers branch on *what* went wrong (a lost lease
//! versus a broken database), never on driver messages.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme in `{0}` (expected sqlite: or postgres:)")]
    UnsupportedUrl(String),
    /// A fenced write lost: the row changed since it was read, or another
    /// worker holds (or took over) its lease. The caller must re-read and
    /// must not assume its write happened.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The addressed row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value could not be decoded (e.g. malformed JSON or an
    /// unknown task type written by a newer version).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// An encrypted value could not be read or the key is missing or wrong;
    /// the message says which key is needed.
    #[error(transparent)]
    Secret(#[from] crate::SecretError),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// More writes are waiting than the store can take right now; nothing
    /// was written. Retry later (the webhook answers 503).
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// A batched write (group commit) failed or its writer stopped; nothing
    /// of the caller's row was written.
    #[error("database error in a batched write: {0}")]
    BatchFailed(String),
    /// The database itself failed (connection, constraint, syntax).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Shorthand used by every store method.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
