//! cyrus-store
