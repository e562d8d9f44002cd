//! Linear OAuth installations, one per workspace: tokens sealed at rest, and
//! a refresh lease so that across replicas exactly one process spends a
//! refresh token (Linear rotates it on use: a second refresh with the same
//! token would fail with `invalid_grant` and break the installation).

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::types::Json;

use crate::connect::{on_pool, on_read_pool};
use crate::rows::{InstallationRow, lease_ms};
use crate::{
    CurrentTokens, Installation, InstallationInfo, InstallationStatus, Keyring, NewInstallation,
    OAuthTokens, RefreshLease, Result, SecretError, Store, StoreError, UnixMillis,
};

/// What the associated data of a sealed token names: the row (workspace)
/// and the column, so a value copied elsewhere does not decrypt.
fn token_aad(workspace_id: &str, column: &str) -> String {
    format!("cyrus installation {workspace_id} {column}")
}

const ACCESS: &str = "access_token";
const REFRESH: &str = "refresh_token";

/// How many passes `reencrypt_installations` makes over rows a refresh
/// rewrote under it (a handful suffices: each pass follows a commit).
const REENCRYPT_PASSES: usize = 5;

impl Store {
    /// This store with the keys that seal and open OAuth tokens. Operations
    /// on installations and pending authorizations fail with
    /// [`SecretError::NoKey`] without them; everything else ignores them.
    pub fn with_secret_keys(mut self, keys: Keyring) -> Store {
        self.keys = Some(keys);
        self
    }

    /// Whether installation tokens can be read and written (a keyring was
    /// given with [`Store::with_secret_keys`]).
    pub fn has_secret_keys(&self) -> bool {
        self.keys.is_some()
    }

    pub(crate) fn keys(&self) -> Result<&Keyring> {
        self.keys
            .as_ref()
            .ok_or(StoreError::Secret(SecretError::NoKey))
    }

