//! Linear's OAuth server (`linear-agent-api.md` §1): registered apps, the
//! consent step, authorization codes with PKCE, installations, and the
//! token grants with their lifetimes and refresh-token rotation.
//!
//! This module holds state and rules only; `oauth_http` speaks HTTP and
//! `oauth_control` lets tests steer it. Every rule takes `now` from the
//! simulator's compressible clock, so a 24-hour token can expire in a test.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::world::SimError;

/// Access tokens of apps created from 2025-10-01 last 24 hours.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(24);
/// A `client_credentials` app token lasts 30 days.
pub const CLIENT_CREDENTIALS_LIFETIME: Duration = Duration::days(30);
/// How long an authorization code can be exchanged. Linear does not say;
/// RFC 6749 §4.1.2 recommends at most ten minutes **(inferred)**.
pub const CODE_LIFETIME: Duration = Duration::minutes(10);

/// Scopes Linear documents for apps; anything else is `invalid_scope`.
const KNOWN_SCOPES: &[&str] = &[
    "read",
    "write",
    "issues:create",
    "comments:create",
    "admin",
    "app:assignable",
    "app:mentionable",
];

/// A registered OAuth application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    /// Exact matches, except that a loopback URI registered without a port
    /// (`http://127.0.0.1/oauth/callback`) matches any port, as RFC 8252
    /// §7.3 asks of servers **(inferred for Linear)**.
    pub redirect_uris: Vec<String>,
    /// Whether the `client_credentials` grant is enabled for the app.
    pub client_credentials: bool,
}

impl Default for OAuthApp {
    /// The simulator's default app: loopback callbacks on any port, and
    /// `client_credentials` enabled so tests need no setup.
    fn default() -> Self {
        OAuthApp {
            client_id: "9f3e1c7a5b2d4e6f8a0b1c2d3e4f5a6b".into(),
            client_secret: "sim_oauth_client_secret_0000000000000000".into(),
            name: "cyrus".into(),
            redirect_uris: vec![
                "http://127.0.0.1/oauth/callback".into(),
                "http://localhost/oauth/callback".into(),
            ],
            client_credentials: true,
        }
    }
}

/// What the control API takes to register an app; ids and the secret are
/// generated when omitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewOAuthApp {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub client_credentials: bool,
}

/// What `/oauth/authorize` does with a valid request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Consent {
    /// The admin approves at once: 302 to `redirect_uri?code=…&state=…`.
    #[default]
    Approve,
    /// The admin declines at once: 302 with `error=access_denied`.
    Deny,
    /// The request waits until the control API approves or denies it.
    Hold,
}

/// The query of `GET /oauth/authorize`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub actor: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
}

/// A consent waiting for the control API (only with [`Consent::Hold`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingAuthorization {
    pub id: String,
    pub client_id: String,
    pub organization_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    /// `consent` when the app asked to show the consent screen again.
    pub prompt: Option<String>,
    pub pkce: bool,
}

/// How the simulator answers an authorize request.
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted, so there is nowhere to
    /// redirect: an error page (HTTP 400).
    Refused(String),
    /// 302 to this URL (with a code or an OAuth error).
    Redirect(Redirect),
    /// Wait for the control API's decision.
    Held(oneshot::Receiver<Redirect>),
}

/// A redirect back to the app, and the install it completed if any.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub location: String,
    /// Set when an admin approved: the organization the app is now
    /// installed in, with the app's client id.
    pub installed: Option<(String, String)>,
}

/// An app installed in an organization.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Installation {
    pub id: String,
    pub organization_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub installed_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Access tokens neither expired nor revoked, now.
    pub live_access_tokens: usize,
    /// Refresh tokens not yet spent, killed or revoked.
    pub live_refresh_tokens: usize,
}

/// Calls to `/oauth/token` for one grant type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantCalls {
    pub calls: u64,
    /// Answered with an OAuth error.
    pub failed: u64,
    /// Of the failed, those answered `invalid_grant`.
    pub invalid_grant: u64,
}

/// Token-endpoint traffic by grant type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenStats {
    pub authorization_code: GrantCalls,
    pub refresh_token: GrantCalls,
    pub client_credentials: GrantCalls,
    /// A missing or unsupported `grant_type`.
    pub other: GrantCalls,
    /// Calls to `/oauth/revoke`.
    pub revoke: u64,
}

/// The success body of `/oauth/token`.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An RFC 6749 §5.2 error: `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = if error == "invalid_client" { 401 } else { 400 };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

