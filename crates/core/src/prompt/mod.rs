//! Builds the prompt sent to Codegen: one Markdown template per task type
//! (in `crates/core/templates/`), filled with the issue's context and kept
//! within a token budget.
//!
//! Tokens are estimated as characters / 4 (rounded up), the usual rule of
//! thumb for English text with current tokenizers; code and non-Latin text
//! use more tokens per character, so the budget is a soft target, not a
//! guarantee.
//!
//! When the prompt is over budget, text is removed in this order until it
//! fits: the oldest comments (whole comments, newest kept), then the tail of
//! the description, then the tail of Linear's `promptContext`. Every cut
//! leaves a visible marker such as `[… truncated 1234 characters …]`, so the
//! agent knows something is missing. Instructions are never cut.

mod cut;
mod linear_context;
mod sections;
mod template;

pub use cut::truncation_marker;

use crate::TaskType;
use chrono::{DateTime, Utc};
use cut::{char_len, keep_head};

/// What the prompt says about the issue; filled from Linear by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueContext {
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    /// Workflow state name, e.g. "In Progress".
    pub state: Option<String>,
    pub parent: Option<IssueRef>,
    pub sub_issues: Vec<IssueRef>,
    /// Any order; they are shown oldest first.
    pub comments: Vec<Comment>,
    pub attachments: Vec<Attachment>,
    /// Linear's `promptContext` from the agent session webhook, verbatim.
    pub prompt_context: Option<String>,
    /// Guidance rules from Linear (workspace or team), nearest first.
    pub guidance: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRef {
    pub identifier: String,
    pub title: String,
    pub state: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub title: String,
    pub url: String,
}

/// Where the work happens and with what tools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryContext {
    pub name: String,
    /// Branch to work from (a `[repo=…#branch]` override), if any.
    pub branch: Option<String>,
    pub allowed_tools: Vec<String>,
    pub mcp_servers: Vec<String>,
}

impl RepositoryContext {
    /// The prompt's view of a configured repository; `branch` comes from the
    /// routing decision's `[repo=…#branch]` override.
    pub fn from_config(repo: &crate::config::RepositoryConfig, branch: Option<String>) -> Self {
        RepositoryContext {
            name: repo.name.clone(),
            branch,
            allowed_tools: repo.allowed_tools.clone(),
            mcp_servers: repo.mcp_servers.clone(),
        }
    }
}

/// What happened last time, when this prompt continues earlier work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousRun {
    pub status: Option<String>,
    pub summary: Option<String>,
    pub pr_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptInput {
    pub task_type: TaskType,
    pub issue: IssueContext,
    pub repository: RepositoryContext,
    /// A new message from the person in the agent session (a follow-up).
    pub follow_up: Option<String>,
    pub previous_run: Option<PreviousRun>,
}

/// The finished prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// `ceil(chars / 4)`; see the module docs.
    pub approx_tokens: usize,
    pub truncation: Truncation,
    /// Approximate tokens of each section as sent (`instructions` is the
    /// template's own text), in template order.
    pub sections: Vec<(&'static str, usize)>,
}

/// How the prompt is built; [`build_prompt`] uses the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptOptions {
    /// Drop from Linear's `promptContext` what the issue context already
    /// says (`linear_context`). Off only to measure what it saves.
    pub condense_linear_context: bool,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            condense_linear_context: true,
        }
    }
}

/// What was cut to fit the budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truncation {
    pub comments_dropped: usize,
    /// Characters of the dropped comments.
    pub comment_chars_cut: usize,
    pub description_chars_cut: usize,
    pub prompt_context_chars_cut: usize,
    /// Cut from the tail of a follow-up message ([`follow_up_prompt`]).
    pub follow_up_chars_cut: usize,
    /// Cut from the tail of the earlier prompt a follow-up is added to.
    pub base_chars_cut: usize,
    /// Still over budget after every allowed cut (the fixed parts alone are
    /// too long); the prompt is sent anyway.
    pub over_budget: bool,
}

/// Estimated tokens of `text`: characters / 4, rounded up.
pub fn approx_tokens(text: &str) -> usize {
    char_len(text).div_ceil(4)
}

