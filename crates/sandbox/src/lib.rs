//! Faithful local simulators of Codegen's REST API and Linear's GraphQL/Agent
//! API, with scripted outcomes and injected faults. Used by tests, benchmarks
//! and `cyrus demo`; never by production code paths.
//!
//! The simulators deliberately share no code with the crates they test
//! (`cyrus-codegen-executor`, `cyrus-linear`): they are written from the
//! upstream contracts in `../shared/contracts/`, so a misreading of a contract
//! in the client is not silently mirrored here.

pub mod codegen;
pub mod linear;
pub mod shared;
pub mod standalone;
