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

/// Model key in [`PriceTable::models`] used for runs whose model is unknown or
/// not set (Codegen then picks the organization default, which it never
/// reports back).
pub const FALLBACK_MODEL_KEY: &str = "default";

/// Estimated tokens of one run, split the way providers bill them.
///
/// Method (see `docs/cost-estimation.md`): Codegen reports no usage, so tokens
/// are guessed from the run's log text at **4 characters per token, rounded up
/// per piece of text**. Text the model *wrote* (thoughts, tool inputs, the final
/// answer) counts as output tokens; text the model *read* (observations, tool
/// outputs, user messages) counts as input tokens. The prompt is input too.
/// This undercounts re-sent context, so the figure is a floor-ish estimate and
/// must always be labelled as one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEstimate {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Tokens for one piece of text: Unicode scalar values / 4, rounded up.
/// Characters rather than bytes so non-ASCII text is not tripled.
pub fn tokens_for_text(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

impl TokenEstimate {
    /// Counts text the model read (observation, tool output, prompt).
    pub fn add_input_text(&mut self, text: &str) {
        self.input_tokens = self.input_tokens.saturating_add(tokens_for_text(text));
    }

    /// Counts text the model wrote (thought, tool input, final answer).
    pub fn add_output_text(&mut self, text: &str) {
        self.output_tokens = self.output_tokens.saturating_add(tokens_for_text(text));
    }
}

/// Which price was used for an estimate, so displays can say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    /// The run's model has its own entry in the table.
    Model,
    /// Unknown or unset model: the `default` entry was used.
    FallbackEntry,
    /// Unknown or unset model and no `default` entry: the most expensive
    /// configured model was used, so the estimate errs high rather than low.
    MostExpensive,
    /// The table has no prices at all: only the per-run fee is counted.
    Unpriced,
}

impl PriceTable {
    /// The price for `model` and where it came from.
    ///
    /// Fallback order for an unknown or `None` model: the [`FALLBACK_MODEL_KEY`]
    /// entry, else the most expensive model (by output, then input price), else
    /// zero. Erring high keeps budget guards safe.
    pub fn price_for(&self, model: Option<&str>) -> (ModelPrice, PriceSource) {
        if let Some(price) = model.and_then(|m| self.models.get(m)) {
            return (*price, PriceSource::Model);
        }
        if let Some(price) = self.models.get(FALLBACK_MODEL_KEY) {
            return (*price, PriceSource::FallbackEntry);
        }
        match self
            .models
            .values()
            .max_by_key(|p| (p.output_per_mtok, p.input_per_mtok))
        {
            Some(price) => (*price, PriceSource::MostExpensive),
            None => (
                ModelPrice {
                    input_per_mtok: MicroDollars::ZERO,
                    output_per_mtok: MicroDollars::ZERO,
                },
                PriceSource::Unpriced,
            ),
        }
    }

    /// Prices a token estimate: `ceil(tokens × price / 1e6)` per direction in
    /// integer arithmetic, plus the per-run fee once. Always computed from the
    /// run's *total* tokens, never by summing rounded pieces, so repeated
    /// updates cannot drift.
    pub fn estimate(&self, model: Option<&str>, tokens: TokenEstimate) -> CostEstimate {
        let (price, source) = self.price_for(model);
        let part = |tokens: u64, per_mtok: MicroDollars| -> i64 {
            let micros = (u128::from(tokens) * per_mtok.0.max(0) as u128).div_ceil(1_000_000);
            i64::try_from(micros).unwrap_or(i64::MAX)
        };
        let amount = MicroDollars(part(tokens.input_tokens, price.input_per_mtok))
            + MicroDollars(part(tokens.output_tokens, price.output_per_mtok))
            + self.per_run;
        CostEstimate {
            tokens,
            amount,
            source,
        }
    }
}

/// An *estimated* cost. Its `Display` always says "estimate" so it can never
/// be mistaken for a billed figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostEstimate {
    pub tokens: TokenEstimate,
    pub amount: MicroDollars,
    pub source: PriceSource,
}

