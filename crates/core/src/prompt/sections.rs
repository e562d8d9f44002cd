//! Renders each section of the prompt from the input. Empty sections render
//! as nothing, and the template's blank lines collapse around them.

use super::template::{render, template};
use super::{Comment, PreviousRun, PromptInput};
use std::fmt::Write;

/// The current (possibly cut) state of the variable parts of a prompt.
pub(crate) struct Parts<'a> {
    pub input: &'a PromptInput,
    /// Comments still included, oldest first.
    pub comments: &'a [&'a Comment],
    /// (number, characters) of the oldest comments dropped.
    pub dropped: Option<(usize, usize)>,
    pub description: Option<String>,
    pub prompt_context: Option<String>,
}

/// The sections a template is filled with, in template order.
const SECTIONS: [&str; 6] = [
    "repository",
    "issue_context",
    "comments",
    "linear_context",
    "previous_run",
    "follow_up",
];

impl Parts<'_> {
    pub fn render(&self) -> String {
        render(template(self.input.task_type), |name| self.value(name))
    }

    fn value(&self, name: &str) -> Option<String> {
        let issue = &self.input.issue;
        Some(match name {
            "identifier" => issue.identifier.clone(),
            "title" => one_line(&issue.title),
            "repository" => self.repository(),
            "issue_context" => self.issue_context(),
            "comments" => self.comments(),
            "linear_context" => self.linear_context(),
            "previous_run" => self.previous_run(),
            "follow_up" => self.follow_up(),
            _ => return None,
        })
    }

    /// Approximate tokens per section of `rendered` (this state's text):
    /// each section, and `instructions` for the rest (the template's text).
    pub fn section_tokens(&self, rendered: &str) -> Vec<(&'static str, usize)> {
        let mut out = Vec::new();
        let mut used = 0;
        for name in SECTIONS {
            let chars = self
                .value(name)
                .map(|v| super::cut::char_len(v.trim()))
                .unwrap_or(0);
            used += chars;
            out.push((name, chars.div_ceil(4)));
        }
        let rest = super::cut::char_len(rendered).saturating_sub(used);
        out.insert(0, ("instructions", rest.div_ceil(4)));
        out
    }

    fn repository(&self) -> String {
        let r = &self.input.repository;
        let mut s = String::from("## Repository\n");
        let _ = writeln!(s, "- Repository: {}", r.name);
        if let Some(branch) = &r.branch {
            let _ = writeln!(s, "- Base branch: {branch}");
        }
        if !r.allowed_tools.is_empty() {
            let _ = writeln!(s, "- Allowed tools: {}", r.allowed_tools.join(", "));
        }
        if !r.mcp_servers.is_empty() {
            let _ = writeln!(s, "- MCP servers: {}", r.mcp_servers.join(", "));
        }
        s
    }

    fn issue_context(&self) -> String {
        let i = &self.input.issue;
        let mut s = String::from("## Issue\n");
        let _ = writeln!(s, "- Identifier: {}", i.identifier);
        let _ = writeln!(s, "- Title: {}", one_line(&i.title));
        if let Some(state) = &i.state {
            let _ = writeln!(s, "- State: {state}");
        }
        if !i.labels.is_empty() {
            let _ = writeln!(s, "- Labels: {}", i.labels.join(", "));
        }
        if let Some(p) = &i.parent {
            let _ = writeln!(
                s,
                "- Parent: {} {}{}",
                p.identifier,
                one_line(&p.title),
                state_suffix(&p.state)
            );
        }
        if !i.sub_issues.is_empty() {
            s.push_str("- Sub-issues:\n");
            for c in &i.sub_issues {
                let _ = writeln!(
                    s,
                    "  - {} {}{}",
                    c.identifier,
                    one_line(&c.title),
                    state_suffix(&c.state)
                );
            }
        }
        if !i.attachments.is_empty() {
            s.push_str("- Attachments:\n");
            for a in &i.attachments {
                let _ = writeln!(s, "  - [{}]({})", one_line(&a.title), a.url);
            }
        }
        s.push_str("\n### Description\n");
        match self.description.as_deref().map(str::trim) {
            Some(d) if !d.is_empty() => s.push_str(d),
            _ => s.push_str("(no description)"),
        }
        s.push('\n');
        s
    }

    fn comments(&self) -> String {
        if self.comments.is_empty() && self.dropped.is_none() {
            return String::new();
        }
        let mut s = String::from("## Comments (oldest first)\n");
        if let Some((count, chars)) = self.dropped {
            let _ = writeln!(
                s,
                "[… truncated {count} older comment{} ({chars} characters) …]",
                if count == 1 { "" } else { "s" }
            );
        }
        for c in self.comments {
            s.push_str(&render_comment(c));
        }
        s
    }

    fn linear_context(&self) -> String {
        let i = &self.input.issue;
        let mut s = String::new();
        if !i.guidance.is_empty() {
            s.push_str("## Guidance from the workspace\n");
            for g in &i.guidance {
                let _ = writeln!(s, "- {}", g.trim());
            }
        }
        if let Some(ctx) = self
            .prompt_context
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str("## Context from Linear\n");
            s.push_str(ctx.trim());
            s.push('\n');
        }
        s
    }

    fn previous_run(&self) -> String {
        self.input
            .previous_run
            .as_ref()
            .map(previous_run)
            .unwrap_or_default()
    }

    fn follow_up(&self) -> String {
        self.input
            .follow_up
            .as_deref()
            .map(follow_up)
            .unwrap_or_default()
    }
}

/// The `previous_run` section: what the earlier run did, and where to push.
pub(crate) fn previous_run(p: &PreviousRun) -> String {
    let mut s = String::from("## Previous run\nThis continues earlier work on the issue.\n");
    if let Some(status) = &p.status {
        let _ = writeln!(s, "- Status: {status}");
    }
    if let Some(pr) = &p.pr_url {
        let _ = writeln!(
            s,
            "- Pull request: {pr} (push to this pull request's branch rather than opening a new one)"
        );
    }
    if let Some(summary) = &p.summary {
        let _ = writeln!(s, "- Summary: {}", summary.trim());
    }
    s
}

/// The `follow_up` section: the requester's new message (empty if blank).
pub(crate) fn follow_up(message: &str) -> String {
    match message.trim() {
        "" => String::new(),
        m => format!("## New message from the requester\nAct on this message first:\n\n{m}\n"),
    }
}

fn render_comment(c: &Comment) -> String {
    format!(
        "\n**{}** ({}):\n{}\n",
        c.author,
        c.created_at.format("%Y-%m-%d %H:%M UTC"),
        c.body.trim()
    )
}

/// Characters a comment adds to the prompt.
pub(crate) fn comment_len(c: &Comment) -> usize {
    super::cut::char_len(&render_comment(c))
}

fn state_suffix(state: &Option<String>) -> String {
    state
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

/// Titles go on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
