//! What to post into a Linear agent session while a run progresses.
//!
//! Every activity is a Linear API call against a per-user budget that peers
//! have exhausted with chatter. The policy (one instance per session, pure,
//! clock passed in) therefore:
//! - never posts empty bodies;
//! - always delivers the final `response`/`error` and elicitations;
//! - coalesces routine tool progress into one ephemeral thought per
//!   `summary_interval`, and caps routine posts per session and per minute;
//! - posts a keep-alive thought when nothing was posted for `keepalive_after`
//!   (Linear marks sessions stale after 30 minutes of silence).
//!
//! With `normal` verbosity a typical task costs at most ~15 requests:
//! acknowledgement + link update + ≤ 8 routine posts + final + a few issue
//! updates.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::activity::{ActivityContent, ActivitySignal, NewActivity, SelectOption};

/// How much routine progress reaches Linear (`linear.verbosity`): the
/// configuration's own type, so nothing maps one onto another.
pub use cyrus_core::config::Verbosity;

/// Settings; defaults are the production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityPolicyConfig {
    /// `linear.maxActivitiesPerSessionPerMinute`.
    pub max_per_minute: u32,
    pub verbosity: Verbosity,
    /// Silence after which a keep-alive thought is posted (< Linear's 30 min).
    pub keepalive_after: Duration,
    /// Minimum spacing of routine posts in `normal` verbosity.
    pub summary_interval: Duration,
}

impl Default for ActivityPolicyConfig {
    fn default() -> Self {
        Self {
            max_per_minute: 6,
            verbosity: Verbosity::Normal,
            keepalive_after: Duration::from_secs(25 * 60),
            summary_interval: Duration::from_secs(3 * 60),
        }
    }
}

impl ActivityPolicyConfig {
    /// Routine (non-final, non-keep-alive) posts allowed per session.
    pub fn max_routine_per_session(&self) -> u32 {
        match self.verbosity {
            Verbosity::Quiet => 0,
            Verbosity::Normal => 8,
            Verbosity::Verbose => 40,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalOutcome {
    Response(String),
    Error(String),
}

/// Progress reported by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    Thought(String),
    ToolCall {
        name: String,
        input: String,
    },
    Observation(String),
    /// A question for the user (optionally a choice list).
    Elicitation {
        body: String,
        options: Vec<SelectOption>,
    },
    Final(FinalOutcome),
}

/// An activity the policy wants posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedActivity {
    pub content: ActivityContent,
    pub ephemeral: bool,
    pub signal: Option<ActivitySignal>,
}

impl PlannedActivity {
    pub fn into_activity(self, session_id: impl Into<String>) -> NewActivity {
        NewActivity {
            session_id: session_id.into(),
            content: self.content,
            ephemeral: self.ephemeral,
            signal: self.signal,
            id: None,
        }
    }

    fn thought(body: String, ephemeral: bool) -> Self {
        Self {
            content: ActivityContent::Thought { body },
            ephemeral,
            signal: None,
        }
    }
}

const MAX_BODY_CHARS: usize = 2000;
const MAX_PARAMETER_CHARS: usize = 120;
const FALLBACK_RESPONSE: &str = "The run finished without a summary.";
const FALLBACK_ERROR: &str = "The run failed without an error message.";

fn clean(text: &str, max_chars: usize) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() <= max_chars {
        return Some(trimmed.to_owned());
    }
    let cut: String = trimmed.chars().take(max_chars.saturating_sub(1)).collect();
    Some(format!("{cut}…"))
}

/// Per-session posting state and rules.
#[derive(Debug, Clone)]
pub struct ActivityPolicy {
    config: ActivityPolicyConfig,
    recent_posts: VecDeque<DateTime<Utc>>,
    last_post_at: Option<DateTime<Utc>>,
    last_routine_at: Option<DateTime<Utc>>,
    routine_posted: u32,
    pending_tools: Vec<String>,
    pending_thought: Option<String>,
    last_tool: Option<(String, String)>,
    finished: bool,
}

impl ActivityPolicy {
    /// A policy for a session that started at `started_at` (the keep-alive
    /// clock starts there).
    pub fn new(config: ActivityPolicyConfig, started_at: DateTime<Utc>) -> Self {
        Self {
            config,
            recent_posts: VecDeque::new(),
            last_post_at: Some(started_at),
            last_routine_at: None,
            routine_posted: 0,
            pending_tools: Vec::new(),
            pending_thought: None,
            last_tool: None,
            finished: false,
        }
    }

    pub fn config(&self) -> &ActivityPolicyConfig {
        &self.config
    }