impl std::fmt::Display for CostEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "~{} (estimate: {} input + {} output tokens)",
            self.amount, self.tokens.input_tokens, self.tokens.output_tokens
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        let mut models = BTreeMap::new();
        // $3 / $15 per million tokens.
        models.insert(
            "sonnet".to_string(),
            ModelPrice {
                input_per_mtok: MicroDollars(3_000_000),
                output_per_mtok: MicroDollars(15_000_000),
            },
        );
        models.insert(
            "opus".to_string(),
            ModelPrice {
                input_per_mtok: MicroDollars(15_000_000),
                output_per_mtok: MicroDollars(75_000_000),
            },
        );
        PriceTable {
            models,
            per_run: MicroDollars(10_000),
        }
    }

    #[test]
    fn tokens_are_chars_over_four_rounded_up() {
        assert_eq!(tokens_for_text(""), 0);
        assert_eq!(tokens_for_text("a"), 1);
        assert_eq!(tokens_for_text("abcd"), 1);
        assert_eq!(tokens_for_text("abcde"), 2);
        // 4 chars, 8 bytes: counted by characters.
        assert_eq!(tokens_for_text("дом!"), 1);
    }

    #[test]
    fn rounding_is_per_piece_of_text() {
        let mut t = TokenEstimate::default();
        t.add_output_text("abcde"); // 2
        t.add_output_text("a"); // 1
        t.add_input_text("abcdefgh"); // 2
        assert_eq!(
            t,
            TokenEstimate {
                input_tokens: 2,
                output_tokens: 3
            }
        );
    }

    #[test]
    fn known_model_hand_computed() {
        // 1000 input × $3/M = 3000 µ$; 200 output × $15/M = 3000 µ$; fee 10000.
        let t = TokenEstimate {
            input_tokens: 1000,
            output_tokens: 200,
        };
        let e = table().estimate(Some("sonnet"), t);
        assert_eq!(e.amount, MicroDollars(16_000));
        assert_eq!(e.source, PriceSource::Model);
    }

    #[test]
    fn fractions_of_a_micro_dollar_round_up_once_on_totals() {
        // 1 input token × $3/M = 3 µ$ exactly; 1 output × 15 = 15. Use a price
        // that yields fractions: $1.5/M × 1 token = 1.5 µ$ → 2.
        let table = PriceTable {
            models: BTreeMap::from([(
                "m".to_string(),
                ModelPrice {
                    input_per_mtok: MicroDollars(1_500_000),
                    output_per_mtok: MicroDollars(0),
                },
            )]),
            per_run: MicroDollars::ZERO,
        };
        let one = TokenEstimate {
            input_tokens: 1,
            output_tokens: 0,
        };
        assert_eq!(table.estimate(Some("m"), one).amount, MicroDollars(2));
        // Three tokens: 4.5 → 5, not 3 × 2 = 6.
        let three = TokenEstimate {
            input_tokens: 3,
            output_tokens: 0,
        };
        assert_eq!(table.estimate(Some("m"), three).amount, MicroDollars(5));
    }

    #[test]
    fn unknown_model_uses_most_expensive_without_default_entry() {
        let t = TokenEstimate {
            input_tokens: 1_000_000,
            output_tokens: 0,
        };
        let e = table().estimate(Some("mystery"), t);
        assert_eq!(e.source, PriceSource::MostExpensive);
        assert_eq!(e.amount, MicroDollars(15_000_000 + 10_000));
        let e = table().estimate(None, t);
        assert_eq!(e.amount, MicroDollars(15_010_000));
    }

    #[test]
    fn default_entry_wins_for_unknown_model() {
        let mut table = table();
        table.models.insert(
            FALLBACK_MODEL_KEY.to_string(),
            ModelPrice {
                input_per_mtok: MicroDollars(1_000_000),
                output_per_mtok: MicroDollars(2_000_000),
            },
        );
        let t = TokenEstimate {
            input_tokens: 500_000,
            output_tokens: 250_000,
        };
        let e = table.estimate(None, t);
        assert_eq!(e.source, PriceSource::FallbackEntry);
        assert_eq!(e.amount, MicroDollars(500_000 + 500_000 + 10_000));
    }

    #[test]
    fn empty_table_counts_only_the_fee_and_says_so() {
        let table = PriceTable {
            models: BTreeMap::new(),
            per_run: MicroDollars(7),
        };
        let e = table.estimate(
            Some("x"),
            TokenEstimate {
                input_tokens: 99,
                output_tokens: 99,
            },
        );
        assert_eq!(e.amount, MicroDollars(7));
        assert_eq!(e.source, PriceSource::Unpriced);
        assert!(e.to_string().contains("estimate"));
    }

    #[test]
    fn huge_token_counts_do_not_overflow() {
        let t = TokenEstimate {
            input_tokens: u64::MAX,
            output_tokens: u64::MAX,
        };
        let e = table().estimate(Some("opus"), t);
        assert_eq!(e.amount, MicroDollars(i64::MAX));
    }
}
