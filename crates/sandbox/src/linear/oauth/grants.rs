//! The token endpoint's grants (`authorization_code` with PKCE,
//! `refresh_token` with rotation, `client_credentials`), revocation, token
//! checks for GraphQL, and what the control API does to installations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{
    ACCESS_TOKEN_LIFETIME, AccessToken, CLIENT_CREDENTIALS_LIFETIME, Installation, Issued,
    OAuthApp, OAuthError, OAuthServer, RefreshState, RefreshToken, TokenRequest, TokenResponse,
    parse_scopes, random_token,
};
use crate::linear::world::SimError;

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.6.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

const DEAD_REFRESH: &str = "The refresh token is invalid, expired, revoked or was already used.";

impl OAuthServer {
    // ---- tokens -----------------------------------------------------------

    /// `POST /oauth/token`. `organization_id` is where a `client_credentials`
    /// token goes (the install target); the other grants know theirs.
    pub fn token(
        &mut self,
        req: TokenRequest,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let grant = req.grant_type.clone().unwrap_or_default();
        let result = self.grant(req, organization_id, now);
        let counter = match grant.as_str() {
            "authorization_code" => &mut self.stats.authorization_code,
            "refresh_token" => &mut self.stats.refresh_token,
            "client_credentials" => &mut self.stats.client_credentials,
            _ => &mut self.stats.other,
        };
        counter.calls += 1;
        if let Err(e) = &result {
            counter.failed += 1;
            if e.error == "invalid_grant" {
                counter.invalid_grant += 1;
            }
        }
        result
    }

    fn client(&self, req: &TokenRequest) -> Result<OAuthApp, OAuthError> {
        let Some((id, secret)) = &req.client else {
            return Err(OAuthError::new(
                "invalid_client",
                "Client authentication is required: client_id and client_secret in the form, or HTTP Basic.",
            ));
        };
        match self.app(id) {
            Some(app) if &app.client_secret == secret => Ok(app.clone()),
            _ => Err(OAuthError::new(
                "invalid_client",
                "Client authentication failed: unknown client_id or wrong client_secret.",
            )),
        }
    }

