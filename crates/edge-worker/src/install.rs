//! Installing the Linear OAuth app in a workspace: the authorize URL (with a
//! stored CSRF `state` and PKCE verifier), the callback (state taken once,
//! code exchanged, the new token asked who it is, the installation stored
//! with its tokens encrypted) and the page the admin's browser is shown.
//!
//! Shared by `cyrus linear connect` (its loopback listener and `--code`) and
//! the worker's `GET /oauth/callback`, so both say the same things.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cyrus_core::config::Config;
use cyrus_linear::client::BoxFuture;
use cyrus_linear::oauth::{
    AuthorizeRequest, OAuthClient, OAuthEndpoints, OAuthError, Pkce, TokenGrant, random_state,
};
use cyrus_linear::{
    Credentials, Identity, LinearClient, LinearClientConfig, LinearError, TokenSource,
};
use cyrus_store::{
    GrantKind, KeySource, Keyring, NewInstallation, NewPendingAuthorization, OAuthTokens,
    SECRET_KEY_ENV, SecretError, SecretKey, Store, StoreError, TakeAuthorization, UnixMillis,
};
use secrecy::SecretString;

/// How long an authorize URL stays usable: enough to log in and approve.
pub const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

/// Assumed lifetimes when Linear's answer carries no `expires_in`.
const AUTHORIZATION_CODE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
const CLIENT_CREDENTIALS_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why connecting a workspace failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "the Linear OAuth app is not configured: {missing}. Create the app in Linear (Settings → API → OAuth applications) and set linear.oauth.clientId, linear.oauth.clientSecret and linear.oauth.redirectUrl in the configuration (or CYRUS_LINEAR_CLIENT_ID / CYRUS_LINEAR_CLIENT_SECRET); see docs/connect-linear.md"
    )]
    NotConfigured { missing: String },
    #[error(
        "linear.oauth.endpointBase `{url}` is not a usable URL ({problem}); remove it to use Linear's own OAuth server"
    )]
    BadEndpoint { url: String, problem: String },
    #[error(
        "this authorization was not started with this store (unknown state): it was forged, is from another machine's database, or the link was edited. Run `cyrus linear connect` again and open the new link"
    )]
    UnknownState,
    #[error(
        "this authorization link expired (links last 10 minutes). Run `cyrus linear connect` again and approve within 10 minutes"
    )]
    ExpiredState { expired_at: UnixMillis },
    #[error(
        "this authorization was already used (the callback was opened twice). If the workspace is not listed by `cyrus linear list`, run `cyrus linear connect` again"
    )]
    StateAlreadyUsed { used_at: UnixMillis },
    /// The consent was denied, or the code exchange or grant failed.
    #[error("{0}")]
    OAuth(#[from] OAuthError),
    #[error(
        "Linear accepted the installation but the new token could not ask who it is ({0}). Check linear.apiUrl, then run `cyrus linear connect` again"
    )]
    Identity(LinearError),
    #[error(
        "the store is PostgreSQL, so the key that encrypts Linear tokens must come from {SECRET_KEY_ENV}: generate one with `openssl rand -base64 32`, keep it safe, and set it for every replica and CLI command"
    )]
    NeedsSecretKey,
    #[error("{0}")]
    SecretKey(#[from] SecretError),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

/// The OAuth application from `linear.oauth`: what installs need.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    client: OAuthClient,
    redirect_url: String,
    scopes: Vec<String>,
}

impl OAuthApp {
    /// The app `config` describes, with Linear's endpoints unless
    /// `linear.oauth.endpointBase` names a simulator's.
    pub fn from_config(config: &Config) -> Result<OAuthApp, InstallError> {
        let Some(o) = &config.linear.oauth else {
            return Err(InstallError::NotConfigured {
                missing: "the configuration has no linear.oauth section".to_owned(),
            });
        };
        let endpoints = match &o.endpoint_base {
            None => OAuthEndpoints::default(),
            Some(base) => url::Url::parse(base)
                .and_then(|u| OAuthEndpoints::from_base(&u))
                .map_err(|e| InstallError::BadEndpoint {
                    url: base.clone(),
                    problem: e.to_string(),
                })?,
        };
        let client = OAuthClient::new(o.client_id.clone(), o.client_secret.clone(), endpoints)?;
        Ok(OAuthApp {
            client,
            redirect_url: o.redirect_url.clone(),
            scopes: o.scopes.clone(),
        })
    }

    pub fn client_id(&self) -> &str {
        self.client.client_id()
    }

