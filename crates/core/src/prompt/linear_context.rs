//! Linear's `promptContext` without what the prompt already says.
//!
//! Linear's context repeats the issue's title, description, labels, the
//! comments of the session's thread and the guidance rules, all of which
//! the prompt's own sections carry (from the issue query, which is the
//! richer copy: every comment with its author and time). Sending both
//! spends the token budget twice on the same words. This drops each
//! repeated element and keeps everything else verbatim — the team, the
//! project, the parent, thread structure, comments the prompt does not
//! have — so no fact is lost.
//!
//! The format is XML-like but not promised to be well-formed, so this
//! scans for the few known elements instead of parsing; anything it does
//! not recognise stays as it is.

use super::IssueContext;

/// `context` with the elements the issue context repeats removed.
pub(crate) fn condense(context: &str, issue: &IssueContext) -> String {
    let same = |a: &str, b: &str| normalise(&unescape(a)) == normalise(b);
    let mut out = context.to_string();
    remove_elements(&mut out, "title", |inner| same(inner, &issue.title));
    if let Some(description) = issue
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        remove_elements(&mut out, "description", |inner| same(inner, description));
    }
    remove_elements(&mut out, "label", |inner| {
        issue.labels.iter().any(|l| same(inner, l))
    });
    remove_elements(&mut out, "comment", |inner| {
        issue.comments.iter().any(|c| same(inner, &c.body))
    });
    remove_elements(&mut out, "guidance", |inner| {
        rules(inner)
            .iter()
            .all(|rule| issue.guidance.iter().any(|g| same(rule, g)))
    });
    // A thread left without comments, or an issue element left empty,
    // says nothing.
    for thread in ["primary-directive-thread", "other-thread", "issue"] {
        remove_elements(&mut out, thread, |inner| inner.trim().is_empty());
    }
    tidy(&out)
}

/// Removes every `<name …>inner</name>` whose inner text `drop` accepts.
fn remove_elements(text: &mut String, name: &str, drop: impl Fn(&str) -> bool) {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut from = 0;
    while let Some(rel) = text[from..].find(&open) {
        let start = from + rel;
        // `<label` must not match `<labels`: the name ends at `>`, `/` or
        // whitespace.
        let after = text[start + open.len()..].chars().next();
        if !matches!(after, Some('>' | ' ' | '\n' | '\t')) {
            from = start + open.len();
            continue;
        }
        let Some(head_end) = text[start..].find('>').map(|i| start + i + 1) else {
            return;
        };
        let Some(end_rel) = text[head_end..].find(&close) else {
            return;
        };
        let inner_end = head_end + end_rel;
        let mut end = inner_end + close.len();
        if drop(&text[head_end..inner_end]) {
            // An element alone on its line takes the line with it.
            let line_start = start == 0 || text[..start].ends_with('\n');
            if line_start && text[end..].starts_with('\n') {
                end += 1;
            }
            text.replace_range(start..end, "");
            from = start;
        } else {
            from = end;
        }
    }
}

/// The texts of the `<guidance-rule>` elements of a guidance block.
fn rules(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(start) = rest.find("<guidance-rule") {
        let Some(head) = rest[start..].find('>') else {
            break;
        };
        let body = &rest[start + head + 1..];
        let Some(end) = body.find("</guidance-rule>") else {
            break;
        };
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops the blank lines removals leave behind.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Comment;

    const CONTEXT: &str = "<issue identifier=\"ENG-142\">\n<title>Login test is flaky on CI</title>\n<description>`auth/login.spec.ts` times out in about 1 of 5 CI runs.</description>\n<team name=\"Engineering\"/>\n<label>Bug</label>\n<label>ci</label>\n<project name=\"Reliability\"/>\n</issue>\n\n<primary-directive-thread comment-id=\"c1\">\n<comment author=\"Dana\">Please look at this &amp; fix it</comment>\n</primary-directive-thread>\n\n<guidance><guidance-rule origin=\"team\" team-name=\"Engineering\">Open pull requests against `main`.</guidance-rule></guidance>";

    fn issue() -> IssueContext {
        IssueContext {
            identifier: "ENG-142".into(),
            title: "Login test is flaky on CI".into(),
            description: Some("`auth/login.spec.ts` times out in about\n1 of 5 CI runs.".into()),
            labels: vec!["Bug".into()],
            comments: vec![Comment {
                author: "Dana".into(),
                created_at: chrono::Utc::now(),
                body: "Please look at this & fix it".into(),
            }],
            guidance: vec!["Open pull requests against `main`.".into()],
            ..IssueContext::default()
        }
    }

    #[test]
    fn repeated_elements_go_and_unique_ones_stay() {
        let got = condense(CONTEXT, &issue());
        assert_eq!(
            got,
            "<issue identifier=\"ENG-142\">\n<team name=\"Engineering\"/>\n<label>ci</label>\n<project name=\"Reliability\"/>\n</issue>"
        );
    }

    #[test]
    fn what_the_issue_lacks_is_kept() {
        let bare = IssueContext {
            title: "Another title".into(),
            ..IssueContext::default()
        };
        let got = condense(CONTEXT, &bare);
        assert!(got.contains("<title>Login test is flaky on CI</title>"));
        assert!(
            got.contains("<description>"),
            "our description is empty: theirs stays"
        );
        assert!(got.contains("Please look at this &amp; fix it"));
        assert!(got.contains("<guidance>"));
    }

    #[test]
    fn unknown_or_broken_markup_is_left_alone() {
        let odd = "<labels>Bug</labels> <title>unterminated";
        assert_eq!(condense(odd, &issue()), odd);
    }
}