    /// Records an activity posted outside the policy (e.g. the acknowledgement
    /// thought sent from the webhook path), so caps and keep-alive see it.
    pub fn record_external_post(&mut self, now: DateTime<Utc>) {
        self.note_post(now);
    }

    fn note_post(&mut self, now: DateTime<Utc>) {
        self.recent_posts.push_back(now);
        self.last_post_at = Some(now);
    }

    fn within_minute_cap(&mut self, now: DateTime<Utc>) -> bool {
        while self
            .recent_posts
            .front()
            .is_some_and(|t| now - *t >= chrono::Duration::seconds(60))
        {
            self.recent_posts.pop_front();
        }
        (self.recent_posts.len() as u32) < self.config.max_per_minute
    }

    fn routine_allowed(&mut self, now: DateTime<Utc>) -> bool {
        if self.finished || self.routine_posted >= self.config.max_routine_per_session() {
            return false;
        }
        if self.config.verbosity == Verbosity::Normal
            && let Some(last) = self.last_routine_at
            && (now - last).to_std().unwrap_or_default() < self.config.summary_interval
        {
            return false;
        }
        self.within_minute_cap(now)
    }

    fn post_routine(&mut self, activity: PlannedActivity, now: DateTime<Utc>) -> PlannedActivity {
        self.routine_posted += 1;
        self.last_routine_at = Some(now);
        self.note_post(now);
        activity
    }

    /// Handles one progress event; returns what to post now, if anything.
    /// Routine events that cannot be posted now are kept and may come out of
    /// a later [`tick`](Self::tick) as one coalesced thought.
    pub fn on_event(
        &mut self,
        event: ProgressEvent,
        now: DateTime<Utc>,
    ) -> Option<PlannedActivity> {
        match event {
            ProgressEvent::Final(outcome) => {
                self.finished = true;
                self.pending_tools.clear();
                self.pending_thought = None;
                let content = match outcome {
                    FinalOutcome::Response(body) => ActivityContent::Response {
                        body: clean(&body, usize::MAX).unwrap_or_else(|| FALLBACK_RESPONSE.into()),
                    },
                    FinalOutcome::Error(body) => ActivityContent::Error {
                        body: clean(&body, usize::MAX).unwrap_or_else(|| FALLBACK_ERROR.into()),
                    },
                };
                self.note_post(now);
                Some(PlannedActivity {
                    content,
                    ephemeral: false,
                    signal: None,
                })
            }
            ProgressEvent::Elicitation { body, options } => {
                let body = clean(&body, MAX_BODY_CHARS).or_else(|| {
                    (!options.is_empty()).then(|| "Please choose one of the options.".to_owned())
                })?;
                let signal = (!options.is_empty()).then_some(ActivitySignal::Select { options });
                self.note_post(now);
                Some(PlannedActivity {
                    content: ActivityContent::Elicitation { body },
                    ephemeral: false,
                    signal,
                })
            }
            ProgressEvent::Thought(text) => {
                let body = clean(&text, MAX_BODY_CHARS)?;
                if self.config.verbosity == Verbosity::Quiet {
                    self.pending_thought = Some(body);
                    return None;
                }
                if self.routine_allowed(now) {
                    self.pending_thought = None;
                    self.pending_tools.clear();
                    Some(self.post_routine(PlannedActivity::thought(body, false), now))
                } else {
                    self.pending_thought = Some(body);
                    None
                }
            }
            ProgressEvent::ToolCall { name, input } => {
                let name = clean(&name, MAX_PARAMETER_CHARS)?;
                let input = clean(&input, MAX_PARAMETER_CHARS).unwrap_or_default();
                self.last_tool = Some((name.clone(), input.clone()));
                if self.config.verbosity == Verbosity::Verbose && self.routine_allowed(now) {
                    let action = PlannedActivity {
                        content: ActivityContent::Action {
                            action: name,
                            parameter: input,
                            result: None,
                        },
                        ephemeral: true,
                        signal: None,
                    };
                    return Some(self.post_routine(action, now));
                }
                if self.config.verbosity != Verbosity::Quiet {
                    self.pending_tools.push(name);
                }
                None
            }
            ProgressEvent::Observation(text) => {
                if self.config.verbosity != Verbosity::Verbose {
                    return None;
                }
                let result = clean(&text, MAX_BODY_CHARS)?;
                let (action, parameter) = self.last_tool.clone()?;
                if !self.routine_allowed(now) {
                    return None;
                }
                let activity = PlannedActivity {
                    content: ActivityContent::Action {
                        action,
                        parameter,
                        result: Some(result),
                    },
                    ephemeral: true,
                    signal: None,
                };
                Some(self.post_routine(activity, now))
            }
        }
    }