    /// Stores what `cyrus linear connect` learned. Connecting a workspace
    /// that is already installed replaces its names, scopes and tokens, makes
    /// it `active` again (clearing the reason and the revoked time), takes
    /// away any refresh lease (a refresh in flight was spending the old
    /// refresh token; its `finish_refresh` will fail rather than overwrite
    /// the new tokens) and bumps `token_version`.
    pub async fn connect_installation(
        &self,
        new: &NewInstallation,
        now: UnixMillis,
    ) -> Result<Installation> {
        let keys = self.keys()?;
        let ws = &new.workspace_id;
        let access = keys.seal(
            new.tokens.access_token.expose_secret(),
            &token_aad(ws, ACCESS),
        );
        let refresh = new
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| keys.seal(t.expose_secret(), &token_aad(ws, REFRESH)));
        let row: InstallationRow = on_pool!(self, p => sqlx::query_as(
            "INSERT INTO installations (workspace_id, workspace_name, url_key, app_user_id,
                 app_user_name, oauth_client_id, access_token, refresh_token, access_expires_at,
                 scopes, grant_kind, status, status_reason, status_changed_at, installed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', NULL, $12, $12)
             ON CONFLICT (workspace_id) DO UPDATE SET
                 workspace_name = excluded.workspace_name, url_key = excluded.url_key,
                 app_user_id = excluded.app_user_id, app_user_name = excluded.app_user_name,
                 oauth_client_id = excluded.oauth_client_id, access_token = excluded.access_token,
                 refresh_token = excluded.refresh_token,
                 access_expires_at = excluded.access_expires_at, scopes = excluded.scopes,
                 grant_kind = excluded.grant_kind, status = 'active', status_reason = NULL,
                 status_changed_at = excluded.status_changed_at,
                 installed_at = excluded.installed_at, refreshed_at = NULL, revoked_at = NULL,
                 refresh_lease_owner = NULL, refresh_lease_until = NULL,
                 token_version = installations.token_version + 1
             RETURNING *",
        )
        .bind(ws)
        .bind(&new.workspace_name)
        .bind(&new.url_key)
        .bind(&new.app_user_id)
        .bind(&new.app_user_name)
        .bind(&new.oauth_client_id)
        .bind(&access)
        .bind(&refresh)
        .bind(new.tokens.access_expires_at)
        .bind(Json(&new.scopes))
        .bind(new.grant.as_str())
        .bind(now)
        .fetch_one(p)
        .await?);
        self.open_installation(row)
    }

    /// Every installation with its tokens decrypted, by workspace name.
    /// Fails as a whole with [`SecretError::WrongKey`] when a row was sealed
    /// with a key this store does not have.
    pub async fn list_installations(&self) -> Result<Vec<Installation>> {
        self.keys()?;
        let rows: Vec<InstallationRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM installations ORDER BY workspace_name, workspace_id",
        )
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|r| self.open_installation(r))
            .collect()
    }

    /// Every installation without its tokens (status output, `doctor`, the
    /// dashboard): needs no key.
    pub async fn list_installation_infos(&self) -> Result<Vec<InstallationInfo>> {
        let rows: Vec<InstallationRow> = on_read_pool!(self, p => sqlx::query_as(
            "SELECT * FROM installations ORDER BY workspace_name, workspace_id",
        )
        .fetch_all(p)
        .await?);
        rows.iter().map(InstallationRow::info).collect()
    }

    /// One installation, tokens decrypted.
    pub async fn get_installation(&self, workspace_id: &str) -> Result<Option<Installation>> {
        self.keys()?;
        self.installation_row(workspace_id)
            .await?
            .map(|r| self.open_installation(r))
            .transpose()
    }

    /// An installation's current tokens and `token_version`: a replica that
    /// lost the refresh race (or whose version is older) reloads these.
    pub async fn installation_tokens(&self, workspace_id: &str) -> Result<Option<CurrentTokens>> {
        Ok(self
            .get_installation(workspace_id)
            .await?
            .map(|i| CurrentTokens {
                tokens: i.tokens,
                token_version: i.info.token_version,
                status: i.info.status,
            }))
    }

    /// Takes the refresh lease of an `active` installation for `owner` until
    /// `now + lease`, if it is free, expired or already `owner`'s. One
    /// statement that takes the lease when it may and returns the row as it
    /// is afterwards, so the answer (held, held by whom, not active) is read
    /// from the same atomic step that decided it: SQLite's single writer,
    /// PostgreSQL's row lock with the condition evaluated on the row version
    /// that won. Of any number of contenders exactly one holds it, and none
    /// is ever told to try again because the lease changed hands between a
    /// failed take and a later read. The holder gets the refresh token as
    /// stored at that moment. `owner` must be unique per refresh attempt (or
    /// per replica with single-flight inside it). A contender that finds the
    /// lease held rewrites the row unchanged; waiting is rare and polls
    /// slowly, so that write is cheap next to a refresh.
    pub async fn begin_refresh(
        &self,
        workspace_id: &str,
        owner: &str,
        lease: Duration,
        now: UnixMillis,
    ) -> Result<RefreshLease> {
        self.keys()?;
        let until = now.saturating_add(lease_ms(lease));
        let row: Option<InstallationRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE installations SET
                 refresh_lease_owner = CASE WHEN status = 'active'
                       AND (refresh_lease_owner IS NULL OR refresh_lease_until <= $4
                            OR refresh_lease_owner = $2)
                     THEN $2 ELSE refresh_lease_owner END,
                 refresh_lease_until = CASE WHEN status = 'active'
                       AND (refresh_lease_owner IS NULL OR refresh_lease_until <= $4
                            OR refresh_lease_owner = $2)
                     THEN $3 ELSE refresh_lease_until END
             WHERE workspace_id = $1
             RETURNING *",
        )
        .bind(workspace_id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(p)
        .await?);
        let row = row.ok_or_else(|| not_found(workspace_id))?;
        let info = row.info()?;
        if info.status != InstallationStatus::Active {
            return Ok(RefreshLease::NotActive(info.status));
        }
        match (info.refresh_lease_owner, info.refresh_lease_until) {
            (Some(holder), Some(_)) if holder == owner => {
                match self.open_installation(row) {
                    Ok(installation) => Ok(RefreshLease::Held {
                        installation: Box::new(installation),
                        until,
                    }),
                    Err(e) => {
                        // Without readable tokens there is nothing to refresh
                        // with; do not keep others waiting for the lease.
                        self.abandon_refresh(workspace_id, owner).await?;
                        Err(e)
                    }
                }
            }
            (Some(holder), Some(held_until)) => Ok(RefreshLease::HeldElsewhere {
                owner: holder,
                until: held_until,
            }),
            // The statement above sets and clears both columns together.
            (holder, held_until) => Err(StoreError::Corrupt(format!(
                "installation {workspace_id}: refresh lease owner {holder:?} with expiry {held_until:?}"
            ))),
        }
    }

    /// Commits the tokens a refresh returned — the new refresh token (when
    /// `tokens.refresh_token` is `None`, as for `client_credentials`, the
    /// stored one is kept) and the new access token in one statement — bumps
    /// `token_version`, sets `refreshed_at` and releases the lease. Fenced
    /// by `owner`: `Conflict` when the lease was taken over or released (by
    /// a reconnect), so a stale refresher never overwrites newer tokens. An
    /// expired lease that nobody took over still commits: the tokens were
    /// already spent at Linear, and storing them is the only way to keep the
    /// installation working. Call it before using the new access token.
    pub async fn finish_refresh(
        &self,
        workspace_id: &str,
        owner: &str,
        tokens: &OAuthTokens,
        now: UnixMillis,
    ) -> Result<Installation> {
        let keys = self.keys()?;
        let access = keys.seal(
            tokens.access_token.expose_secret(),
            &token_aad(workspace_id, ACCESS),
        );
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|t| keys.seal(t.expose_secret(), &token_aad(workspace_id, REFRESH)));
        let row: Option<InstallationRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE installations SET access_token = $3,
                 refresh_token = COALESCE($4, refresh_token), access_expires_at = $5,
                 refreshed_at = $6, token_version = token_version + 1,
                 refresh_lease_owner = NULL, refresh_lease_until = NULL
             WHERE workspace_id = $1 AND refresh_lease_owner = $2
             RETURNING *",
        )
        .bind(workspace_id)
        .bind(owner)
        .bind(&access)
        .bind(&refresh)
        .bind(tokens.access_expires_at)
        .bind(now)
        .fetch_optional(p)
        .await?);
        match row {
            Some(row) => self.open_installation(row),
            None => Err(self.lease_conflict(workspace_id, owner).await),
        }
    }

    /// Releases `owner`'s refresh lease without changing tokens (the refresh
    /// failed before Linear answered, or was not needed after all). Returns
    /// whether `owner` held it.
    pub async fn abandon_refresh(&self, workspace_id: &str, owner: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE installations SET refresh_lease_owner = NULL, refresh_lease_until = NULL
             WHERE workspace_id = $1 AND refresh_lease_owner = $2",
        )
        .bind(workspace_id)
        .bind(owner)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Sets an installation's status and the reason shown with it (e.g.
    /// `needs_reconnect` after `invalid_grant`). `status_changed_at` moves
    /// only when the status changes; `revoked_at` is set on the first move
    /// to `revoked`. Needs no key and no lease: any replica may record it.
    pub async fn set_installation_status(
        &self,
        workspace_id: &str,
        status: InstallationStatus,
        reason: Option<&str>,
        now: UnixMillis,
    ) -> Result<InstallationInfo> {
        let row: Option<InstallationRow> = on_pool!(self, p => sqlx::query_as(
            "UPDATE installations SET
                 status_changed_at = CASE WHEN status = $2 THEN status_changed_at ELSE $4 END,
                 revoked_at = CASE WHEN $2 = 'revoked' THEN COALESCE(revoked_at, $4)
                                   ELSE revoked_at END,
                 status = $2, status_reason = $3
             WHERE workspace_id = $1
             RETURNING *",
        )
        .bind(workspace_id)
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .fetch_optional(p)
        .await?);
        row.ok_or_else(|| not_found(workspace_id))?.info()
    }

    /// Records that the app was uninstalled from the workspace (the
    /// `OAuthApp` `revoked` webhook): status `revoked` with a reason that
    /// says how to come back.
    pub async fn mark_revoked(
        &self,
        workspace_id: &str,
        now: UnixMillis,
    ) -> Result<InstallationInfo> {
        self.set_installation_status(
            workspace_id,
            InstallationStatus::Revoked,
            Some("the app was uninstalled from this Linear workspace; run `cyrus linear connect` to install it again"),
            now,
        )
        .await
    }

    /// Rewrites every token (and pending PKCE verifier) that is not sealed
    /// with the current key, reading it with the previous key (see the
    /// rotation note in [`crate::SecretKey`]'s module). Returns how many
    /// rows were rewritten. Each rewrite is conditional on the row's tokens
    /// being unchanged, so a refresh committed meanwhile (already under the
    /// current key, when every replica was restarted with it) is never
    /// overwritten; such rows are simply re-read.
    pub async fn reencrypt_installations(&self) -> Result<u64> {
        let keys = self.keys()?;
        let mut rewritten = 0;
        for _ in 0..REENCRYPT_PASSES {
            let rows: Vec<(String, String, Option<String>, i64)> = on_pool!(self, p => sqlx::query_as(
                "SELECT workspace_id, access_token, refresh_token, token_version FROM installations",
            )
            .fetch_all(p)
            .await?);
            let stale: Vec<_> = rows
                .into_iter()
                .filter(|(_, a, r, _)| {
                    !keys.is_current(a) || r.as_deref().is_some_and(|r| !keys.is_current(r))
                })
                .collect();
            if stale.is_empty() {
                break;
            }
            for (ws, access, refresh, version) in stale {
                let reseal = |stored: &str, column: &str| -> Result<String> {
                    let aad = token_aad(&ws, column);
                    let plain = keys.open(stored, &aad, &format!("{column} of workspace {ws}"))?;
                    Ok(keys.seal(plain.expose_secret(), &aad))
                };
                let new_access = reseal(&access, ACCESS)?;
                let new_refresh = refresh.as_deref().map(|r| reseal(r, REFRESH)).transpose()?;
                rewritten += on_pool!(self, p => sqlx::query(
                    "UPDATE installations SET access_token = $2, refresh_token = $3
                     WHERE workspace_id = $1 AND token_version = $4 AND access_token = $5",
                )
                .bind(&ws)
                .bind(&new_access)
                .bind(&new_refresh)
                .bind(version)
                .bind(&access)
                .execute(p)
                .await?
                .rows_affected());
            }
        }
        Ok(rewritten + self.reencrypt_pending_authorizations().await?)
    }

    async fn installation_row(&self, workspace_id: &str) -> Result<Option<InstallationRow>> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM installations WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_optional(p)
        .await?))
    }

    fn open_installation(&self, row: InstallationRow) -> Result<Installation> {
        let keys = self.keys()?;
        let ws = &row.workspace_id;
        let access_token = keys.open(
            &row.access_token,
            &token_aad(ws, ACCESS),
            &format!("access token of workspace {ws}"),
        )?;
        let refresh_token = row
            .refresh_token
            .as_deref()
            .map(|r| {
                keys.open(
                    r,
                    &token_aad(ws, REFRESH),
                    &format!("refresh token of workspace {ws}"),
                )
            })
            .transpose()?;
        let info = row.info()?;
        Ok(Installation {
            tokens: OAuthTokens {
                access_token,
                refresh_token,
                access_expires_at: info.access_expires_at,
            },
            info,
        })
    }

    async fn lease_conflict(&self, workspace_id: &str, owner: &str) -> StoreError {
        match self.installation_row(workspace_id).await {
            Err(e) => e,
            Ok(None) => not_found(workspace_id),
            Ok(Some(r)) => match r.info() {
                Err(e) => e,
                Ok(info) => StoreError::Conflict(format!(
                    "installation {workspace_id}: the refresh lease is held by {:?}, not {owner} (taken over, or the workspace was reconnected); reload its tokens",
                    info.refresh_lease_owner
                )),
            },
        }
    }
}

fn not_found(workspace_id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "installation for Linear workspace {workspace_id} (run `cyrus linear connect`)"
    ))
}
