//! The four prompt templates, compiled into the binary, and the tiny
//! `{{name}}` substitution that fills them. Templates are plain Markdown so
//! they can be reviewed and edited without touching Rust.

use crate::TaskType;

pub(crate) fn template(task_type: TaskType) -> &'static str {
    match task_type {
        TaskType::Debugger => include_str!("../../templates/debugger.md"),
        TaskType::Builder => include_str!("../../templates/builder.md"),
        TaskType::Scoper => include_str!("../../templates/scoper.md"),
        TaskType::Orchestrator => include_str!("../../templates/orchestrator.md"),
    }
}

/// Every placeholder a template may use.
pub(crate) const PLACEHOLDERS: &[&str] = &[
    "identifier",
    "title",
    "repository",
    "issue_context",
    "comments",
    "linear_context",
    "previous_run",
    "follow_up",
];

/// Replaces each known `{{name}}` with `value(name)` (unknown names stay as
/// written). Values are inserted verbatim
/// and never re-scanned, so issue text containing `{{…}}` stays as written.
/// Runs of blank lines left by empty sections collapse to one.
pub(crate) fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if PLACEHOLDERS.contains(&&after[..end]) => {
                out.push_str(&value(&after[..end]).unwrap_or_default());
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    collapse_blank_lines(&out)
}

fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_uses_only_known_placeholders() {
        for t in TaskType::ALL {
            let text = template(t);
            let mut rest = text;
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let end = after.find("}}").expect("closed placeholder");
                assert!(
                    PLACEHOLDERS.contains(&&after[..end]),
                    "{t}: unknown {{{{{}}}}}",
                    &after[..end]
                );
                rest = &after[end + 2..];
            }
            for p in ["identifier", "title", "issue_context"] {
                assert!(text.contains(&format!("{{{{{p}}}}}")), "{t} lacks {p}");
            }
        }
    }

    #[test]
    fn values_are_not_rescanned() {
        let got = render("a {{title}} b {{unknown}}\n\n\n\nc", |n| {
            (n == "title").then(|| "{{title}}".to_owned())
        });
        assert_eq!(got, "a {{title}} b {{unknown}}\n\nc\n");
    }
}
