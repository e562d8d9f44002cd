//! Integration tests of the Codegen client against the sandbox simulator.

mod client;
mod errors;
mod poller;
mod support;
