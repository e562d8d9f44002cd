//! The sandbox crate's single integration-test binary.

mod codegen;
