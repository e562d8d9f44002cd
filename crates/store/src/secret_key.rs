//! The key that encrypts OAuth tokens at rest, and the sealing of values
//! with it, so a database dump alone never yields a usable token.
//!
//! Values are sealed with XChaCha20-Poly1305 (RustCrypto), a fresh random
//! 24-byte nonce per value, and stored as `v1:<key id>:<base64(nonce ‖
//! ciphertext)>`. The associated data names the row and the column the value
//! belongs to, so a value copied into another row (or from the access-token
//! column into the refresh-token column) does not decrypt. The key id is a
//! short hash of the key: a database opened with the wrong key says which
//! key it needs instead of failing as garbage.
//!
//! # Rotating the key
//!
//! Cyrus encrypts OAuth tokens with the key in `CYRUS_SECRET_KEY` (base64 of
//! 32 random bytes, e.g. `openssl rand -base64 32`) or, when that is unset,
//! with a key file it creates on first use beside the SQLite database (mode
//! 0600; Cyrus refuses a key file that group or others can read). Back the
//! key up with the database: without it the stored installations cannot be
//! read and every workspace must be connected again. To rotate, generate a
//! new key, then restart every replica with `CYRUS_SECRET_KEY` set to the
//! new key and `CYRUS_SECRET_KEY_PREVIOUS` set to the old one: the old key
//! is only used to decrypt, and every token written from then on (each
//! refresh) uses the new key. Run the re-encryption
//! (`Store::reencrypt_installations`) once to rewrite the remaining values
//! with the new key; when it reports nothing left under the old key, remove
//! `CYRUS_SECRET_KEY_PREVIOUS` and restart again. Each stored value names
//! the id of its key, so a replica started with the wrong key reports
//! "this database was encrypted with key <id>" rather than failing
//! obscurely.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

/// The environment variable holding the current key.
pub const SECRET_KEY_ENV: &str = "CYRUS_SECRET_KEY";
/// The environment variable holding the previous key during a rotation.
pub const PREVIOUS_SECRET_KEY_ENV: &str = "CYRUS_SECRET_KEY_PREVIOUS";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const FORMAT: &str = "v1";
const GENERATE_HINT: &str = "generate one with `openssl rand -base64 32`";

/// Why a key could not be loaded or a sealed value could not be opened.
/// Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key text is not base64 of exactly 32 bytes.
    #[error(
        "{origin} is not a valid secret key ({problem}): it must be base64 of 32 random bytes; {GENERATE_HINT}"
    )]
    MalformedKey { origin: String, problem: String },
    /// An existing key file is readable by group or others.
    #[error("the secret key file {} is readable by group or others (mode {mode:03o}); run `chmod 600 {}`", path.display(), path.display())]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    /// The key file could not be read or created.
    #[error("cannot use the secret key file {}: {source}; set {SECRET_KEY_ENV} instead or fix the file's directory", path.display())]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store was asked for tokens without a key ([`crate::Store::with_secret_keys`]).
    #[error(
        "OAuth tokens are encrypted and this store was opened without the secret key; set {SECRET_KEY_ENV} or use the key file beside the database"
    )]
    NoKey,
    /// The value was sealed with a key this process does not have.
    #[error("this database was encrypted with key {stored}, {current_origin} is {current}{}; set {SECRET_KEY_ENV} to the key with id {stored} (or {PREVIOUS_SECRET_KEY_ENV}, during a rotation)",
        previous.as_ref().map(|p| format!(" and {PREVIOUS_SECRET_KEY_ENV} is {p}")).unwrap_or_default())]
    WrongKey {
        stored: String,
        current: String,
        current_origin: String,
        previous: Option<String>,
    },
    /// The key matches but the value does not authenticate: it was altered
    /// or copied from another row.
    #[error(
        "the stored {what} does not decrypt with key {key_id}: it was altered or copied from another row; connect the workspace again"
    )]
    Tampered { what: String, key_id: String },
    /// The stored text is not a sealed value at all.
    #[error("the stored {what} is not an encrypted value (expected `{FORMAT}:<key id>:<data>`)")]
    Malformed { what: String },
}

/// A 32-byte encryption key. Its bytes never appear in `Debug` output; only
/// its id does.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Arc<SecretBox<[u8; KEY_LEN]>>,
    id: String,
    origin: String,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} from {})", self.id, self.origin)
    }
}

