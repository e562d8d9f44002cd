//! cyrus-bench tests: the webhook input properties (the `cargo fuzz`
//! targets' checks, driven by proptest so they run in `cargo test`) and
//! small runs of the scenarios.

mod prompt_corpus;
mod scenarios;
mod webhook_input;
