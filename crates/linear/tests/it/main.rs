//! Integration tests of `cyrus-linear` (one test binary).

mod client;
mod managed;
mod oauth;
mod schema;
mod sim;
mod uploads;