    /// The registered callback (`linear.oauth.redirectUrl`).
    pub fn redirect_url(&self) -> &str {
        &self.redirect_url
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub fn endpoints(&self) -> &OAuthEndpoints {
        self.client.endpoints()
    }
}

/// What was connected (no tokens).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    pub workspace_name: String,
    pub url_key: String,
    pub workspace_id: String,
    pub app_user_name: String,
    pub app_user_id: String,
    /// What Linear granted (it may differ from what was asked).
    pub scopes: Vec<String>,
    /// When the access token expires (the worker refreshes it before).
    pub expires_at: UnixMillis,
    #[serde(serialize_with = "grant_name")]
    pub grant: GrantKind,
}

fn grant_name<S: serde::Serializer>(grant: &GrantKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(grant.as_str())
}

/// Starts an installation: stores a pending authorization (state hashed,
/// PKCE verifier sealed, 10 minutes) and answers the URL to open.
/// `prompt=consent` is sent for a further workspace, and whenever one is
/// installed already, so the admin gets to pick the workspace instead of
/// Linear silently re-approving the first.
pub async fn begin(
    store: &Store,
    app: &OAuthApp,
    additional_workspace: bool,
    now_ms: i64,
) -> Result<url::Url, InstallError> {
    let pkce = Pkce::generate();
    let state = random_state();
    let installed = !store.list_installation_infos().await?.is_empty();
    let prompt_consent = additional_workspace || installed;
    store
        .insert_pending_authorization(&NewPendingAuthorization {
            state: SecretString::from(state.clone()),
            code_verifier: pkce.verifier().clone(),
            redirect_uri: app.redirect_url.clone(),
            additional_workspace: prompt_consent,
            created_at: now_ms,
            expires_at: now_ms.saturating_add(PENDING_TTL_MS),
        })
        .await?;
    let mut request = AuthorizeRequest::new(app.redirect_url.clone(), state, &pkce);
    request.scopes = app.scopes.clone();
    request.prompt_consent = prompt_consent;
    Ok(app.client.authorize_url(&request))
}

/// Finishes an installation from the callback's `code` and `state`: takes
/// the state (once), exchanges the code with its PKCE verifier, asks Linear
/// who the new token is and stores the installation.
pub async fn complete(
    store: &Store,
    app: &OAuthApp,
    linear_api_url: &url::Url,
    code: &str,
    state: &str,
    now_ms: i64,
) -> Result<Connected, InstallError> {
    let pending = match store.take_pending_authorization(state, now_ms).await? {
        TakeAuthorization::Taken(p) => p,
        TakeAuthorization::Unknown => return Err(InstallError::UnknownState),
        TakeAuthorization::Expired { expired_at } => {
            return Err(InstallError::ExpiredState { expired_at });
        }
        TakeAuthorization::AlreadyUsed { used_at } => {
            return Err(InstallError::StateAlreadyUsed { used_at });
        }
    };
    let grant = app
        .client
        .exchange_code(code, &pending.redirect_uri, &pending.code_verifier)
        .await?;
    install(
        store,
        app,
        linear_api_url,
        grant,
        GrantKind::AuthorizationCode,
        now_ms,
    )
    .await
}

/// The `client_credentials` alternative for a single workspace (the app's
/// own): a 30-day app token without a refresh token, requested again by the
/// worker before it expires. The grant must be enabled on the app in Linear.
pub async fn client_credentials(
    store: &Store,
    app: &OAuthApp,
    linear_api_url: &url::Url,
    now_ms: i64,
) -> Result<Connected, InstallError> {
    let grant = app.client.client_credentials(&app.scopes).await?;
    install(
        store,
        app,
        linear_api_url,
        grant,
        GrantKind::ClientCredentials,
        now_ms,
    )
    .await
}

/// The error a callback carries instead of a code (`?error=access_denied`).
pub fn callback_error(error: &str, description: Option<&str>) -> InstallError {
    InstallError::OAuth(OAuthError::from_callback(error, description))
}

