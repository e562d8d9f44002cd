//! An OAuth installation's tokens, as the Linear client sees them: read from
//! the store (where they are encrypted), refreshed ahead of expiry and once
//! on a 401, and never refreshed by two replicas at once.
//!
//! Linear spends a refresh token on use, so two replicas refreshing the same
//! installation would break it: the loser's refresh token is already dead.
//! A refresh therefore takes the installation's refresh lease in the store;
//! whoever does not get it waits for the winner's tokens to appear and uses
//! those. The new refresh token is committed (`finish_refresh`) before the
//! new access token is handed to anyone.
//!
//! A dead refresh token (`invalid_grant`) or a revoked app makes the
//! installation `needs_reconnect` / `revoked`: every call then answers
//! [`LinearError::NeedsReconnect`], which the scheduler turns into a wait
//! (the workspace's tasks wait; nothing fails) until `cyrus linear connect`
//! makes the installation active again.

use cyrus_linear::LinearError;
use cyrus_linear::client::{BoxFuture, TokenSource};
use cyrus_linear::oauth::{OAuthClient, OAuthError};
use cyrus_store::{CurrentTokens, GrantKind, InstallationStatus, OAuthTokens, RefreshLease, Store};
use secrecy::SecretString;
use std::sync::Mutex;
use std::time::Duration;

/// How long a read of the store's tokens is reused. Short, so a reconnect
/// (or another replica's refresh) is picked up quickly.
const CACHE_MS: i64 = 15_000;
/// Refresh this long before the access token expires.
const REFRESH_AHEAD_MS: i64 = 10 * 60_000;
/// How long a refresh may hold the installation's lease: longer than the
/// token call's worst case (a 15 s timeout, retried; see `linear_hub`), so a
/// slow answer cannot let a second replica spend the same refresh token.
const REFRESH_LEASE: Duration = Duration::from_secs(120);
/// Tries at storing a refreshed pair before giving up.
const COMMIT_ATTEMPTS: u32 = 5;
/// How often a replica that lost the refresh race looks for the winner's
/// tokens.
const WAIT_STEP: Duration = Duration::from_millis(200);

/// The alert raised while a workspace needs a person.
pub(crate) fn reconnect_alert_key(workspace_id: &str) -> String {
    format!("linear_reconnect:{workspace_id}")
}

/// What a person must do, said the same way everywhere.
pub(crate) fn reconnect_advice(workspace: &str, status: InstallationStatus) -> String {
    let why = match status {
        InstallationStatus::Revoked => "the Cyrus app was uninstalled (revoked) there",
        _ => "its refresh token no longer works",
    };
    format!(
        "The Linear workspace {workspace} needs reconnecting: {why}. Its tasks wait until an admin runs `cyrus linear connect`."
    )
}

struct Cached {
    current: CurrentTokens,
    read_at: i64,
}

/// Tokens of one installation, shared by every clone of its client.
pub(crate) struct StoreTokens {
    store: Store,
    workspace_id: String,
    workspace_name: String,
    oauth: OAuthClient,
    /// Lease owner for refreshes: unique per process.
    owner: String,
    cached: Mutex<Option<Cached>>,
    /// Held while this process refreshes the installation.
    refreshing: tokio::sync::Mutex<()>,
}

