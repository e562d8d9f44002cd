//! Linear's OAuth server (`linear-agent-api.md` §1): registered apps, the
//! consent step, authorization codes with PKCE, installations, and the
//! token grants with their lifetimes and refresh-token rotation.
//!
//! This module holds the types and the registry of apps; `consent` and
//! `grants` hold the rules. `oauth_http` speaks HTTP and `oauth_control`
//! lets tests steer it. Every rule takes `now` from the
//! simulator's compressible clock, so a 24-hour token can expire in a test.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::world::SimError;

mod consent;
mod grants;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
