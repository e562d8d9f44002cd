//! Linear's OAuth 2.0 server, from the client side: the install URL (with
//! `actor=app`, PKCE and a CSRF `state`), the token endpoint's grants and
//! revocation, and their errors classified by what the caller must do.
//!
//! An agent only receives agent sessions when it is an OAuth application
//! installed with `actor=app`; this module is everything needed to install it
//! and keep its tokens alive. Storing the tokens, and making sure only one
//! replica refreshes an installation at a time, is the caller's job (see
//! [`crate::client::TokenSource`]).

mod authorize;
mod error;
mod grant;
mod pkce;

pub use authorize::{AuthorizeRequest, DEFAULT_SCOPES, OAuthEndpoints, random_state};
pub use error::OAuthError;
pub use grant::{OAuthClient, TokenGrant};
pub use pkce::{InvalidVerifier, Pkce};
