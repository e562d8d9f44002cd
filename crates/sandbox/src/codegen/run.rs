//! One simulated agent run and its timeline.
//!
//! Status is derived lazily: every read first "settles" the run against the
//! simulated clock, so no background task is needed and an advanced clock
//! takes effect on the very next request.

use serde_json::{Value, json};

use super::clock::{SimClock, SimMillis};
use super::script::RunScript;

/// Simulated time a run reports its `initial_status` before switching to its
/// `running_status`.
const INITIAL_PHASE_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub id: i64,
    pub title: String,
    pub url: String,
    pub head_branch_name: String,
    pub created_ms: SimMillis,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at_ms: SimMillis,
    pub message_type: &'static str,
    pub tool_name: Option<&'static str>,
    pub thought: Option<String>,
    pub observation: Option<Value>,
    pub tool_input: Option<Value>,
    pub tool_output: Option<Value>,
}

/// A resolved script for one leg (create, or each resume).
#[derive(Debug, Clone)]
struct Leg {
    started_ms: SimMillis,
    /// `None` = never finishes.
    ends_ms: Option<SimMillis>,
    outcome: String,
    initial_status: String,
    running_status: String,
    prs: u32,
    finished: bool,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub org_id: i64,
    pub prompt: String,
    /// Follow-up prompts sent through resume, in order.
    pub follow_ups: Vec<String>,
    pub metadata: Option<Value>,
    pub repo_id: Option<i64>,
    pub repo_name: String,
    pub model: Option<String>,
    pub agent_type: Option<String>,
    pub images: Vec<String>,
    pub created_ms: SimMillis,
    pub status: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    pub prs: Vec<PullRequest>,
    pub banned: bool,
    logs: Vec<LogEntry>,
    leg: Leg,
}

/// Counters for ids that must only increase across all runs.
#[derive(Debug)]
pub struct PrCounter {
    pub next_id: i64,
    pub next_number: u64,
}

/// Everything a new run needs besides its script.
pub struct NewRun {
    pub id: i64,
    pub org_id: i64,
    pub prompt: String,
    pub metadata: Option<Value>,
    pub repo_id: Option<i64>,
    pub repo_name: String,
    pub model: Option<String>,
    pub agent_type: Option<String>,
    /// The `images` of the create request (data URIs).
    pub images: Vec<String>,
}

/// Scripted values with the simulator defaults filled in.
pub struct Defaults {
    pub duration_ms: u64,
    pub log_count: u32,
}

pub fn is_success(status: &str) -> bool {
    status.eq_ignore_ascii_case("COMPLETE") || status.eq_ignore_ascii_case("COMPLETED")
}

impl Run {
    pub fn new(new: NewRun, script: &RunScript, defaults: &Defaults, now: SimMillis) -> Run {
        let mut run = Run {
            id: new.id,
            org_id: new.org_id,
            prompt: new.prompt,
            follow_ups: Vec::new(),
            metadata: new.metadata,
            repo_id: new.repo_id,
            repo_name: new.repo_name,
            model: new.model,
            agent_type: new.agent_type,
            images: new.images,
            created_ms: now,
            status: String::new(),
            result: None,
            summary: None,
            prs: Vec::new(),
            banned: false,
            logs: Vec::new(),
            leg: Leg {
                started_ms: now,
                ends_ms: None,
                outcome: String::new(),
                initial_status: String::new(),
                running_status: String::new(),
                prs: 0,
                finished: true,
            },
        };
        run.start_leg(script, defaults, now);
        run
    }

    fn start_leg(&mut self, script: &RunScript, defaults: &Defaults, now: SimMillis) {
        let duration = script
            .duration
            .map(|d| d.as_millis() as u64)
            .unwrap_or(defaults.duration_ms);
        let ends_ms = (!script.never_finish).then_some(now + duration);
        let initial = script
            .initial_status
            .clone()
            .unwrap_or_else(|| "ACTIVE".to_owned());
        self.leg = Leg {
            started_ms: now,
            ends_ms,
            outcome: script
                .outcome
                .clone()
                .unwrap_or_else(|| "COMPLETE".to_owned()),
            running_status: script
                .running_status
                .clone()
                .unwrap_or_else(|| "ACTIVE".to_owned()),
            initial_status: initial.clone(),
            prs: script.prs.unwrap_or(0),
            finished: false,
        };
        self.status = initial;
        self.result = None;
        self.summary = None;
        let count = script.logs.unwrap_or(defaults.log_count);
        let span = duration.max(1);
        for i in 0..count {
            let at = now + span * u64::from(i + 1) / (u64::from(count) + 1);
            self.logs.push(progress_log(i, at, &self.repo_name));
        }
    }

    /// Brings status, result, PRs and logs up to simulated time `now`.
    pub fn settle(&mut self, now: SimMillis, prs: &mut PrCounter) {
        if self.leg.finished {
            return;
        }
        match self.leg.ends_ms {
            Some(end) if now >= end => self.finish(end, prs),
            _ if now >= self.leg.started_ms + INITIAL_PHASE_MS => {
                self.status = self.leg.running_status.clone()
            }
            _ => self.status = self.leg.initial_status.clone(),
        }
    }

