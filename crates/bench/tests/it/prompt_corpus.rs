//! Condensing Linear's context loses nothing: every fact of the corpus is
//! still in the prompt, and the prompt got smaller.

use cyrus_bench::scenarios::prompt::{corpus, input};
use cyrus_core::prompt::{PromptOptions, build_prompt, build_prompt_with};

#[test]
fn every_fact_of_the_corpus_survives_condensing() {
    let issues = corpus();
    assert!(issues.len() >= 40, "the corpus is {} issues", issues.len());
    for issue in &issues {
        let prompt = build_prompt(&input(issue), 100_000);
        for fact in &issue.facts {
            assert!(
                prompt.text.contains(fact.as_str()),
                "{}: lost {fact:?}\n--- prompt ---\n{}",
                issue.identifier,
                prompt.text
            );
        }
        let verbatim = build_prompt_with(
            &input(issue),
            100_000,
            PromptOptions {
                condense_linear_context: false,
            },
        );
        assert!(
            prompt.approx_tokens < verbatim.approx_tokens,
            "{}: {} ≥ {}",
            issue.identifier,
            prompt.approx_tokens,
            verbatim.approx_tokens
        );
        // The sections account for the whole prompt.
        let total: usize = prompt.sections.iter().map(|(_, t)| t).sum();
        assert!(
            total.abs_diff(prompt.approx_tokens) <= prompt.sections.len(),
            "{:?}",
            prompt.sections
        );
    }
}
