//! The cost model. Codegen reports no cost or tokens, so every figure here is an
//! estimate: tokens guessed from run logs, priced from the configured table.

use crate::MicroDollars;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Price of one model, in micro-dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub input_per_mtok: MicroDollars,
    pub output_per_mtok: MicroDollars,
}

/// `codegen.pricing` from the configuration: a price per model plus an optional
/// fee charged once per run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTable {
    pub models: BTreeMap<String, ModelPrice>,
    pub per_run: MicroDollars,
}