    /// Called periodically by the worker: flushes coalesced progress when
    /// allowed, or posts a keep-alive after long silence.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Option<PlannedActivity> {
        if self.finished {
            return None;
        }
        let has_pending = self.pending_thought.is_some() || !self.pending_tools.is_empty();
        if has_pending && self.routine_allowed(now) {
            let body = self.summary();
            self.pending_thought = None;
            self.pending_tools.clear();
            return Some(self.post_routine(PlannedActivity::thought(body, true), now));
        }
        let silent_for = self
            .last_post_at
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default();
        if silent_for >= self.config.keepalive_after {
            let body = match &self.pending_thought {
                Some(t) => format!("Still working: {t}"),
                None => "Still working on it.".to_owned(),
            };
            self.note_post(now);
            return Some(PlannedActivity::thought(body, true));
        }
        None
    }

    fn summary(&self) -> String {
        let tools = match self.pending_tools.len() {
            0 => None,
            n => {
                let mut distinct: Vec<&str> = Vec::new();
                for t in &self.pending_tools {
                    if !distinct.contains(&t.as_str()) {
                        distinct.push(t);
                    }
                }
                let shown: Vec<String> =
                    distinct.iter().take(3).map(|t| format!("`{t}`")).collect();
                let more = distinct.len().saturating_sub(3);
                let suffix = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                Some(format!(
                    "Working: {n} tool call{} ({}{suffix}).",
                    if n == 1 { "" } else { "s" },
                    shown.join(", ")
                ))
            }
        };
        match (&self.pending_thought, tools) {
            (Some(t), Some(tools)) => format!("{t}\n\n{tools}"),
            (Some(t), None) => t.clone(),
            (None, Some(tools)) => tools,
            (None, None) => "Working.".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_460_000, 0).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(secs)
    }

    fn policy(verbosity: Verbosity) -> ActivityPolicy {
        ActivityPolicy::new(
            ActivityPolicyConfig {
                verbosity,
                ..Default::default()
            },
            t0(),
        )
    }

    fn tool(name: &str) -> ProgressEvent {
        ProgressEvent::ToolCall {
            name: name.into(),
            input: "src/lib.rs".into(),
        }
    }

    #[test]
    fn empty_bodies_are_never_posted() {
        let mut p = policy(Verbosity::Verbose);
        assert_eq!(
            p.on_event(ProgressEvent::Thought("   ".into()), at(1)),
            None
        );
        assert_eq!(
            p.on_event(ProgressEvent::Observation("".into()), at(2)),
            None
        );
        assert_eq!(
            p.on_event(
                ProgressEvent::Elicitation {
                    body: " ".into(),
                    options: vec![]
                },
                at(3)
            ),
            None
        );
        let fin = p
            .on_event(
                ProgressEvent::Final(FinalOutcome::Response("  ".into())),
                at(4),
            )
            .unwrap();
        assert_eq!(
            fin.content,
            ActivityContent::Response {
                body: FALLBACK_RESPONSE.into()
            }
        );
    }

    #[test]
    fn final_is_always_delivered_even_over_caps() {
        let mut p = ActivityPolicy::new(
            ActivityPolicyConfig {
                max_per_minute: 1,
                verbosity: Verbosity::Verbose,
                ..Default::default()
            },
            t0(),
        );
        assert!(
            p.on_event(ProgressEvent::Thought("a".into()), at(1))
                .is_some()
        );
        assert!(
            p.on_event(ProgressEvent::Thought("b".into()), at(2))
                .is_none()
        );
        let fin = p.on_event(
            ProgressEvent::Final(FinalOutcome::Error("boom".into())),
            at(3),
        );
        assert_eq!(
            fin,
            Some(PlannedActivity {
                content: ActivityContent::Error {
                    body: "boom".into()
                },
                ephemeral: false,
                signal: None
            })
        );
        // Nothing routine after the end.
        assert_eq!(p.tick(at(4000)), None);
    }

    #[test]
    fn per_minute_cap_holds_in_verbose_mode() {
        let mut p = policy(Verbosity::Verbose);
        let posted = (0..20)
            .filter_map(|i| p.on_event(tool(&format!("tool{i}")), at(i)))
            .count();
        assert_eq!(posted, 6);
        // A minute later the window has room again.
        assert!(p.on_event(tool("later"), at(61)).is_some());
    }

    #[test]
    fn normal_mode_coalesces_tool_calls_into_one_ephemeral_thought() {
        let mut p = policy(Verbosity::Normal);
        for (i, name) in ["read", "grep", "read", "edit", "bash"].iter().enumerate() {
            assert_eq!(p.on_event(tool(name), at(i as i64)), None);
        }
        let flushed = p.tick(at(10)).unwrap();
        assert!(flushed.ephemeral);
        let ActivityContent::Thought { body } = flushed.content else {
            panic!()
        };
        assert_eq!(
            body,
            "Working: 5 tool calls (`read`, `grep`, `edit` and 1 more)."
        );
        // Nothing pending: the next tick is silent.
        assert_eq!(p.tick(at(11)), None);
        // Spacing: more tools right away wait for the summary interval.
        p.on_event(tool("bash"), at(20));
        assert_eq!(p.tick(at(30)), None);
        assert!(p.tick(at(10 + 180)).is_some());
    }

    #[test]
    fn quiet_mode_posts_only_questions_finals_and_keepalives() {
        let mut p = policy(Verbosity::Quiet);
        assert_eq!(
            p.on_event(ProgressEvent::Thought("planning".into()), at(1)),
            None
        );
        assert_eq!(p.on_event(tool("read"), at(2)), None);
        assert_eq!(p.tick(at(3)), None);
        let q = p
            .on_event(
                ProgressEvent::Elicitation {
                    body: String::new(),
                    options: vec![SelectOption {
                        value: "acme/web".into(),
                        label: None,
                    }],
                },
                at(4),
            )
            .unwrap();
        assert!(matches!(q.signal, Some(ActivitySignal::Select { .. })));
        let keepalive = p.tick(at(4 + 25 * 60)).unwrap();
        assert!(keepalive.ephemeral);
        assert_eq!(
            keepalive.content,
            ActivityContent::Thought {
                body: "Still working: planning".into()
            }
        );
    }

    #[test]
    fn keepalive_after_25_minutes_of_silence_only() {
        let mut p = policy(Verbosity::Normal);
        p.record_external_post(t0());
        assert_eq!(p.tick(at(24 * 60)), None);
        assert!(p.tick(at(25 * 60)).is_some());
        assert_eq!(p.tick(at(25 * 60 + 1)), None);
    }

    #[test]
    fn verbose_observation_attaches_to_the_last_tool() {
        let mut p = ActivityPolicy::new(
            ActivityPolicyConfig {
                verbosity: Verbosity::Verbose,
                ..Default::default()
            },
            t0(),
        );
        p.on_event(tool("cargo test"), at(1));
        let obs = p
            .on_event(ProgressEvent::Observation("3 passed".into()), at(2))
            .unwrap();
        assert_eq!(
            obs.content,
            ActivityContent::Action {
                action: "cargo test".into(),
                parameter: "src/lib.rs".into(),
                result: Some("3 passed".into())
            }
        );
    }

    #[test]
    fn a_typical_task_stays_within_fifteen_requests() {
        // 40 minutes, 60 tool calls, 12 thoughts, then a response; the worker
        // ticks every 10 s. Plus ack, link update and two issue updates.
        let mut p = policy(Verbosity::Normal);
        p.record_external_post(t0()); // acknowledgement
        let mut posts = 0;
        for s in (0..40 * 60).step_by(10) {
            let now = at(s);
            if s % 40 == 0 {
                posts += p.on_event(tool("read"), now).is_some() as usize;
            }
            if s % 200 == 0 {
                posts += p
                    .on_event(ProgressEvent::Thought(format!("step {s}")), now)
                    .is_some() as usize;
            }
            posts += p.tick(now).is_some() as usize;
        }
        posts += p
            .on_event(
                ProgressEvent::Final(FinalOutcome::Response("Opened PR #7".into())),
                at(2400),
            )
            .is_some() as usize;
        let total = posts + 1 /* ack */ + 1 /* session links */ + 2 /* issue updates */;
        assert!(total <= 15, "typical task cost {total} Linear requests");
        assert!(
            posts >= 3,
            "some progress must still be visible, got {posts}"
        );
    }

    #[test]
    fn long_text_is_truncated_and_verbosity_parses() {
        let mut p = policy(Verbosity::Verbose);
        let long = "x".repeat(5000);
        let a = p.on_event(ProgressEvent::Thought(long), at(1)).unwrap();
        assert_eq!(a.content.text().chars().count(), MAX_BODY_CHARS);
        assert_eq!("VERBOSE".parse::<Verbosity>(), Ok(Verbosity::Verbose));
        assert!("loud".parse::<Verbosity>().is_err());
    }
}
