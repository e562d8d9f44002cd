//! The install URL a workspace admin opens, and where Linear's OAuth
//! endpoints live.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use super::pkce::Pkce;

/// What an agent needs: read and write, and to be delegated issues
/// (`app:assignable`) and @mentioned (`app:mentionable`). `admin` is refused
/// with `actor=app`.
pub const DEFAULT_SCOPES: &[&str] = &["read", "write", "app:assignable", "app:mentionable"];

/// Where Linear's OAuth server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    /// The consent page the admin opens (on `linear.app`, not the API host).
    pub authorize: Url,
    /// Every grant: code exchange, refresh, client credentials.
    pub token: Url,
    pub revoke: Url,
}

impl Default for OAuthEndpoints {
    /// Linear's production endpoints.
    fn default() -> Self {
        let url = |s: &str| Url::parse(s).expect("static URL");
        Self {
            authorize: url("https://linear.app/oauth/authorize"),
            token: url("https://api.linear.app/oauth/token"),
            revoke: url("https://api.linear.app/oauth/revoke"),
        }
    }
}

impl OAuthEndpoints {
    /// `<base>/oauth/authorize`, `<base>/oauth/token`, `<base>/oauth/revoke`:
    /// a simulator serving all three on one origin. A path in `base` is kept.
    pub fn from_base(base: &Url) -> Result<Self, url::ParseError> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            authorize: base.join("oauth/authorize")?,
            token: base.join("oauth/token")?,
            revoke: base.join("oauth/revoke")?,
        })
    }
}

/// A random CSRF `state` (32 bytes, base64url: 43 characters). Store it with
/// an expiry and accept a callback only when its `state` matches.
pub fn random_state() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The parameters of one install attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Must equal one of the app's registered callback URLs, and the
    /// `redirect_uri` later sent with the code.
    pub redirect_uri: String,
    pub state: String,
    /// [`Pkce::challenge`].
    pub code_challenge: String,
    /// Joined with commas, the separator Linear documents.
    pub scopes: Vec<String>,
    /// `prompt=consent`: show the consent screen even when the admin already
    /// granted these scopes, so they can pick a further workspace.
    pub prompt_consent: bool,
}

impl AuthorizeRequest {
    /// A request with [`DEFAULT_SCOPES`] and no forced consent.
    pub fn new(redirect_uri: impl Into<String>, state: impl Into<String>, pkce: &Pkce) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            state: state.into(),
            code_challenge: pkce.challenge().to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            prompt_consent: false,
        }
    }

    /// The URL to open. `actor=app` makes the installation its own workspace
    /// user (the only kind Linear sends agent sessions to).
    pub fn url(&self, endpoints: &OAuthEndpoints, client_id: &str) -> Url {
        let mut url = endpoints.authorize.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.scopes.join(","))
                .append_pair("state", &self.state)
                .append_pair("actor", "app")
                .append_pair("code_challenge", &self.code_challenge)
                .append_pair("code_challenge_method", Pkce::METHOD);
            if self.prompt_consent {
                q.append_pair("prompt", "consent");
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::SecretString;

    use super::*;

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    fn pkce() -> Pkce {
        Pkce::from_verifier(SecretString::from(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        ))
        .unwrap()
    }

    #[test]
    fn authorize_url_carries_every_parameter() {
        let req = AuthorizeRequest::new("http://127.0.0.1:8765/oauth/callback", "st-1", &pkce());
        let url = req.url(&OAuthEndpoints::default(), "client-1");
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://linear.app/oauth/authorize")
        );
        let q = query(&url);
        assert_eq!(q["client_id"], "client-1");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8765/oauth/callback");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "read,write,app:assignable,app:mentionable");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["actor"], "app");
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("prompt"));
        // The redirect URI is percent-encoded, not spliced in raw.
        assert!(url.as_str().contains("redirect_uri=http%3A%2F%2F127.0.0.1"));
    }

    #[test]
    fn scopes_are_configurable_and_consent_can_be_forced() {
        let mut req = AuthorizeRequest::new("https://cyrus.example/oauth/callback", "s", &pkce());
        req.scopes = vec!["read".into(), "issues:create".into()];
        req.prompt_consent = true;
        let q = query(&req.url(&OAuthEndpoints::default(), "c"));
        assert_eq!(q["scope"], "read,issues:create");
        assert_eq!(q["prompt"], "consent");
    }

    #[test]
    fn endpoints_from_a_simulator_base() {
        let e = OAuthEndpoints::from_base(&"http://127.0.0.1:4000".parse().unwrap()).unwrap();
        assert_eq!(
            e.authorize.as_str(),
            "http://127.0.0.1:4000/oauth/authorize"
        );
        assert_eq!(e.token.as_str(), "http://127.0.0.1:4000/oauth/token");
        assert_eq!(e.revoke.as_str(), "http://127.0.0.1:4000/oauth/revoke");
        let nested = OAuthEndpoints::from_base(&"http://h/linear".parse().unwrap()).unwrap();
        assert_eq!(nested.token.as_str(), "http://h/linear/oauth/token");
        let d = OAuthEndpoints::default();
        assert_eq!(d.token.as_str(), "https://api.linear.app/oauth/token");
        assert_eq!(d.revoke.as_str(), "https://api.linear.app/oauth/revoke");
    }

    #[test]
    fn states_are_random_and_url_safe() {
        let (a, b) = (random_state(), random_state());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