    fn grant(
        &mut self,
        req: TokenRequest,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let grant = req
            .grant_type
            .clone()
            .ok_or_else(|| OAuthError::new("invalid_request", "Missing grant_type."))?;
        if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant.as_str())
        {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("Unsupported grant_type {grant}."),
            ));
        }
        let app = self.client(&req)?;
        match grant.as_str() {
            "authorization_code" => self.exchange_code(req, &app, now),
            "refresh_token" => self.rotate(req, &app, now),
            _ => self.client_credentials(req, &app, organization_id, now),
        }
    }

    fn exchange_code(
        &mut self,
        req: TokenRequest,
        app: &OAuthApp,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let invalid = || {
            OAuthError::new(
                "invalid_grant",
                "The authorization code is invalid, expired or was already used.",
            )
        };
        let code_value = req
            .code
            .ok_or_else(|| OAuthError::new("invalid_request", "Missing code."))?;
        let code = self.codes.get_mut(&code_value).ok_or_else(invalid)?;
        if code.client_id != app.client_id {
            return Err(invalid());
        }
        if code.used {
            // RFC 6749 §4.1.2: a replayed code revokes what it granted.
            let issued = std::mem::take(&mut code.issued);
            for t in issued {
                self.revoke_value(&t);
            }
            return Err(invalid());
        }
        if now >= code.expires_at {
            return Err(invalid());
        }
        if req.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(OAuthError::new(
                "invalid_grant",
                "redirect_uri does not match the one of the authorization request.",
            ));
        }
        match (&code.challenge, &req.code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if !(43..=128).contains(&verifier.len()) || &s256(verifier) != challenge {
                    return Err(OAuthError::new(
                        "invalid_grant",
                        "code_verifier does not match the code_challenge.",
                    ));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "Missing code_verifier: the authorization request sent a code_challenge.",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "code_verifier sent, but the authorization request had no code_challenge.",
                ));
            }
            (None, None) => {}
        }
        code.used = true;
        let installation = code.installation.clone();
        let scopes = code.scopes.clone();
        if !self.active(&installation) {
            return Err(invalid());
        }
        let issued = self.issue(&installation, &app.client_id, scopes, true, now);
        if let Some(code) = self.codes.get_mut(&code_value) {
            code.issued.push(issued.response.access_token.clone());
            code.issued.extend(issued.response.refresh_token.clone());
        }
        Ok(issued)
    }

    fn rotate(
        &mut self,
        req: TokenRequest,
        app: &OAuthApp,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let value = req
            .refresh_token
            .ok_or_else(|| OAuthError::new("invalid_request", "Missing refresh_token."))?;
        let dead = || OAuthError::new("invalid_grant", DEAD_REFRESH);
        let token = self.refresh.get(&value).ok_or_else(dead)?;
        if token.client_id != app.client_id || token.state != RefreshState::Live {
            return Err(dead());
        }
        let installation = token.installation.clone();
        if !self.active(&installation) {
            return Err(dead());
        }
        let mut scopes = token.scopes.clone();
        if let Some(raw) = req.scope.as_deref() {
            let asked = parse_scopes(Some(raw)).map_err(|e| OAuthError::new("invalid_scope", e))?;
            if asked.iter().any(|s| !scopes.contains(s)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "A refresh cannot widen the granted scopes.",
                ));
            }
            scopes = asked;
        }
        if let Some(t) = self.refresh.get_mut(&value) {
            t.state = RefreshState::Spent;
        }
        Ok(self.issue(&installation, &app.client_id, scopes, true, now))
    }

    fn client_credentials(
        &mut self,
        req: TokenRequest,
        app: &OAuthApp,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        if !app.client_credentials {
            return Err(OAuthError::new(
                "unauthorized_client",
                "The client_credentials grant is not enabled for this application.",
            ));
        }
        let scopes =
            parse_scopes(req.scope.as_deref()).map_err(|e| OAuthError::new("invalid_scope", e))?;
        if scopes.iter().any(|s| s == "admin") {
            return Err(OAuthError::new(
                "invalid_scope",
                "The admin scope cannot be granted to an app token.",
            ));
        }
        let installation = self.install(organization_id, &app.client_id, &scopes, now);
        Ok(self.issue(&installation, &app.client_id, scopes, false, now))
    }

    fn active(&self, installation: &str) -> bool {
        self.installations
            .iter()
            .any(|i| i.id == installation && i.revoked_at.is_none())
    }

    /// A new access token (24 h with a refresh token, else 30 days).
    fn issue(
        &mut self,
        installation: &str,
        client_id: &str,
        scopes: Vec<String>,
        with_refresh: bool,
        now: DateTime<Utc>,
    ) -> Issued {
        let lifetime = if with_refresh {
            ACCESS_TOKEN_LIFETIME
        } else {
            CLIENT_CREDENTIALS_LIFETIME
        };
        let access_token = random_token("lin_oauth_");
        self.access.insert(
            access_token.clone(),
            AccessToken {
                installation: installation.to_string(),
                expires_at: now + lifetime,
                revoked: false,
            },
        );
        let refresh_token = with_refresh.then(|| {
            let value = random_token("lin_refresh_");
            self.refresh.insert(
                value.clone(),
                RefreshToken {
                    installation: installation.to_string(),
                    client_id: client_id.to_string(),
                    scopes: scopes.clone(),
                    state: RefreshState::Live,
                    access_token: access_token.clone(),
                },
            );
            value
        });
        let organization_id = self
            .installations
            .iter()
            .find(|i| i.id == installation)
            .map(|i| i.organization_id.clone())
            .unwrap_or_default();
        Issued {
            response: TokenResponse {
                access_token,
                token_type: "Bearer",
                // Linear's example answers 86399 for a 24-hour token.
                expires_in: lifetime.num_seconds() - 1,
                scope: scopes.join(" "),
                refresh_token,
            },
            organization_id,
            client_id: client_id.to_string(),
        }
    }

    /// The organization a live access token acts in.
    pub fn authenticate(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let t = self.access.get(token)?;
        if t.revoked || now >= t.expires_at {
            return None;
        }
        self.installations
            .iter()
            .find(|i| i.id == t.installation && i.revoked_at.is_none())
            .map(|i| i.organization_id.clone())
    }

    /// `POST /oauth/revoke`: revokes an access or refresh token (a refresh
    /// token takes its access token with it). Unknown tokens are ignored,
    /// as RFC 7009 §2.2 asks.
    pub fn revoke(
        &mut self,
        token: &str,
        client: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        self.stats.revoke += 1;
        if client.is_some() {
            let app = self.client(&TokenRequest {
                client,
                ..TokenRequest::default()
            })?;
            let owner = self
                .access
                .get(token)
                .map(|t| t.installation.clone())
                .or_else(|| self.refresh.get(token).map(|t| t.installation.clone()))
                .and_then(|i| self.installations.iter().find(|x| x.id == i))
                .map(|i| i.client_id.clone());
            if owner.is_some_and(|o| o != app.client_id) {
                return Ok(());
            }
        }
        self.revoke_value(token);
        Ok(())
    }

    fn revoke_value(&mut self, token: &str) {
        if let Some(t) = self.access.get_mut(token) {
            t.revoked = true;
        }
        if let Some(t) = self.refresh.get_mut(token) {
            t.state = RefreshState::Revoked;
            let access = t.access_token.clone();
            if let Some(a) = self.access.get_mut(&access) {
                a.revoked = true;
            }
        }
    }

    // ---- control ----------------------------------------------------------

    /// Uninstalls `client_id` from the organization: every token of the
    /// installation stops working. Errors when it is not installed.
    pub fn revoke_installation(
        &mut self,
        organization_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let inst = self
            .installations
            .iter_mut()
            .find(|i| {
                i.organization_id == organization_id
                    && i.client_id == client_id
                    && i.revoked_at.is_none()
            })
            .ok_or_else(|| {
                SimError::Invalid(format!(
                    "app {client_id} is not installed in organization {organization_id}"
                ))
            })?;
        inst.revoked_at = Some(now);
        let id = inst.id.clone();
        for t in self.access.values_mut().filter(|t| t.installation == id) {
            t.revoked = true;
        }
        for t in self.refresh.values_mut().filter(|t| t.installation == id) {
            if t.state == RefreshState::Live {
                t.state = RefreshState::Revoked;
            }
        }
        Ok(())
    }

    /// Makes one refresh token dead, as if Linear had lost it; `false` if it
    /// was not live.
    pub fn kill_refresh_token(&mut self, token: &str) -> bool {
        match self.refresh.get_mut(token) {
            Some(t) if t.state == RefreshState::Live => {
                t.state = RefreshState::Killed;
                true
            }
            _ => false,
        }
    }

    /// Kills every live refresh token of the organization's installations;
    /// returns how many.
    pub fn kill_refresh_tokens(&mut self, organization_id: &str) -> usize {
        let ids: Vec<String> = self
            .installations
            .iter()
            .filter(|i| i.organization_id == organization_id)
            .map(|i| i.id.clone())
            .collect();
        let mut n = 0;
        for t in self.refresh.values_mut() {
            if ids.contains(&t.installation) && t.state == RefreshState::Live {
                t.state = RefreshState::Killed;
                n += 1;
            }
        }
        n
    }

    pub fn installations(&self, now: DateTime<Utc>) -> Vec<Installation> {
        self.installations
            .iter()
            .map(|i| Installation {
                id: i.id.clone(),
                organization_id: i.organization_id.clone(),
                client_id: i.client_id.clone(),
                scopes: i.scopes.clone(),
                installed_at: i.installed_at,
                revoked_at: i.revoked_at,
                live_access_tokens: self
                    .access
                    .values()
                    .filter(|t| t.installation == i.id && !t.revoked && now < t.expires_at)
                    .count(),
                live_refresh_tokens: self
                    .refresh
                    .values()
                    .filter(|t| t.installation == i.id && t.state == RefreshState::Live)
                    .count(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
