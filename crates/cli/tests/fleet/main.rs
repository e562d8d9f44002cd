//! Slow tests that run several real `cyrus start` processes: crashes at
//! random moments (issue #5), a PostgreSQL fleet losing a replica
//! (issue #8), and webhook intake under load and SIGKILL (issue #17). One
//! binary, so they share the harness and build once.

mod crash;
mod intake;
mod replicas;
mod support;