/// The prompt that carries a follow-up message to a run: the
/// `previous_run` and `follow_up` sections, after `base` when a new run
/// starts from the original prompt (a resumed run already has it).
///
/// Kept within `token_budget`: the newest message is what the run must act
/// on, so the tail of `base` (older context: comments, earlier follow-ups)
/// is cut first; the message itself is cut only when it alone would take
/// more than half the budget, and then to that half.
pub fn follow_up_prompt(
    message: &str,
    previous: Option<&PreviousRun>,
    base: Option<&str>,
    token_budget: usize,
) -> Prompt {
    let budget_chars = token_budget.saturating_mul(4);
    let compose = |base: Option<&str>, message: &str| {
        let parts = [
            base.map(str::trim).unwrap_or_default().to_string(),
            previous.map(sections::previous_run).unwrap_or_default(),
            sections::follow_up(message),
        ];
        let mut text = parts
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        text.push('\n');
        text
    };
    let message = message.trim();
    let mut text = compose(base, message);
    let mut truncation = Truncation::default();
    if char_len(&text) > budget_chars {
        let mut kept_message = message.to_owned();
        let floor = budget_chars / 2;
        if char_len(&compose(None, message)) > budget_chars && char_len(message) > floor {
            let marker = char_len(&truncation_marker(char_len(message))) + 1;
            let (cut, removed) = keep_head(message, floor.saturating_sub(marker));
            truncation.follow_up_chars_cut = removed;
            kept_message = cut;
        }
        let kept_base = base.map(|base| {
            let base = base.trim();
            let rest = char_len(&compose(None, &kept_message)) + 2;
            let marker = char_len(&truncation_marker(char_len(base))) + 1;
            let room = budget_chars.saturating_sub(rest + marker);
            let (cut, removed) = keep_head(base, room);
            truncation.base_chars_cut = removed;
            cut
        });
        text = compose(kept_base.as_deref(), &kept_message);
    }
    truncation.over_budget = char_len(&text) > budget_chars;
    Prompt {
        approx_tokens: approx_tokens(&text),
        text,
        truncation,
        sections: Vec::new(),
    }
}

/// Renders the prompt for `input` within `token_budget` tokens
/// (config `prompt.tokenBudget`).
pub fn build_prompt(input: &PromptInput, token_budget: usize) -> Prompt {
    build_prompt_with(input, token_budget, PromptOptions::default())
}

/// [`build_prompt`] with explicit options.
pub fn build_prompt_with(
    input: &PromptInput,
    token_budget: usize,
    options: PromptOptions,
) -> Prompt {
    let budget_chars = token_budget.saturating_mul(4);
    let mut comments: Vec<&Comment> = input.issue.comments.iter().collect();
    comments.sort_by_key(|c| c.created_at);
    let prompt_context = match &input.issue.prompt_context {
        Some(c) if options.condense_linear_context => {
            Some(linear_context::condense(c, &input.issue))
        }
        other => other.clone(),
    };
    let mut parts = sections::Parts {
        input,
        comments: &comments,
        dropped: None,
        description: input.issue.description.clone(),
        prompt_context: prompt_context.clone(),
    };
    let mut truncation = Truncation::default();
    let mut text = parts.render();

    // 1. Oldest comments, whole. Drop enough to cover the overflow at once,
    //    then re-check (the marker and formatting shift the count slightly).
    while char_len(&text) > budget_chars && truncation.comments_dropped < comments.len() {
        let mut overflow = char_len(&text) - budget_chars;
        let mut dropped = truncation.comments_dropped;
        while overflow > 0 && dropped < comments.len() {
            overflow = overflow.saturating_sub(sections::comment_len(comments[dropped]));
            dropped += 1;
        }
        truncation.comments_dropped = dropped;
        let removed: usize = comments[..dropped].iter().map(|c| char_len(&c.body)).sum();
        truncation.comment_chars_cut = removed;
        parts.comments = &comments[dropped..];
        parts.dropped = Some((dropped, removed));
        text = parts.render();
    }

    // 2. Description tail, then 3. promptContext tail.
    for field in [Field::Description, Field::PromptContext] {
        let original = match field {
            Field::Description => input.issue.description.as_deref(),
            Field::PromptContext => prompt_context.as_deref(),
        };
        let Some(original) = original else { continue };
        let total = char_len(original);
        let mut keep = total;
        // Converges in a couple of rounds: each round removes at least the
        // measured overflow.
        while char_len(&text) > budget_chars && keep > 0 {
            let overflow = char_len(&text) - budget_chars;
            let marker = char_len(&truncation_marker(total)) + 1;
            keep = keep.saturating_sub(overflow + marker);
            let (cut, removed) = keep_head(original, keep);
            match field {
                Field::Description => {
                    parts.description = Some(cut);
                    truncation.description_chars_cut = removed;
                }
                Field::PromptContext => {
                    parts.prompt_context = Some(cut);
                    truncation.prompt_context_chars_cut = removed;
                }
            }
            text = parts.render();
        }
    }

    truncation.over_budget = char_len(&text) > budget_chars;
    let sections = parts.section_tokens(&text);
    Prompt {
        approx_tokens: approx_tokens(&text),
        text,
        truncation,
        sections,
    }
}

#[derive(Clone, Copy)]
enum Field {
    Description,
    PromptContext,
}

#[cfg(test)]
mod tests;