impl StoreTokens {
    pub fn new(
        store: Store,
        workspace_id: String,
        workspace_name: String,
        oauth: OAuthClient,
        owner: String,
    ) -> StoreTokens {
        StoreTokens {
            store,
            workspace_id,
            workspace_name,
            oauth,
            owner,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn store_error(err: cyrus_store::StoreError) -> LinearError {
        match err {
            // A key that cannot open the tokens needs a person, like a dead
            // token: the workspace's tasks wait instead of dead-lettering.
            cyrus_store::StoreError::Secret(secret) => LinearError::NeedsReconnect {
                message: format!(
                    "the stored Linear tokens cannot be decrypted: {secret}. Start Cyrus with the key they were stored with (CYRUS_SECRET_KEY or the key file beside the database)."
                ),
            },
            other => LinearError::Transient {
                message: format!("reading the installation's tokens: {other}"),
            },
        }
    }

    fn needs_reconnect(&self, status: InstallationStatus) -> LinearError {
        LinearError::NeedsReconnect {
            message: reconnect_advice(&self.workspace_name, status),
        }
    }

    /// The store's tokens, from the cache while it is fresh.
    async fn load(&self, fresh: bool) -> Result<CurrentTokens, LinearError> {
        let now = Self::now_ms();
        if !fresh
            && let Some(c) = self.cached.lock().expect("token cache").as_ref()
            && now - c.read_at < CACHE_MS
        {
            return Ok(c.current.clone());
        }
        let current = self
            .store
            .installation_tokens(&self.workspace_id)
            .await
            .map_err(Self::store_error)?
            .ok_or_else(|| LinearError::NeedsReconnect {
                message: format!(
                    "Cyrus is not installed in the Linear workspace {}; run `cyrus linear connect`.",
                    self.workspace_name
                ),
            })?;
        *self.cached.lock().expect("token cache") = Some(Cached {
            current: current.clone(),
            read_at: now,
        });
        Ok(current)
    }

    /// Refreshes unless the store already holds tokens newer than `stale`.
    /// Returns the tokens to use. One refresh at a time in this process
    /// (the lock) and in the fleet (the store's lease, taken under an owner
    /// unique to this attempt, so two tasks of one process never both hold
    /// it).
    async fn refresh_from(&self, stale: i64) -> Result<CurrentTokens, LinearError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let owner = format!("{}-{}", self.owner, uuid::Uuid::new_v4().simple());
        let deadline = Self::now_ms() + 2 * REFRESH_LEASE.as_millis() as i64;
        loop {
            let now = Self::now_ms();
            let lease = self
                .store
                .begin_refresh(&self.workspace_id, &owner, REFRESH_LEASE, now)
                .await
                .map_err(Self::store_error)?;
            match lease {
                RefreshLease::Held { installation, .. } => {
                    let held_version = installation.info.token_version;
                    if held_version > stale {
                        // Refreshed (here or by another replica) since the
                        // token that failed was read: use those tokens.
                        let _ = self.store.abandon_refresh(&self.workspace_id, &owner).await;
                        return self.load(true).await;
                    }
                    return self
                        .exchange(
                            &owner,
                            held_version,
                            installation.info.grant,
                            installation.tokens,
                        )
                        .await;
                }
                RefreshLease::HeldElsewhere { until, .. } => {
                    // Someone else is refreshing: wait for their tokens.
                    let current = self.load(true).await?;
                    if current.token_version > stale {
                        return Ok(current);
                    }
                    if now > deadline.max(until + 1_000) {
                        return Err(LinearError::Transient {
                            message: "another replica's token refresh did not finish".into(),
                        });
                    }
                    tokio::time::sleep(WAIT_STEP).await;
                }
                RefreshLease::NotActive(status) => return Err(self.needs_reconnect(status)),
            }
        }
    }

    /// Spends the refresh token (or asks for a new app token) while holding
    /// the lease, and commits the answer before anyone uses it.
    async fn exchange(
        &self,
        owner: &str,
        held_version: i64,
        grant: GrantKind,
        tokens: OAuthTokens,
    ) -> Result<CurrentTokens, LinearError> {
        let answer = match (grant, &tokens.refresh_token) {
            (GrantKind::ClientCredentials, _) => {
                let scopes = self.oauth_scopes().await;
                self.oauth.client_credentials(&scopes).await
            }
            (GrantKind::AuthorizationCode, Some(refresh)) => self.oauth.refresh(refresh).await,
            (GrantKind::AuthorizationCode, None) => Err(OAuthError::InvalidGrant {
                description: "the installation has no refresh token".into(),
            }),
        };
        match answer {
            Ok(grant) => {
                let now = Self::now_ms();
                let expires_at = grant
                    .expires_at
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(now + 24 * 3_600_000);
                let new = OAuthTokens {
                    access_token: grant.access_token,
                    refresh_token: grant.refresh_token,
                    access_expires_at: expires_at,
                };
                self.commit(owner, &new).await?;
                tracing::info!(workspace = %self.workspace_name, "Linear access token refreshed");
                self.load(true).await
            }
            Err(OAuthError::InvalidGrant { description }) => {
                let still_ours = self
                    .store
                    .abandon_refresh(&self.workspace_id, owner)
                    .await
                    .unwrap_or(false);
                let current = self.load(true).await?;
                // A lease lost to someone else (it expired while Linear was
                // slow), a refresh or a reconnect since the lease was taken,
                // or a revocation: the refused token is not the story.
                if current.status == InstallationStatus::Revoked {
                    return Err(self.needs_reconnect(InstallationStatus::Revoked));
                }
                if !still_ours || current.token_version > held_version {
                    return Ok(current);
                }
                let reason = format!("refresh refused: {description}");
                self.store
                    .set_installation_status(
                        &self.workspace_id,
                        InstallationStatus::NeedsReconnect,
                        Some(&reason),
                        Self::now_ms(),
                    )
                    .await
                    .map_err(Self::store_error)?;
                tracing::error!(workspace = %self.workspace_name, "{reason}; the workspace needs reconnecting");
                let _ = self.load(true).await;
                Err(self.needs_reconnect(InstallationStatus::NeedsReconnect))
            }
            Err(err) => {
                let _ = self.store.abandon_refresh(&self.workspace_id, owner).await;
                Err(err.into())
            }
        }
    }

    /// Stores a refreshed pair. Linear has already spent the old refresh
    /// token, so the new one must not be lost to a passing database error:
    /// the write (fenced by the lease owner, so safe to repeat) is retried.
    async fn commit(&self, owner: &str, new: &OAuthTokens) -> Result<(), LinearError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self
                .store
                .finish_refresh(&self.workspace_id, owner, new, Self::now_ms())
                .await
            {
                Ok(_) => return Ok(()),
                Err(err @ cyrus_store::StoreError::Conflict(_)) => {
                    return Err(Self::store_error(err));
                }
                Err(err) if attempt >= COMMIT_ATTEMPTS => {
                    tracing::error!(workspace = %self.workspace_name, error = %err, "a refreshed Linear token could not be stored; the workspace may need reconnecting");
                    return Err(Self::store_error(err));
                }
                Err(err) => {
                    tracing::warn!(workspace = %self.workspace_name, error = %err, attempt, "storing a refreshed Linear token failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    async fn oauth_scopes(&self) -> Vec<String> {
        match self.store.get_installation(&self.workspace_id).await {
            Ok(Some(i)) => i.info.scopes,
            _ => Vec::new(),
        }
    }

    async fn usable(&self) -> Result<(SecretString, u64), LinearError> {
        let mut current = self.load(false).await?;
        if current.status != InstallationStatus::Active {
            // A reconnect may have happened since the cache was filled.
            current = self.load(true).await?;
            if current.status != InstallationStatus::Active {
                return Err(self.needs_reconnect(current.status));
            }
        }
        if current.tokens.access_expires_at - Self::now_ms() < REFRESH_AHEAD_MS {
            current = self.refresh_from(current.token_version).await?;
        }
        Ok((
            current.tokens.access_token.clone(),
            current.token_version.max(0) as u64,
        ))
    }
}

impl TokenSource for StoreTokens {
    fn current(&self) -> BoxFuture<'_, Result<(SecretString, u64), LinearError>> {
        Box::pin(self.usable())
    }

    fn refresh(&self, stale_generation: u64) -> BoxFuture<'_, Result<bool, LinearError>> {
        Box::pin(async move {
            self.refresh_from(stale_generation as i64).await?;
            Ok(true)
        })
    }
}
