//! Calls to Linear's token and revoke endpoints (form-encoded POSTs), with
//! bounded retries of transient failures.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::authorize::{AuthorizeRequest, OAuthEndpoints};
use super::error::OAuthError;
use crate::client::OAuthTokens;

/// What the token endpoint granted.
#[derive(Clone)]
pub struct TokenGrant {
    pub access_token: SecretString,
    /// Spent on use: each refresh answers a new one, which must be committed
    /// before the new access token is used. `None` for client credentials.
    pub refresh_token: Option<SecretString>,
    /// `expires_in` counted from when the answer arrived (wall clock).
    pub expires_at: Option<DateTime<Utc>>,
    /// The raw `expires_in`, for callers running on another clock.
    pub expires_in: Option<Duration>,
    /// What Linear granted (it may differ from what was asked).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl From<TokenGrant> for OAuthTokens {
    fn from(g: TokenGrant) -> Self {
        OAuthTokens {
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            expires_at: g.expires_at,
        }
    }
}

/// One OAuth application (client id and secret) talking to one OAuth server.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: SecretString,
    endpoints: OAuthEndpoints,
    retry: ExponentialBuilder,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A client with a 15 s timeout and up to 3 retries of transient failures.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretString,
        endpoints: OAuthEndpoints,
    ) -> Result<Self, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("cyrus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OAuthError::Protocol {
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            client_id: client_id.into(),
            client_secret,
            endpoints,
            retry: retry_policy(3, Duration::from_millis(500), Duration::from_secs(10)),
        })
    }

    /// Replaces the retry policy for transient failures.
    pub fn with_retry(
        mut self,
        max_retries: usize,
        min_delay: Duration,
        max_delay: Duration,
    ) -> Self {
        self.retry = retry_policy(max_retries, min_delay, max_delay);
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn endpoints(&self) -> &OAuthEndpoints {
        &self.endpoints
    }

    /// The install URL for this app.
    pub fn authorize_url(&self, request: &AuthorizeRequest) -> Url {
        request.url(&self.endpoints, &self.client_id)
    }

    /// `authorization_code` with the PKCE verifier. `redirect_uri` must be the
    /// one in the authorize URL.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &SecretString,
    ) -> Result<TokenGrant, OAuthError> {
        self.grant(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
        ])
        .await
    }

    /// `refresh_token`. The old refresh token is spent once Linear answers;
    /// an [`OAuthError::InvalidGrant`] means it was already spent or revoked.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, OAuthError> {
        self.grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    /// `client_credentials` (if enabled on the app): a 30-day app token for
    /// the app's own workspace, without a refresh token; request a new one
    /// before it expires.
    pub async fn client_credentials(&self, scopes: &[String]) -> Result<TokenGrant, OAuthError> {
        let scope = scopes.join(",");
        self.grant(&[("grant_type", "client_credentials"), ("scope", &scope)])
            .await
    }

    /// Revokes an access token (uninstalling the app from that workspace).
    /// Sent both as Linear's documented `Authorization: Bearer` form and as
    /// RFC 7009's `token` parameter.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), OAuthError> {
        let form = self.form(&[
            ("token", token.expose_secret()),
            ("token_type_hint", "access_token"),
        ]);
        let bearer = format!("Bearer {}", token.expose_secret());
        let attempt = || async {
            let (status, body) = self
                .post(&self.endpoints.revoke, &form, Some(&bearer))
                .await?;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(OAuthError::from_response(status, &body))
            }
        };
        self.retried(attempt, "revoke").await
    }

    async fn grant(&self, params: &[(&str, &str)]) -> Result<TokenGrant, OAuthError> {
        let form = self.form(params);
        let grant_type = params[0].1;
        let attempt = || async {
            let (status, body) = self.post(&self.endpoints.token, &form, None).await?;
            if (200..300).contains(&status) {
                parse_grant(&body, Utc::now())
            } else {
                Err(OAuthError::from_response(status, &body))
            }
        };
        let result = self.retried(attempt, grant_type).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(OAuthError::InvalidGrant { .. }) => "invalid_grant",
            Err(OAuthError::Transient { .. }) => "transient_error",
            Err(_) => "error",
        };
        metrics::counter!("linear_oauth_grants_total", "grant_type" => grant_type.to_owned(), "outcome" => outcome)
            .increment(1);
        result
    }

    async fn retried<T, F, Fut>(&self, attempt: F, what: &str) -> Result<T, OAuthError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OAuthError>>,
    {
        attempt
            .retry(self.retry)
            .when(OAuthError::is_transient)
            .notify(|e, delay| {
                tracing::warn!(call = what, error = %e, ?delay, "retrying Linear OAuth call");
            })
            .await
    }

    /// The form body with the client's credentials as form fields (the
    /// method Linear documents for every grant). Kept secret: it holds the
    /// client secret and the token being exchanged.
    fn form(&self, params: &[(&str, &str)]) -> SecretString {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            s.append_pair(k, v);
        }
        s.append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose_secret());
        SecretString::from(s.finish())
    }

    async fn post(
        &self,
        url: &Url,
        form: &SecretString,
        bearer: Option<&str>,
    ) -> Result<(u16, Vec<u8>), OAuthError> {
        let mut request = self
            .http
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form.expose_secret().to_owned());
        if let Some(bearer) = bearer {
            request = request.header(reqwest::header::AUTHORIZATION, bearer);
        }
        let transient = |e: reqwest::Error| OAuthError::Transient {
            message: e.without_url().to_string(),
        };
        let response = request.send().await.map_err(transient)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transient)?;
        Ok((status, body.to_vec()))
    }
}

