//! The sandbox crate's single integration-test binary.

mod codegen;
mod linear;
mod linear_oauth;
mod linear_sdk;
mod linear_webhooks;
