//! cyrus-edge-worker