fn retry_policy(
    max_retries: usize,
    min_delay: Duration,
    max_delay: Duration,
) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(min_delay)
        .with_max_delay(max_delay)
        .with_max_times(max_retries)
        .with_jitter()
}

/// Reads a success answer: `{"access_token", "token_type", "expires_in",
/// "scope", "refresh_token"}`. `scope` is space-separated in Linear's
/// answers; commas are accepted too.
fn parse_grant(body: &[u8], now: DateTime<Utc>) -> Result<TokenGrant, OAuthError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        token_type: Option<String>,
        #[serde(default)]
        expires_in: Option<i64>,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        refresh_token: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| OAuthError::Protocol {
        // Never echo the body: it may hold a token.
        message: format!("token answer is not the expected JSON: {e}"),
    })?;
    if a.token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(OAuthError::Protocol {
            message: "token_type is not Bearer".into(),
        });
    }
    let expires_in = a
        .expires_in
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64));
    Ok(TokenGrant {
        access_token: SecretString::from(a.access_token),
        refresh_token: a
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        expires_at: expires_in
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d),
        expires_in,
        scopes: a
            .scope
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_answer_is_parsed_and_debug_hides_tokens() {
        let now = DateTime::from_timestamp(1_772_460_000, 0).unwrap();
        let g = parse_grant(
            br#"{"access_token":"acc-1","token_type":"Bearer","expires_in":86399,
                 "scope":"read write app:assignable","refresh_token":"ref-1"}"#,
            now,
        )
        .unwrap();
        assert_eq!(g.access_token.expose_secret(), "acc-1");
        assert_eq!(g.refresh_token.as_ref().unwrap().expose_secret(), "ref-1");
        assert_eq!(g.expires_at, Some(now + chrono::Duration::seconds(86399)));
        assert_eq!(g.scopes, ["read", "write", "app:assignable"]);
        let debug = format!("{g:?}");
        assert!(
            !debug.contains("acc-1") && !debug.contains("ref-1"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_answers_are_protocol_errors_without_the_body() {
        let e = parse_grant(br#"{"token":"secret-xyz"}"#, Utc::now()).unwrap_err();
        assert!(matches!(e, OAuthError::Protocol { .. }), "{e:?}");
        assert!(!e.to_string().contains("secret-xyz"));
        let e = parse_grant(br#"{"access_token":"a","token_type":"mac"}"#, Utc::now()).unwrap_err();
        assert!(matches!(e, OAuthError::Protocol { .. }));
        let g = parse_grant(br#"{"access_token":"a"}"#, Utc::now()).unwrap();
        assert!(g.refresh_token.is_none() && g.expires_at.is_none() && g.scopes.is_empty());
    }
}