async fn install(
    store: &Store,
    app: &OAuthApp,
    linear_api_url: &url::Url,
    grant: TokenGrant,
    kind: GrantKind,
    now_ms: i64,
) -> Result<Connected, InstallError> {
    let identity = identity(linear_api_url, grant.access_token.clone()).await?;
    let ttl = grant.expires_in.unwrap_or(match kind {
        GrantKind::AuthorizationCode => AUTHORIZATION_CODE_TTL,
        GrantKind::ClientCredentials => CLIENT_CREDENTIALS_TTL,
    });
    let expires_at = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    // Linear answers the granted scopes; an answer without them granted
    // what was asked.
    let scopes = if grant.scopes.is_empty() {
        app.scopes.clone()
    } else {
        grant.scopes.clone()
    };
    let installation = store
        .connect_installation(
            &NewInstallation {
                workspace_id: identity.organization_id.clone(),
                workspace_name: identity.organization_name.clone(),
                url_key: identity.url_key.clone(),
                app_user_id: identity.app_user_id.clone(),
                app_user_name: identity.app_user_name.clone(),
                oauth_client_id: app.client_id().to_owned(),
                scopes: scopes.clone(),
                grant: kind,
                tokens: OAuthTokens {
                    access_token: grant.access_token,
                    refresh_token: grant.refresh_token,
                    access_expires_at: expires_at,
                },
            },
            now_ms,
        )
        .await?;
    tracing::info!(
        workspace = %installation.info.workspace_name,
        workspace_id = %installation.info.workspace_id,
        agent = %installation.info.app_user_name,
        grant = %kind,
        "Linear workspace connected"
    );
    Ok(Connected {
        workspace_name: identity.organization_name,
        url_key: identity.url_key,
        workspace_id: identity.organization_id,
        app_user_name: identity.app_user_name,
        app_user_id: identity.app_user_id,
        scopes,
        expires_at,
        grant: kind,
    })
}

/// `viewer` and `organization` as seen by a token just granted.
async fn identity(api_url: &url::Url, token: SecretString) -> Result<Identity, InstallError> {
    let mut config = LinearClientConfig::new(
        api_url.clone(),
        Credentials::Managed(Arc::new(JustGranted(token))),
    );
    config.max_retries = 2;
    let client = LinearClient::new(config).map_err(InstallError::Identity)?;
    client.identity().await.map_err(InstallError::Identity)
}

/// A token fresh from the token endpoint: nothing to refresh it with yet.
struct JustGranted(SecretString);

impl TokenSource for JustGranted {
    fn current(&self) -> BoxFuture<'_, Result<(SecretString, u64), LinearError>> {
        let token = self.0.clone();
        Box::pin(async move { Ok((token, 0)) })
    }

    fn refresh(&self, _stale_generation: u64) -> BoxFuture<'_, Result<bool, LinearError>> {
        Box::pin(async { Ok(false) })
    }
}

/// The keys that encrypt Linear tokens for the store at `store_url`:
/// `CYRUS_SECRET_KEY` if set, else (SQLite) the key file beside the
/// database, created with mode 0600 on first use. PostgreSQL has no file to
/// put it beside, so there the variable is required.
pub fn keyring_for(store_url: &str) -> Result<(Keyring, KeySource), InstallError> {
    let env_set = std::env::var(SECRET_KEY_ENV).is_ok_and(|v| !v.trim().is_empty());
    match SecretKey::default_file_for(store_url) {
        Some(file) => Ok(Keyring::from_env_or_file(&file)?),
        None if env_set => Ok(Keyring::from_env_or_file(Path::new(
            "/nonexistent/cyrus-secret-key-not-used",
        ))?),
        None => Err(InstallError::NeedsSecretKey),
    }
}

/// The page the admin's browser shows after the callback: what happened
/// and what to do, self-contained (no external assets).
pub fn page(result: &Result<Connected, InstallError>) -> String {
    let (title, body) = match result {
        Ok(c) => (
            "Cyrus is connected",
            maud::html! {
                h1 { "✓ Cyrus is connected to " (c.workspace_name) }
                p { "The agent " strong { (c.app_user_name) } " can now be delegated issues and @mentioned in "
                    a href=(format!("https://linear.app/{}", c.url_key)) { (c.workspace_name) } "." }
                p { "Scopes: " code { (c.scopes.join(", ")) } }
                p { "You can close this tab. " code { "cyrus linear list" } " shows every connected workspace." }
            },
        ),
        Err(e) => (
            "Cyrus could not connect",
            maud::html! {
                h1 { "✗ Cyrus could not connect to Linear" }
                p { (e.to_string()) }
                p { "Nothing was stored. You can close this tab." }
            },
        ),
    };
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
    .into_string()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1d21}\
