//! OAuth authorizations in flight: the CSRF `state` (stored as a hash) and
//! the PKCE verifier (sealed), taken exactly once by the callback.

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::connect::on_pool;
use crate::{
    NewPendingAuthorization, PendingAuthorization, Result, Store, TakeAuthorization, UnixMillis,
};

/// How long an expired or used authorization is kept, so that a late
/// callback is told "expired" or "already used" rather than "unknown".
const KEEP_AFTER_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

/// The state is looked up by hash: a database dump yields no usable state.
fn state_hash(state: &str) -> String {
    hex::encode(Sha256::new().chain_update(state.as_bytes()).finalize())
}

fn verifier_aad(state_hash: &str) -> String {
    format!("cyrus oauth_pending {state_hash} code_verifier")
}

impl Store {
    /// Stores an authorization the CLI is about to send the user to, and
    /// forgets those that expired more than a day ago.
    pub async fn insert_pending_authorization(&self, new: &NewPendingAuthorization) -> Result<()> {
        let keys = self.keys()?;
        let hash = state_hash(new.state.expose_secret());
        let verifier = keys.seal(new.code_verifier.expose_secret(), &verifier_aad(&hash));
        on_pool!(self, p => {
            sqlx::query("DELETE FROM oauth_pending WHERE expires_at < $1")
                .bind(new.created_at.saturating_sub(KEEP_AFTER_EXPIRY_MS))
                .execute(p)
                .await?;
            sqlx::query(
                "INSERT INTO oauth_pending (state_hash, code_verifier, redirect_uri,
                     additional_workspace, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&hash)
            .bind(&verifier)
            .bind(&new.redirect_uri)
            .bind(new.additional_workspace)
            .bind(new.created_at)
            .bind(new.expires_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Takes the authorization a callback's `state` names, at most once
    /// (atomic: of two callbacks racing with one state, one wins). An
    /// expired, already used or unknown state is told apart.
    pub async fn take_pending_authorization(
        &self,
        state: &str,
        now: UnixMillis,
    ) -> Result<TakeAuthorization> {
        let keys = self.keys()?;
        let hash = state_hash(state);
        let taken: Option<(String, String, bool, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "UPDATE oauth_pending SET consumed_at = $2
             WHERE state_hash = $1 AND consumed_at IS NULL AND expires_at > $2
             RETURNING code_verifier, redirect_uri, additional_workspace, created_at, expires_at",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(p)
        .await?);
        if let Some((verifier, redirect_uri, additional_workspace, created_at, expires_at)) = taken
        {
            let code_verifier = keys.open(&verifier, &verifier_aad(&hash), "PKCE code verifier")?;
            return Ok(TakeAuthorization::Taken(PendingAuthorization {
                code_verifier,
                redirect_uri,
                additional_workspace,
                created_at,
                expires_at,
            }));
        }
        let seen: Option<(Option<i64>, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT consumed_at, expires_at FROM oauth_pending WHERE state_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(p)
        .await?);
        Ok(match seen {
            None => TakeAuthorization::Unknown,
            Some((Some(used_at), _)) => TakeAuthorization::AlreadyUsed { used_at },
            Some((None, expired_at)) => TakeAuthorization::Expired { expired_at },
        })
    }

    /// Reseals pending verifiers that are not under the current key (part
    /// of [`Store::reencrypt_installations`]).
    pub(crate) async fn reencrypt_pending_authorizations(&self) -> Result<u64> {
        let keys = self.keys()?;
        let rows: Vec<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT state_hash, code_verifier FROM oauth_pending WHERE consumed_at IS NULL",
        )
        .fetch_all(p)
        .await?);
        let mut rewritten = 0;
        for (hash, stored) in rows.into_iter().filter(|(_, v)| !keys.is_current(v)) {
            let aad = verifier_aad(&hash);
            let plain = keys.open(&stored, &aad, "PKCE code verifier")?;
            rewritten += on_pool!(self, p => sqlx::query(
                "UPDATE oauth_pending SET code_verifier = $2 WHERE state_hash = $1 AND code_verifier = $3",
            )
            .bind(&hash)
            .bind(keys.seal(plain.expose_secret(), &aad))
            .bind(&stored)
            .execute(p)
            .await?
            .rows_affected());
        }
        Ok(rewritten)
    }
}
