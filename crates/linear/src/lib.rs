//! cyrus-linear