main{max-width:40rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002}\
h1{font-size:1.4rem}code{background:#eef0f3;padding:0 .25rem;border-radius:3px}a{color:#4551b5}";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"{{"repositories": [{{"id": "r", "name": "r"}}],
                "codegen": {{"orgId": 1, "apiToken": "t"}},
                "linear": {{"webhookSecret": "s",
                  "oauth": {{"clientId": "cid", "clientSecret": "csec",
                             "redirectUrl": "http://127.0.0.1:8765/oauth/callback"{extra}}}}}}}"#
        );
        cyrus_core::config::parse(&text, &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    async fn store() -> Store {
        Store::connect("sqlite::memory:")
            .await
            .unwrap()
            .with_secret_keys(Keyring::new(SecretKey::generate(), None))
    }

    fn query(url: &url::Url) -> BTreeMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn app_needs_the_oauth_section_and_says_how_to_set_it() {
        let mut c = config("");
        c.linear.oauth = None;
        let e = OAuthApp::from_config(&c).unwrap_err().to_string();
        assert!(
            e.contains("linear.oauth.clientId") && e.contains("CYRUS_LINEAR_CLIENT_ID"),
            "{e}"
        );
        let app =
            OAuthApp::from_config(&config(r#", "endpointBase": "http://127.0.0.1:4000""#)).unwrap();
        assert_eq!(
            app.endpoints().token.as_str(),
            "http://127.0.0.1:4000/oauth/token"
        );
        assert_eq!(app.client_id(), "cid");
    }

    #[tokio::test]
    async fn begin_stores_a_state_that_complete_takes_once() {
        let store = store().await;
        let app =
            OAuthApp::from_config(&config(r#", "endpointBase": "http://127.0.0.1:9""#)).unwrap();
        let url = begin(&store, &app, false, 1_000).await.unwrap();
        let q = query(&url);
        assert_eq!(url.path(), "/oauth/authorize");
        assert_eq!(q["actor"], "app");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["scope"], "read,write,app:assignable,app:mentionable");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8765/oauth/callback");
        assert!(
            !q.contains_key("prompt"),
            "first workspace: no forced consent"
        );
        let state = q["state"].clone();

        let api: url::Url = "http://127.0.0.1:9/graphql".parse().unwrap();
        // The first callback takes the state; the exchange then fails
        // (nothing listens on port 9), which is not a state error.
        let first = complete(&store, &app, &api, "code", &state, 2_000)
            .await
            .unwrap_err();
        assert!(matches!(first, InstallError::OAuth(_)), "{first:?}");
        let again = complete(&store, &app, &api, "code", &state, 3_000)
            .await
            .unwrap_err();
        assert!(
            matches!(again, InstallError::StateAlreadyUsed { .. }),
            "{again:?}"
        );
        assert!(again.to_string().contains("cyrus linear connect"));
        let unknown = complete(&store, &app, &api, "code", "forged", 3_000)
            .await
            .unwrap_err();
        assert!(matches!(unknown, InstallError::UnknownState), "{unknown:?}");
        assert!(unknown.to_string().contains("cyrus linear connect"));

        let url = begin(&store, &app, true, 10_000).await.unwrap();
        let q = query(&url);
        assert_eq!(
            q["prompt"], "consent",
            "an additional workspace forces consent"
        );
        let late = 10_000 + PENDING_TTL_MS + 1;
        let expired = complete(&store, &app, &api, "code", &q["state"], late)
            .await
            .unwrap_err();
        assert!(
            matches!(expired, InstallError::ExpiredState { .. }),
            "{expired:?}"
        );
        assert!(expired.to_string().contains("expired"));
    }

    #[test]
    fn denied_consent_says_to_approve_and_pages_escape_text() {
        let e = callback_error("access_denied", Some("<script>x</script>"));
        assert!(e.to_string().contains("Approve"), "{e}");
        let html = page(&Err(e));
        assert!(html.contains("could not connect"));
        assert!(!html.contains("<script>"), "{html}");
        let ok = page(&Ok(Connected {
            workspace_name: "Acme".into(),
            url_key: "acme".into(),
            workspace_id: "org-1".into(),
            app_user_name: "Cyrus".into(),
            app_user_id: "u-1".into(),
            scopes: vec!["read".into()],
            expires_at: 0,
            grant: GrantKind::AuthorizationCode,
        }));
        assert!(
            ok.contains("connected to Acme") && ok.contains("Cyrus"),
            "{ok}"
        );
        assert!(ok.contains("https://linear.app/acme"), "{ok}");
        assert!(
            !ok.contains("<link") && !ok.contains("<script"),
            "self-contained"
        );
    }

    #[test]
    fn postgres_without_the_key_variable_is_a_clear_error() {
        if std::env::var(SECRET_KEY_ENV).is_ok() {
            return;
        }
        let e = keyring_for("postgres://u@h/db").unwrap_err();
        assert!(matches!(e, InstallError::NeedsSecretKey));
        assert!(e.to_string().contains("CYRUS_SECRET_KEY"));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let (_, source) = keyring_for(&format!("sqlite://{}", db.display())).unwrap();
        assert!(
            matches!(source, KeySource::File { created: true, .. }),
            "{source:?}"
        );
        assert!(dir.path().join("c.db.key").exists());
    }
}