/// Where [`SecretKey::from_env_or_file`] found the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// From `CYRUS_SECRET_KEY`.
    Env,
    /// From the key file; `created` when this call generated it (tell the
    /// operator to back it up).
    File { path: PathBuf, created: bool },
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&key);
        SecretKey::from_bytes(bytes, "a generated key")
    }

    /// Parses base64 of 32 bytes. `origin` names where the text came from,
    /// for messages (e.g. `CYRUS_SECRET_KEY`).
    pub fn from_base64(text: &str, origin: &str) -> Result<SecretKey, SecretError> {
        let malformed = |problem: String| SecretError::MalformedKey {
            origin: origin.to_string(),
            problem,
        };
        let decoded = BASE64
            .decode(text.trim())
            .map_err(|e| malformed(format!("not base64: {e}")))?;
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| malformed(format!("{} bytes instead of {KEY_LEN}", decoded.len())))?;
        Ok(SecretKey::from_bytes(bytes, origin))
    }

    /// The key as base64, e.g. to print a key the operator asked to generate.
    pub fn to_base64(&self) -> SecretString {
        BASE64.encode(self.bytes.expose_secret()).into()
    }

    /// Short, stable identifier of the key (not secret: a hash prefix).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key from `CYRUS_SECRET_KEY` if set, else from `key_file`,
    /// creating that file (mode 0600) with a new key on first use.
    pub fn from_env_or_file(key_file: &Path) -> Result<(SecretKey, KeySource), SecretError> {
        let env = std::env::var(SECRET_KEY_ENV).ok();
        SecretKey::from_value_or_file(env.as_deref(), key_file)
    }

    /// Like [`SecretKey::from_env_or_file`] with the environment value passed
    /// in (`None` or empty: use the file).
    pub fn from_value_or_file(
        env_value: Option<&str>,
        key_file: &Path,
    ) -> Result<(SecretKey, KeySource), SecretError> {
        match env_value.filter(|v| !v.trim().is_empty()) {
            Some(text) => Ok((
                SecretKey::from_base64(text, SECRET_KEY_ENV)?,
                KeySource::Env,
            )),
            None => {
                let (key, created) = load_or_create_key_file(key_file)?;
                Ok((
                    key,
                    KeySource::File {
                        path: key_file.to_path_buf(),
                        created,
                    },
                ))
            }
        }
    }

    /// The key file Cyrus uses beside a SQLite database (`<database>.key`);
    /// `None` for PostgreSQL and in-memory databases, which need
    /// `CYRUS_SECRET_KEY`.
    pub fn default_file_for(database_url: &str) -> Option<PathBuf> {
        let rest = database_url.strip_prefix("sqlite:")?;
        if rest.contains(":memory:") || rest.contains("mode=memory") {
            return None;
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or(path);
        (!path.is_empty()).then(|| PathBuf::from(format!("{path}.key")))
    }

    fn from_bytes(bytes: [u8; KEY_LEN], origin: &str) -> SecretKey {
        let digest = Sha256::new()
            .chain_update(b"cyrus secret key id\0")
            .chain_update(bytes)
            .finalize();
        SecretKey {
            id: hex::encode(&digest[..4]),
            bytes: Arc::new(SecretBox::new(Box::new(bytes))),
            origin: origin.to_string(),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.expose_secret().into())
    }
}

/// Reads an existing key file (refusing one that group or others can read)
/// or creates it atomically: the new key is written to a private temporary
/// file that is then hard-linked into place, so a concurrent starter never
/// sees a half-written key and two starters agree on one key.
fn load_or_create_key_file(path: &Path) -> Result<(SecretKey, bool), SecretError> {
    let io = |source| SecretError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    let origin = format!("the key file {}", path.display());
    let mut created = false;
    if !path.exists() {
        let key = SecretKey::generate();
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io)?;
        let written = file
            .write_all(key.to_base64().expose_secret().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all());
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => created = true,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::KeyFileTooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = SecretString::from(std::fs::read_to_string(path).map_err(io)?);
    Ok((
        SecretKey::from_base64(text.expose_secret(), &origin)?,
        created,
    ))
}

/// The current key (seals and opens) and, during a rotation, the previous
/// one (only opens).
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretKey,
    previous: Option<SecretKey>,
}

impl Keyring {
    /// A keyring; `previous` is only ever used to decrypt.
    pub fn new(current: SecretKey, previous: Option<SecretKey>) -> Keyring {
        Keyring { current, previous }
    }

