//! Integration tests of `cyrus-linear` (one test binary).

mod client;
mod schema;
mod sim;