/// The form fields of `/oauth/token`, and the client credentials found in
/// the form or the `Authorization: Basic` header.
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client: Option<(String, String)>,
}

/// A grant the token endpoint issued, and the organization it is for.
pub struct Issued {
    pub response: TokenResponse,
    pub organization_id: String,
    pub client_id: String,
}

/// A held consent and the PKCE challenge its code will need.
struct Held {
    view: PendingAuthorization,
    challenge: Option<String>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<String>,
    installation: String,
    expires_at: DateTime<Utc>,
    used: bool,
    /// Access and refresh tokens issued from it, revoked if it is replayed.
    issued: Vec<String>,
}

struct AccessToken {
    installation: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    Live,
    /// Used once; rotation handed out its successor.
    Spent,
    /// Made dead by the control API.
    Killed,
    Revoked,
}

struct RefreshToken {
    installation: String,
    client_id: String,
    scopes: Vec<String>,
    state: RefreshState,
    /// The access token issued alongside, revoked with it.
    access_token: String,
}

struct InstallationRecord {
    id: String,
    organization_id: String,
    client_id: String,
    scopes: Vec<String>,
    installed_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Every app, consent, code, installation and token of the simulator.
pub struct OAuthServer {
    apps: Vec<OAuthApp>,
    pub consent: Consent,
    /// The organization installs go to; `None`: the first one.
    pub install_target: Option<String>,
    pending: Vec<Held>,
    waiters: HashMap<String, oneshot::Sender<Redirect>>,
    codes: HashMap<String, Code>,
    installations: Vec<InstallationRecord>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    pub stats: TokenStats,
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    )
}

/// Linear takes comma-separated scopes (`read,write`); spaces are accepted
/// too. `read` is always granted.
fn parse_scopes(raw: Option<&str>) -> Result<Vec<String>, String> {
    let mut scopes = vec!["read".to_string()];
    for s in raw
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
    {
        if !KNOWN_SCOPES.contains(&s) {
            return Err(format!("Unknown scope: {s}"));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    Ok(scopes)
}

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

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.6.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OAuthServer {
    pub fn new(default_app: OAuthApp) -> OAuthServer {
        OAuthServer {
            apps: vec![default_app],
            consent: Consent::default(),
            install_target: None,
            pending: vec![],
            waiters: HashMap::new(),
            codes: HashMap::new(),
            installations: vec![],
            access: HashMap::new(),
            refresh: HashMap::new(),
            stats: TokenStats::default(),
        }
    }

    pub fn apps(&self) -> Vec<OAuthApp> {
        self.apps.clone()
    }

    fn app(&self, client_id: &str) -> Option<&OAuthApp> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    pub fn register_app(&mut self, input: NewOAuthApp) -> Result<OAuthApp, SimError> {
        let client_id = input
            .client_id
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
        if self.app(&client_id).is_some() {
            return Err(SimError::Invalid(format!(
                "an app with client id {client_id} is already registered"
            )));
        }
        for uri in &input.redirect_uris {
            url::Url::parse(uri)
                .map_err(|e| SimError::Invalid(format!("redirect URI {uri:?}: {e}")))?;
        }
        let app = OAuthApp {
            client_id,
            client_secret: input
                .client_secret
                .unwrap_or_else(|| random_token("sim_secret_")),
            name: input.name.unwrap_or_else(|| "app".into()),
            redirect_uris: input.redirect_uris,
            client_credentials: input.client_credentials,
        };
        self.apps.push(app.clone());
        Ok(app)
    }

    pub fn add_redirect_uri(&mut self, client_id: &str, uri: &str) -> Result<(), SimError> {
        url::Url::parse(uri)
            .map_err(|e| SimError::Invalid(format!("redirect URI {uri:?}: {e}")))?;
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.client_id == client_id)
            .ok_or_else(|| SimError::not_found("OAuthApplication", client_id))?;
        if !app.redirect_uris.iter().any(|u| u == uri) {
            app.redirect_uris.push(uri.to_string());
        }
        Ok(())
    }

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
    fn install(
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

    #[test]
    fn scopes_always_include_read_and_refuse_unknown_ones() {
        assert_eq!(
            parse_scopes(Some("write,app:assignable")).unwrap(),
            ["read", "write", "app:assignable"]
        );
        assert_eq!(parse_scopes(Some("read write")).unwrap(), ["read", "write"]);
        assert!(parse_scopes(Some("read,everything")).is_err());
    }
}