    fn finish(&mut self, at: SimMillis, counter: &mut PrCounter) {
        self.leg.finished = true;
        let outcome = self.leg.outcome.clone();
        for _ in 0..self.leg.prs {
            let number = counter.next_number;
            counter.next_number += 1;
            let id = counter.next_id;
            counter.next_id += 1;
            self.prs.push(PullRequest {
                id,
                title: format!("Agent run {}: {}", self.id, first_line(&self.prompt)),
                url: format!("https://github.com/{}/pull/{number}", self.repo_name),
                head_branch_name: format!("codegen-bot/run-{}-{number}", self.id),
                created_ms: at,
            });
        }
        let pr_note = match self.prs.len() {
            0 => String::new(),
            n => format!(
                " Opened {n} pull request(s): {}.",
                self.prs
                    .iter()
                    .map(|p| p.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let (result, final_type, observation) = if is_success(&outcome) {
            let text = format!("Finished: {}.{pr_note}", first_line(self.latest_prompt()));
            (text.clone(), "FINAL_ANSWER", json!(text))
        } else if outcome.eq_ignore_ascii_case("PAUSED") {
            let text = "I need more information before continuing: which behaviour do you expect?"
                .to_owned();
            (text.clone(), "FINAL_ANSWER", json!(text))
        } else {
            let text = format!("Agent run ended with status {outcome}.{pr_note}");
            (text.clone(), "ERROR", json!({"error": text}))
        };
        self.summary = Some(format!("{}: {}", outcome, first_line(self.latest_prompt())));
        self.result = Some(result);
        self.logs.push(LogEntry {
            at_ms: at,
            message_type: final_type,
            tool_name: None,
            thought: None,
            observation: Some(observation),
            tool_input: None,
            tool_output: None,
        });
        self.status = outcome;
    }

    fn latest_prompt(&self) -> &str {
        self.follow_ups
            .last()
            .map(String::as_str)
            .unwrap_or(&self.prompt)
    }

    /// Stops a running run: `CANCELLED`, planned future logs discarded.
    /// Returns false when the run had already finished.
    pub fn cancel(&mut self, now: SimMillis) -> bool {
        if self.leg.finished {
            return false;
        }
        self.leg.finished = true;
        self.logs.retain(|l| l.at_ms <= now);
        self.status = "CANCELLED".to_owned();
        self.result = None;
        self.summary = Some("Cancelled by user".to_owned());
        true
    }

    /// Continues a finished run with a follow-up prompt. A run still running
    /// records the prompt as a user message and keeps its timeline.
    pub fn resume(
        &mut self,
        prompt: String,
        script: &RunScript,
        defaults: &Defaults,
        now: SimMillis,
    ) {
        self.logs.push(LogEntry {
            at_ms: now,
            message_type: "USER_MESSAGE",
            tool_name: None,
            thought: None,
            observation: Some(json!(prompt.clone())),
            tool_input: None,
            tool_output: None,
        });
        self.follow_ups.push(prompt);
        if self.leg.finished {
            self.start_leg(script, defaults, now);
        }
    }

    /// Logs visible at `now`, chronological.
    pub fn visible_logs(&self, now: SimMillis) -> impl Iterator<Item = &LogEntry> {
        self.logs.iter().filter(move |l| l.at_ms <= now)
    }

    /// The `AgentRunResponse` JSON.
    pub fn to_json(&self, clock: &SimClock) -> Value {
        json!({
            "id": self.id,
            "organization_id": self.org_id,
            "status": self.status,
            "created_at": clock.timestamp(self.created_ms),
            "web_url": web_url(self.id),
            "result": self.result,
            "summary": self.summary,
            "source_type": "API",
            "github_pull_requests": self.prs.iter().map(|p| json!({
                "id": p.id,
                "title": p.title,
                "url": p.url,
                "created_at": clock.timestamp(p.created_ms),
                "head_branch_name": p.head_branch_name,
            })).collect::<Vec<_>>(),
            "metadata": self.metadata,
        })
    }
}

pub fn web_url(id: i64) -> String {
    format!("https://codegen.com/agent/trace/{id}")
}

impl LogEntry {
    pub fn to_json(&self, run_id: i64, clock: &SimClock) -> Value {
        json!({
            "agent_run_id": run_id,
            "created_at": clock.timestamp(self.at_ms),
            "message_type": self.message_type,
            "tool_name": self.tool_name,
            "thought": self.thought,
            "observation": self.observation,
            "tool_input": self.tool_input,
            "tool_output": self.tool_output,
        })
    }
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(80) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// A realistic progress entry: alternating plans and tool actions.
fn progress_log(i: u32, at_ms: SimMillis, repo: &str) -> LogEntry {
    let base = LogEntry {
        at_ms,
        message_type: "PLAN_EVALUATION",
        tool_name: None,
        thought: None,
        observation: None,
        tool_input: None,
        tool_output: None,
    };
    match i % 4 {
        0 => LogEntry {
            thought: Some(format!(
                "Step {}: inspecting {repo} to decide the next change.",
                i + 1
            )),
            ..base
        },
        1 => LogEntry {
            message_type: "ACTION",
            tool_name: Some("ripgrep_search"),
            tool_input: Some(json!({"query": "fn main", "path": "."})),
            tool_output: Some(json!({"matches": 3, "files": ["src/main.rs"]})),
            ..base
        },
        2 => LogEntry {
            message_type: "ACTION",
            tool_name: Some("file_edit"),
            tool_input: Some(json!({"path": "src/main.rs", "edit": "apply fix"})),
            tool_output: Some(json!({"status": "ok", "lines_changed": 4})),
            ..base
        },
        _ => LogEntry {
            message_type: "ACTION",
            tool_name: Some("run_command"),
            tool_input: Some(json!({"command": "cargo test"})),
            tool_output: Some(json!({"exit_code": 0, "stdout": "test result: ok"})),
            ..base
        },
    }
}
