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
/// written). Values are inserted verbatim and never re-scanned, so issue text
/// containing `{{…}}` stays as written, and its blank lines and trailing
/// spaces are untouched (they can matter in code blocks).
///
/// A template line holding only a placeholder whose value is empty is
/// dropped, and the template's own blank lines never pile up, so an empty
/// section leaves no gap.
pub(crate) fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut last_blank = true; // no blank lines at the start
    for line in template.trim().lines() {
        if line.trim().is_empty() {
            if !last_blank {
                out.push('\n');
                last_blank = true;
            }
            continue;
        }
        let rendered = substitute(line, &value);
        let sole_placeholder = sole_placeholder(line).is_some();
        if sole_placeholder && rendered.trim().is_empty() {
            continue;
        }
        out.push_str(if sole_placeholder {
            rendered.trim_end()
        } else {
            &rendered
        });
        out.push('\n');
        last_blank = false;
    }
    if last_blank && out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The name when `line` is exactly one known placeholder.
fn sole_placeholder(line: &str) -> Option<&str> {
    let name = line.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    PLACEHOLDERS.contains(&name).then_some(name)
}

fn substitute(line: &str, value: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
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

    #[test]
    fn empty_sections_leave_no_gap_and_values_keep_blank_lines() {
        let t = "head\n\n{{comments}}\n\n{{follow_up}}\n\n{{title}}\n";
        let got = render(t, |n| match n {
            "title" => Some("code:\n\n\n  x  \n".to_owned()),
            _ => Some(String::new()),
        });
        assert_eq!(got, "head\n\ncode:\n\n\n  x\n");
    }
}
