//! Run logs → typed progress for the Linear side, read incrementally.
//!
//! A [`LogFollower`] keeps a cursor (entries already consumed) per run and
//! only ever asks for entries after it, so a long run's log is read once in
//! total, not once per poll. The same pass feeds the run's token estimate
//! ([`cyrus_core::cost`]).

use crate::client::CodegenClient;
use crate::error::CodegenError;
use crate::model::{AgentRun, LogEntry, PageRequest, PullRequest, RunLogs};
use cyrus_core::cost::{CostEstimate, PriceTable, TokenEstimate};
use serde_json::Value;
use std::collections::BTreeSet;

/// Longest tool-input summary shown to users.
const SUMMARY_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The agent's reasoning (`PLAN_EVALUATION`).
    Thought(String),
    /// A tool call (`ACTION`), input shortened for display.
    ToolCall { name: String, input_summary: String },
    /// What a tool or the environment returned.
    Observation(String),
    /// `FINAL_ANSWER`.
    FinalAnswer(String),
    /// `ERROR` entries.
    Error(String),
}

/// Text of a JSON value: strings as they are, anything else as compact JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn shorten(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn kind(entry: &LogEntry) -> String {
    entry
        .message_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Progress events for one log entry (an `ACTION` yields the call and, when
/// present, its output).
pub fn events_for_entry(entry: &LogEntry) -> Vec<ProgressEvent> {
    let observation = entry
        .observation
        .as_ref()
        .map(text_of)
        .filter(|t| !t.is_empty());
    let thought = entry.thought.clone().filter(|t| !t.is_empty());
    let mut events = Vec::new();
    match kind(entry).as_str() {
        "FINAL_ANSWER" => {
            if let Some(text) = observation.or(thought) {
                events.push(ProgressEvent::FinalAnswer(text));
            }
        }
        "ERROR" | "PR_CREATION_FAILED" => {
            events.push(ProgressEvent::Error(
                observation.or(thought).unwrap_or_else(|| kind(entry)),
            ));
        }
        _ => {
            if let Some(t) = thought {
                events.push(ProgressEvent::Thought(t));
            }
            if let Some(name) = entry.tool_name.clone().filter(|n| !n.is_empty()) {
                let input = entry.tool_input.as_ref().map(text_of).unwrap_or_default();
                events.push(ProgressEvent::ToolCall {
                    name,
                    input_summary: shorten(&input, SUMMARY_CHARS),
                });
                if let Some(out) = entry
                    .tool_output
                    .as_ref()
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                {
                    events.push(ProgressEvent::Observation(out));
                }
            }
            if let Some(o) = observation {
                events.push(ProgressEvent::Observation(o));
            }
        }
    }
    events
}

/// Adds one entry's text to a token estimate: what the model wrote
/// (thoughts, tool inputs, the final answer) as output, what it read
/// (observations, tool outputs, user messages) as input.
pub fn count_tokens(entry: &LogEntry, tokens: &mut TokenEstimate) {
    let kind = kind(entry);
    if let Some(t) = &entry.thought {
        tokens.add_output_text(t);
    }
    if let Some(input) = &entry.tool_input {
        tokens.add_output_text(&text_of(input));
    }
    if let Some(output) = &entry.tool_output {
        tokens.add_input_text(&text_of(output));
    }
    if let Some(obs) = &entry.observation {
        if kind == "FINAL_ANSWER" {
            tokens.add_output_text(&text_of(obs));
        } else {
            tokens.add_input_text(&text_of(obs));
        }
    }
}

/// Follows one run's log from a cursor.
#[derive(Clone, Debug)]
pub struct LogFollower {
    run_id: i64,
    model: Option<String>,
    cursor: u64,
    tokens: TokenEstimate,
    page_size: u64,
}

impl LogFollower {
    /// `model` as sent on create (`None` = organization default), used to
    /// price the estimate.
    pub fn new(run_id: i64, model: Option<String>) -> LogFollower {
        LogFollower::resume_from(run_id, model, 0, TokenEstimate::default())
    }

    /// Continues after a restart from a persisted cursor and token count.
    pub fn resume_from(
        run_id: i64,
        model: Option<String>,
        cursor: u64,
        tokens: TokenEstimate,
    ) -> LogFollower {
        LogFollower {
            run_id,
            model,
            cursor,
            tokens,
            page_size: 100,
        }
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Log entries consumed so far (persist it with the run).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn tokens(&self) -> TokenEstimate {
        self.tokens
    }

    /// The running cost estimate.
    pub fn cost(&self, prices: &PriceTable) -> CostEstimate {
        prices.estimate(self.model.as_deref(), self.tokens)
    }

    /// The page request for the next unread entries.
    pub fn next_request(&self) -> PageRequest {
        PageRequest {
            skip: self.cursor,
            limit: self.page_size,
        }
    }

    /// Consumes a page fetched with [`Self::next_request`]; pure, so the
    /// cursor arithmetic is unit-tested without HTTP.
    pub fn apply_page(&mut self, page: &RunLogs) -> Vec<ProgressEvent> {
        let mut events = Vec::new();
        for entry in &page.logs {
            count_tokens(entry, &mut self.tokens);
            events.extend(events_for_entry(entry));
        }
        self.cursor += page.logs.len() as u64;
        events
    }

    /// Reads every entry after the cursor (at most `max_pages` pages, to
    /// bound one poll's cost) and returns their events.
    pub async fn poll(
        &mut self,
        client: &CodegenClient,
        max_pages: usize,
    ) -> Result<Vec<ProgressEvent>, CodegenError> {
        let mut events = Vec::new();
        for _ in 0..max_pages.max(1) {
            let page = client.run_logs(self.run_id, self.next_request()).await?;
            let got = page.logs.len() as u64;
            events.extend(self.apply_page(&page));
            let total = page.total_logs.unwrap_or(self.cursor);
            if got < self.page_size || self.cursor >= total {
                break;
            }
        }
        Ok(events)
    }
}

/// Remembers which PRs of a run were already announced.
#[derive(Clone, Debug, Default)]
pub struct PullRequestTracker {
    seen: BTreeSet<i64>,
}

impl PullRequestTracker {
    /// PRs on `run` not returned before (by Codegen's PR id).
    pub fn new_pull_requests(&mut self, run: &AgentRun) -> Vec<PullRequest> {
        run.pull_requests()
            .iter()
            .filter(|pr| self.seen.insert(pr.id))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> LogEntry {
        serde_json::from_value(v).unwrap()
    }

    fn page(entries: Vec<Value>, total: u64) -> RunLogs {
        serde_json::from_value(
            json!({"id": 1, "organization_id": 2, "logs": entries, "total_logs": total}),
        )
        .unwrap()
    }

    #[test]
    fn maps_message_types() {
        let action = entry(
            json!({"agent_run_id": 1, "message_type": "ACTION", "tool_name": "ripgrep",
            "tool_input": {"q": "login"}, "tool_output": {"matches": 3}}),
        );
        assert_eq!(
            events_for_entry(&action),
            vec![
                ProgressEvent::ToolCall {
                    name: "ripgrep".into(),
                    input_summary: r#"{"q":"login"}"#.into()
                },
                ProgressEvent::Observation(r#"{"matches":3}"#.into()),
            ]
        );
        let plan = entry(
            json!({"agent_run_id": 1, "message_type": "PLAN_EVALUATION", "thought": "look at tests"}),
        );
        assert_eq!(
            events_for_entry(&plan),
            vec![ProgressEvent::Thought("look at tests".into())]
        );
        let fin = entry(
            json!({"agent_run_id": 1, "message_type": "FINAL_ANSWER", "observation": "done"}),
        );
        assert_eq!(
            events_for_entry(&fin),
            vec![ProgressEvent::FinalAnswer("done".into())]
        );
        let err = entry(
            json!({"agent_run_id": 1, "message_type": "error", "observation": {"e": "boom"}}),
        );
        assert_eq!(
            events_for_entry(&err),
            vec![ProgressEvent::Error(r#"{"e":"boom"}"#.into())]
        );
    }

    #[test]
    fn long_tool_input_is_shortened() {
        let e = entry(
            json!({"agent_run_id": 1, "message_type": "ACTION", "tool_name": "write", "tool_input": "x".repeat(500)}),
        );
        match &events_for_entry(&e)[0] {
            ProgressEvent::ToolCall { input_summary, .. } => {
                assert_eq!(input_summary.chars().count(), SUMMARY_CHARS + 1)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_split_written_and_read_text() {
        let mut t = TokenEstimate::default();
        // thought 8 chars → 2 out; input "abcd" (JSON string text) → 1 out;
        // output 9 chars → 3 in; final answer 5 chars → 2 out.
        count_tokens(
            &entry(json!({"agent_run_id": 1, "thought": "12345678"})),
            &mut t,
        );
        count_tokens(
            &entry(
                json!({"agent_run_id": 1, "message_type": "ACTION", "tool_name": "t", "tool_input": "abcd", "tool_output": "123456789"}),
            ),
            &mut t,
        );
        count_tokens(
            &entry(
                json!({"agent_run_id": 1, "message_type": "FINAL_ANSWER", "observation": "hello"}),
            ),
            &mut t,
        );
        assert_eq!(
            t,
            TokenEstimate {
                input_tokens: 3,
                output_tokens: 5
            }
        );
    }

    #[test]
    fn cursor_advances_by_entries_consumed() {
        let mut f = LogFollower::new(1, None);
        assert_eq!(
            f.next_request(),
            PageRequest {
                skip: 0,
                limit: 100
            }
        );
        let events = f.apply_page(&page(
            vec![
                json!({"agent_run_id": 1, "message_type": "PLAN_EVALUATION", "thought": "a"}),
                json!({"agent_run_id": 1, "message_type": "PLAN_EVALUATION", "thought": "b"}),
            ],
            2,
        ));
        assert_eq!(events.len(), 2);
        assert_eq!(f.cursor(), 2);
        assert_eq!(f.next_request().skip, 2);
        assert!(f.apply_page(&page(vec![], 2)).is_empty());
        assert_eq!(f.cursor(), 2);
        assert_eq!(f.tokens().output_tokens, 2);
    }

    #[test]
    fn pull_requests_are_announced_once() {
        let run: AgentRun = serde_json::from_value(json!({"id": 1, "organization_id": 2, "github_pull_requests": [
            {"id": 10, "created_at": "2025-10-01T12:00:00", "url": "https://github.com/acme/web/pull/12"}]}))
        .unwrap();
        let mut prs = PullRequestTracker::default();
        assert_eq!(prs.new_pull_requests(&run).len(), 1);
        assert!(prs.new_pull_requests(&run).is_empty());
    }
}
