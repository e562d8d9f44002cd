//! Tokens owned by someone else: the worker keeps each installation's tokens
//! in the store and makes sure only one replica refreshes an installation at
//! a time. The client only asks for the current token and, on a 401, for a
//! newer one.

use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;

use crate::error::LinearError;

/// A boxed `Send` future, so [`TokenSource`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Supplies OAuth access tokens for one installation.
///
/// The client calls [`current`](Self::current) before each request and, when
/// Linear answers 401, [`refresh`](Self::refresh) once with the generation it
/// used, then retries once with whatever `current` answers next. Concurrent
/// 401s inside one client are coalesced into one `refresh` call per
/// generation; coalescing across replicas (a lease, then reloading the
/// winner's tokens) is the implementation's job, as is committing the new
/// refresh token before the new access token is handed out.
pub trait TokenSource: Send + Sync {
    /// The access token to send (without `Bearer `) and its generation: a
    /// number that changes whenever the token does.
    fn current(&self) -> BoxFuture<'_, Result<(SecretString, u64), LinearError>>;

    /// Makes a token newer than `stale_generation` current. Answers `true`
    /// when a retry makes sense (refreshed here, or someone else already
    /// did), `false` when nothing can be done (e.g. no refresh token). A dead
    /// refresh token must be answered with [`LinearError::NeedsReconnect`]
    /// (`From<OAuthError>` does this for `invalid_grant`).
    fn refresh(&self, stale_generation: u64) -> BoxFuture<'_, Result<bool, LinearError>>;
}