    /// The current key from `CYRUS_SECRET_KEY` or `key_file` (see
    /// [`SecretKey::from_env_or_file`]) and the previous one from
    /// `CYRUS_SECRET_KEY_PREVIOUS` if set.
    pub fn from_env_or_file(key_file: &Path) -> Result<(Keyring, KeySource), SecretError> {
        let (current, source) = SecretKey::from_env_or_file(key_file)?;
        let previous = match std::env::var(PREVIOUS_SECRET_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => {
                Some(SecretKey::from_base64(&text, PREVIOUS_SECRET_KEY_ENV)?)
            }
            _ => None,
        };
        Ok((Keyring::new(current, previous), source))
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// The decrypt-only previous key, if any.
    pub fn previous(&self) -> Option<&SecretKey> {
        self.previous.as_ref()
    }

    /// Encrypts `plain` for the place named by `aad` (row and column).
    pub(crate) fn seal(&self, plain: &str, aad: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // Encryption only fails for messages beyond ~256 GiB.
            .expect("XChaCha20-Poly1305 encryption of a token");
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        format!("{FORMAT}:{}:{}", self.current.id, BASE64.encode(data))
    }

    /// Decrypts a value sealed for `aad`; `what` names it in errors.
    pub(crate) fn open(
        &self,
        stored: &str,
        aad: &str,
        what: &str,
    ) -> Result<SecretString, SecretError> {
        let malformed = || SecretError::Malformed {
            what: what.to_string(),
        };
        let mut parts = stored.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let key = self.key_with_id(key_id)?;
        let data = BASE64.decode(data).map_err(|_| malformed())?;
        if data.len() < NONCE_LEN {
            return Err(malformed());
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| malformed())?;
        let plain = key
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered {
                what: what.to_string(),
                key_id: key_id.to_string(),
            })?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| malformed())
    }

    /// True when `stored` was sealed with the current key.
    pub(crate) fn is_current(&self, stored: &str) -> bool {
        sealed_key_id(stored) == Some(self.current.id.as_str())
    }

    fn key_with_id(&self, id: &str) -> Result<&SecretKey, SecretError> {
        if self.current.id == id {
            return Ok(&self.current);
        }
        match &self.previous {
            Some(p) if p.id == id => Ok(p),
            _ => Err(SecretError::WrongKey {
                stored: id.to_string(),
                current: self.current.id.clone(),
                current_origin: self.current.origin.clone(),
                previous: self.previous.as_ref().map(|p| p.id.clone()),
            }),
        }
    }
}

/// The key id a sealed value names.
fn sealed_key_id(stored: &str) -> Option<&str> {
    let mut parts = stored.splitn(3, ':');
    (parts.next() == Some(FORMAT))
        .then(|| parts.next())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_with_their_key() {
        let ring = Keyring::new(SecretKey::generate(), None);
        let a = ring.seal("lin_oauth_secret", "installation:org1:access_token");
        let b = ring.seal("lin_oauth_secret", "installation:org1:access_token");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("lin_oauth_secret"));
        let opened = ring
            .open(&a, "installation:org1:access_token", "token")
            .unwrap();
        assert_eq!(opened.expose_secret(), "lin_oauth_secret");
        assert!(matches!(
            ring.open(&a, "installation:org2:access_token", "token"),
            Err(SecretError::Tampered { .. })
        ));
        let other = Keyring::new(SecretKey::generate(), None);
        let err = other
            .open(&a, "installation:org1:access_token", "token")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(ring.current().id()) && text.contains(other.current().id()),
            "{text}"
        );
        assert!(matches!(
            ring.open("plain", "x", "token"),
            Err(SecretError::Malformed { .. })
        ));
    }

    #[test]
    fn keys_parse_and_hide_their_bytes() {
        let key = SecretKey::generate();
        let text = key.to_base64();
        let again = SecretKey::from_base64(text.expose_secret(), SECRET_KEY_ENV).unwrap();
        assert_eq!(key.id(), again.id());
        assert!(!format!("{key:?}").contains(text.expose_secret()));
        let err = SecretKey::from_base64("c2hvcnQ=", SECRET_KEY_ENV).unwrap_err();
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        assert!(SecretKey::from_base64("!!!", SECRET_KEY_ENV).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_refused_when_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cyrus.db.key");
        let (first, source) = SecretKey::from_value_or_file(None, &path).unwrap();
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: true
            }
        );
        let (second, source) = SecretKey::from_value_or_file(Some(""), &path).unwrap();
        assert_eq!(first.id(), second.id(), "the file is reused");
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: false
            }
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SecretKey::from_value_or_file(None, &path).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        let env = SecretKey::generate();
        let (from_env, source) =
            SecretKey::from_value_or_file(Some(env.to_base64().expose_secret()), &path).unwrap();
        assert_eq!((from_env.id(), source), (env.id(), KeySource::Env));
    }

    #[test]
    fn default_key_file_sits_beside_the_sqlite_database() {
        assert_eq!(
            SecretKey::default_file_for("sqlite:///var/lib/cyrus/cyrus.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/cyrus/cyrus.db.key"))
        );
        assert_eq!(
            SecretKey::default_file_for("sqlite://data/cyrus.db"),
            Some(PathBuf::from("data/cyrus.db.key"))
        );
        assert_eq!(SecretKey::default_file_for("sqlite::memory:"), None);
        assert_eq!(SecretKey::default_file_for("postgres://h/db"), None);
    }
}
