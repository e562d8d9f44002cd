//! Who may see the dashboard and its JSON API.
//!
//! On a loopback listener only this machine can connect, so no token is
//! needed. On any other address the dashboard shows repository names, issue
//! identifiers and spend, so it requires `server.dashboardToken`, presented as
//! `Authorization: Bearer …`, or once as `?token=…`, which sets a cookie (so a
//! phone's browser keeps working and the token leaves the address bar). With
//! no token configured on a public listener the dashboard is off.
//!
//! The cookie holds a digest of the token, not the token itself, and every
//! comparison is constant-time.

use crate::context::Ctx;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "cyrus_dashboard";
/// How long the cookie lasts: 30 days.
const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// What a request presents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presented {
    pub bearer: Option<String>,
    pub query_token: Option<String>,
    pub cookie: Option<String>,
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Loopback listener: no token needed.
    Open,
    /// A valid bearer token or cookie.
    Granted,
    /// A valid `?token=`: let it in and set the cookie.
    GrantedByQuery,
    /// Public listener without `server.dashboardToken`: the dashboard is off.
    Disabled,
    /// No token, or a wrong one.
    Unauthorized,
}

/// Whether the listener is reachable from other machines.
pub fn needs_token(listen: SocketAddr) -> bool {
    !listen.ip().is_loopback()
}

/// Decides a request. Pure, so every combination is tested directly.
pub fn check(listen: SocketAddr, token: Option<&SecretString>, presented: &Presented) -> Verdict {
    if !needs_token(listen) {
        return Verdict::Open;
    }
    let Some(token) = token else {
        return Verdict::Disabled;
    };
    let token = token.expose_secret();
    if presented
        .bearer
        .as_deref()
        .is_some_and(|b| equal(b.as_bytes(), token.as_bytes()))
    {
        return Verdict::Granted;
    }
    if presented
        .query_token
        .as_deref()
        .is_some_and(|q| equal(q.as_bytes(), token.as_bytes()))
    {
        return Verdict::GrantedByQuery;
    }
    if presented
        .cookie
        .as_deref()
        .is_some_and(|c| equal(c.as_bytes(), cookie_value(token).as_bytes()))
    {
        return Verdict::Granted;
    }
    Verdict::Unauthorized
}

/// The cookie's value for `token`: a digest, so the cookie jar never holds
/// the token itself.
pub fn cookie_value(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cyrus-dashboard-cookie\0");
    hasher.update(token.as_bytes());
    hex::encode(hasher.finalize())
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Reads the credentials a request carries.
pub fn presented(headers: &HeaderMap, query: Option<&str>) -> Presented {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_string());
    let query_token = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string());
    Presented {
        bearer,
        query_token,
        cookie,
    }
}

/// The axum middleware in front of the dashboard routes.
pub async fn require(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    let server = &ctx.config.server;
    let presented = presented(request.headers(), request.uri().query());
    match check(
        server.listen,
        server.dashboard_token.as_ref(),
        &presented,
    ) {
        Verdict::Open | Verdict::Granted => next.run(request).await,
        Verdict::GrantedByQuery => {
            let token = server
                .dashboard_token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                .unwrap_or_default();
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}",
                cookie_value(&token)
            );
            // The page is reloaded without the token so it leaves the
            // address bar and history; API calls are answered directly.
            let mut response = if request.uri().path() == "/" {
                Redirect::to("/").into_response()
            } else {
                next.run(request).await
            };
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Verdict::Disabled => (
            StatusCode::FORBIDDEN,
            "The dashboard is off: server.listen is not a loopback address and server.dashboardToken is not set.\n",
        )
            .into_response(),
        Verdict::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"cyrus\"")],
            "The dashboard needs server.dashboardToken: send `Authorization: Bearer <token>` or open /?token=<token> once.\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn loopback_needs_no_token_even_when_one_is_set() {
        for listen in ["127.0.0.1:3456", "[::1]:3456"] {
            assert_eq!(
                check(addr(listen), None, &Presented::default()),
                Verdict::Open
            );
            assert_eq!(
                check(addr(listen), Some(&secret("t")), &Presented::default()),
                Verdict::Open
            );
        }
    }

    #[test]
    fn a_public_listener_without_a_token_disables_the_dashboard() {
        let p = Presented {
            bearer: Some("anything".into()),
            ..Default::default()
        };
        assert_eq!(check(addr("0.0.0.0:3456"), None, &p), Verdict::Disabled);
        assert_eq!(check(addr("[::]:3456"), None, &p), Verdict::Disabled);
    }

    #[test]
    fn a_public_listener_takes_the_token_by_header_query_or_cookie() {
        let listen = addr("10.0.0.5:3456");
        let token = secret("s3cret");
        let with = |p: Presented| check(listen, Some(&token), &p);
        assert_eq!(with(Presented::default()), Verdict::Unauthorized);
        assert_eq!(
            with(Presented {
                bearer: Some("s3cret".into()),
                ..Default::default()
            }),
            Verdict::Granted
        );
        assert_eq!(
            with(Presented {
                bearer: Some("s3cre".into()),
                ..Default::default()
            }),
            Verdict::Unauthorized
        );
        assert_eq!(
            with(Presented {
                query_token: Some("s3cret".into()),
                ..Default::default()
            }),
            Verdict::GrantedByQuery
        );
        assert_eq!(
            with(Presented {
                cookie: Some(cookie_value("s3cret")),
                ..Default::default()
            }),
            Verdict::Granted
        );
        // The raw token is not a valid cookie: the cookie holds its digest.
        assert_eq!(
            with(Presented {
                cookie: Some("s3cret".into()),
                ..Default::default()
            }),
            Verdict::Unauthorized
        );
    }

    #[test]
    fn credentials_are_read_from_headers_query_and_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc ".parse().unwrap());
        headers.insert(
            header::COOKIE,
            "theme=dark; cyrus_dashboard=d1g; x=y".parse().unwrap(),
        );
        let p = presented(&headers, Some("a=1&token=q%20t"));
        assert_eq!(
            p,
            Presented {
                bearer: Some("abc".into()),
                query_token: Some("q t".into()),
                cookie: Some("d1g".into()),
            }
        );
        assert_eq!(presented(&HeaderMap::new(), None), Presented::default());
    }
}
