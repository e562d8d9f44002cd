//! The consent step: validating `/oauth/authorize`, holding, approving or
//! denying it, and the installation an approval creates.

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    AuthorizeOutcome, AuthorizeRequest, CODE_LIFETIME, Code, Consent, Held, InstallationRecord,
    OAuthServer, PendingAuthorization, Redirect, parse_scopes, random_token,
};
use crate::linear::world::SimError;

fn is_loopback(host: Option<&str>) -> bool {
    matches!(host, Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Whether `given` matches the registered `uri` (see [`OAuthApp`]).
fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    r.port().is_none()
        && is_loopback(r.host_str())
        && r.scheme() == g.scheme()
        && r.host_str() == g.host_str()
        && r.path() == g.path()
        && r.query() == g.query()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

impl OAuthServer {
    // ---- consent ----------------------------------------------------------

    /// Validates an authorize request for `organization_id` (where the
    /// admin installs it) and applies the current [`Consent`] mode.
    pub fn authorize(
        &mut self,
        req: AuthorizeRequest,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> AuthorizeOutcome {
        let Some(client_id) = req.client_id.clone() else {
            return AuthorizeOutcome::Refused("Missing client_id.".into());
        };
        let Some(app) = self.app(&client_id) else {
            return AuthorizeOutcome::Refused(format!(
                "Invalid client_id {client_id}: no OAuth application has it."
            ));
        };
        let Some(redirect_uri) = req.redirect_uri.clone() else {
            return AuthorizeOutcome::Refused("Missing redirect_uri.".into());
        };
        if !app
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, &redirect_uri))
        {
            return AuthorizeOutcome::Refused(format!(
                "Invalid redirect_uri {redirect_uri}: it is not one of the application's callback URLs."
            ));
        }
        let state = req.state.clone();
        let fail = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            AuthorizeOutcome::Redirect(Redirect {
                location: with_query(&redirect_uri, &pairs),
                installed: None,
            })
        };
        if req.response_type.as_deref() != Some("code") {
            return fail(
                "unsupported_response_type",
                "response_type must be \"code\".",
            );
        }
        if req.actor.as_deref() != Some("app") {
            // Linear also knows `actor=user`, but such a token acts as a
            // person, who is never delegated to: the simulator refuses it so
            // the mistake shows in tests.
            return fail(
                "invalid_request",
                "This simulator installs agents only: pass actor=app.",
            );
        }
        let scopes = match parse_scopes(req.scope.as_deref()) {
            Ok(s) => s,
            Err(e) => return fail("invalid_scope", &e),
        };
        if scopes.iter().any(|s| s == "admin") {
            return fail(
                "invalid_scope",
                "The admin scope cannot be requested with actor=app.",
            );
        }
        match (&req.code_challenge, req.code_challenge_method.as_deref()) {
            (None, None) | (Some(_), Some("S256")) => {}
            (Some(_), None | Some(_)) => {
                return fail(
                    "invalid_request",
                    "code_challenge_method must be S256 when a code_challenge is sent.",
                );
            }
            (None, Some(_)) => {
                return fail(
                    "invalid_request",
                    "code_challenge_method was sent without a code_challenge.",
                );
            }
        }
        if let Some(c) = &req.code_challenge
            && !(43..=128).contains(&c.len())
        {
            return fail(
                "invalid_request",
                "code_challenge must be 43 to 128 characters (BASE64URL of a SHA-256).",
            );
        }
        let pending = PendingAuthorization {
            id: Uuid::new_v4().to_string(),
            client_id,
            organization_id: organization_id.to_string(),
            redirect_uri,
            scopes,
            state,
            prompt: req.prompt.clone(),
            pkce: req.code_challenge.is_some(),
        };
        let challenge = req.code_challenge.clone();
        match self.consent {
            Consent::Approve => {
                AuthorizeOutcome::Redirect(self.approve_pending(pending, challenge, now))
            }
            Consent::Deny => AuthorizeOutcome::Redirect(deny_pending(&pending)),
            Consent::Hold => {
                let (tx, rx) = oneshot::channel();
                self.waiters.insert(pending.id.clone(), tx);
                self.pending.push(Held {
                    view: pending,
                    challenge,
                });
                AuthorizeOutcome::Held(rx)
            }
        }
    }

    pub fn pending(&self) -> Vec<PendingAuthorization> {
        self.pending.iter().map(|h| h.view.clone()).collect()
    }

    /// Decides a held consent; answers the waiting browser, if still there,
    /// and returns the redirect.
    pub fn decide(
        &mut self,
        pending_id: &str,
        approve: bool,
        now: DateTime<Utc>,
    ) -> Result<Redirect, SimError> {
        let idx = self
            .pending
            .iter()
            .position(|h| h.view.id == pending_id)
            .ok_or_else(|| SimError::not_found("PendingAuthorization", pending_id))?;
        let Held {
            view: pending,
            challenge,
        } = self.pending.remove(idx);
        let redirect = if approve {
            self.approve_pending(pending, challenge, now)
        } else {
            deny_pending(&pending)
        };
        if let Some(tx) = self.waiters.remove(pending_id) {
            let _ = tx.send(redirect.clone());
        }
        Ok(redirect)
    }

    /// Lets held requests finish (they answer 503) so the server can stop.
    pub fn release_waiters(&mut self) {
        self.waiters.clear();
    }

    fn approve_pending(
        &mut self,
        p: PendingAuthorization,
        challenge: Option<String>,
        now: DateTime<Utc>,
    ) -> Redirect {
        let installation = self.install(&p.organization_id, &p.client_id, &p.scopes, now);
        let code = random_token("");
        self.codes.insert(
            code.clone(),
            Code {
                client_id: p.client_id.clone(),
                redirect_uri: p.redirect_uri.clone(),
                scopes: p.scopes.clone(),
                challenge,
                installation,
                expires_at: now + CODE_LIFETIME,
                used: false,
                issued: vec![],
            },
        );
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &p.state {
            pairs.push(("state", s));
        }
        Redirect {
            location: with_query(&p.redirect_uri, &pairs),
            installed: Some((p.organization_id.clone(), p.client_id.clone())),
        }
    }

    /// Creates the installation, or renews a revoked one, with `scopes`.
    pub(super) fn install(
        &mut self,
        organization_id: &str,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> String {
        if let Some(i) = self
            .installations
            .iter_mut()
            .find(|i| i.organization_id == organization_id && i.client_id == client_id)
        {
            if i.revoked_at.is_some() {
                i.revoked_at = None;
                i.installed_at = now;
            }
            i.scopes = scopes.to_vec();
            return i.id.clone();
        }
        let id = Uuid::new_v4().to_string();
        self.installations.push(InstallationRecord {
            id: id.clone(),
            organization_id: organization_id.to_string(),
            client_id: client_id.to_string(),
            scopes: scopes.to_vec(),
            installed_at: now,
            revoked_at: None,
        });
        id
    }
}

fn deny_pending(p: &PendingAuthorization) -> Redirect {
    let mut pairs = vec![
        ("error", "access_denied"),
        ("error_description", "The user denied the request."),
    ];
    if let Some(s) = &p.state {
        pairs.push(("state", s));
    }
    Redirect {
        location: with_query(&p.redirect_uri, &pairs),
        installed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_only_when_registered_without_one() {
        let r = "http://127.0.0.1/oauth/callback";
        assert!(redirect_matches(r, "http://127.0.0.1:4567/oauth/callback"));
        assert!(!redirect_matches(r, "http://127.0.0.1:4567/other"));
        assert!(!redirect_matches(r, "http://evil.example/oauth/callback"));
        let fixed = "https://cyrus.example/oauth/callback";
        assert!(redirect_matches(fixed, fixed));
        assert!(!redirect_matches(
            fixed,
            "https://cyrus.example:8443/oauth/callback"
        ));
    }
}
