//! cyrus-codegen-executor
