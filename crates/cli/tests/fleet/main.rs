//! Slow tests that run several real `cyrus start` processes: crashes at
//! random moments (issue #5) and a PostgreSQL fleet losing a replica
//! (issue #8). One binary, so they share the harness and build once.

mod crash;
mod replicas;
mod support;
