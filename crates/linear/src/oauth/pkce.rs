//! Proof Key for Code Exchange (RFC 7636) with the `S256` method: the
//! authorize URL carries a hash of a random verifier, and only the holder of
//! the verifier can exchange the code, so a stolen code is useless.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A verifier and its `S256` challenge. The verifier is secret until the
/// code is exchanged; keep it (keyed by `state`) between the authorize
/// redirect and the callback.
#[derive(Clone)]
pub struct Pkce {
    verifier: SecretString,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// A stored verifier that RFC 7636 §4.1 would not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the PKCE verifier is invalid ({0}): it must be 43–128 characters of A–Z, a–z, 0–9, `-`, `.`, `_`, `~`; start the connection again to get a fresh one"
)]
pub struct InvalidVerifier(&'static str);

impl Pkce {
    /// The `code_challenge_method` this type produces.
    pub const METHOD: &'static str = "S256";

    /// A fresh verifier: 32 random bytes, base64url-encoded to 43 characters
    /// (the construction RFC 7636 §4.1 recommends).
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self::from_valid(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Rebuilds the pair from a stored verifier (the non-interactive
    /// `--print-url` / `--code` flow keeps it between two commands).
    pub fn from_verifier(verifier: SecretString) -> Result<Self, InvalidVerifier> {
        let v = verifier.expose_secret();
        if !(43..=128).contains(&v.len()) {
            return Err(InvalidVerifier("wrong length"));
        }
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(InvalidVerifier("character outside the unreserved set"));
        }
        Ok(Self::from_valid(v.to_owned()))
    }

    fn from_valid(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: SecretString::from(verifier),
            challenge,
        }
    }

    /// Sent to the token endpoint with the code.
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }

    /// `base64url-no-pad(sha256(verifier))`, sent in the authorize URL.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_vector() {
        let pkce = Pkce::from_verifier(SecretString::from(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        ))
        .unwrap();
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_valid_fresh_and_hidden() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        let v = a.verifier().expose_secret().to_owned();
        assert_eq!(v.len(), 43);
        // Round-trips through the validator, so it is in the unreserved set.
        let again = Pkce::from_verifier(SecretString::from(v.clone())).unwrap();
        assert_eq!(again.challenge(), a.challenge());
        assert_ne!(v, b.verifier().expose_secret());
        assert!(!format!("{a:?}").contains(&v));
    }

    #[test]
    fn invalid_verifiers_are_refused() {
        let short = SecretString::from("a".repeat(42));
        assert!(Pkce::from_verifier(short).is_err());
        let long = SecretString::from("a".repeat(129));
        assert!(Pkce::from_verifier(long).is_err());
        let bad = SecretString::from(format!("{}+", "a".repeat(42)));
        assert!(Pkce::from_verifier(bad).is_err());
        assert!(Pkce::from_verifier(SecretString::from("a~._-".repeat(9))).is_ok());
    }
}
