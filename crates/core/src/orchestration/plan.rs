//! The plan a planning run answers with: the sub-issues to create, as one
//! fenced JSON block of a documented shape (`docs/configuration.md`,
//! "orchestration"). Read and checked here, purely: the shape (unknown
//! fields are refused), unique keys, known dependencies, no cycle, and at
//! most `orchestration.maxSubIssues` entries. Every problem is reported, in
//! words the planning run can act on when they are sent back to it.

use super::{Child, ChildStatus, find_cycle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A valid plan: the sub-issues in the order given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Plan {
    pub sub_issues: Vec<PlannedSubIssue>,
}

/// One sub-issue of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlannedSubIssue {
    /// Unique in the plan; what `depends_on` names.
    pub key: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    /// Keys of sub-issues that must be done first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Names of existing labels.
    #[serde(default)]
    pub labels: Vec<String>,
}

impl PlannedSubIssue {
    /// The issue description Cyrus writes: the plan's text, its acceptance
    /// criteria as a checklist, and a line linking back to the parent.
    pub fn body(&self, parent: &str, marker: &str) -> String {
        let mut out = self.description.trim().to_string();
        if !self.acceptance_criteria.is_empty() {
            out.push_str("\n\n**Acceptance criteria**\n");
            for c in &self.acceptance_criteria {
                out.push_str(&format!("\n- [ ] {}", c.trim()));
            }
        }
        out.push_str(&format!(
            "\n\nPart of {parent}, planned by Cyrus ({marker})."
        ));
        out.trim_start().to_string()
    }
}

/// The `select` option that approves a plan of `n` sub-issues.
pub fn approval_option(n: usize) -> String {
    format!("Create the {n} sub-issues")
}

/// A reply read as approving the plan: the option, or a message starting
/// with yes / ok / approve / create / go / lgtm (any case). Anything else
/// is feedback for the planning run.
pub fn is_approval(reply: &str) -> bool {
    let word = reply
        .trim()
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rest = reply.trim().to_ascii_lowercase();
    let negated = rest.contains(" but ") || rest.contains(" not ") || rest.contains("n't");
    !negated
        && matches!(
            word.as_str(),
            "yes"
                | "y"
                | "ok"
                | "okay"
                | "approve"
                | "approved"
                | "create"
                | "go"
                | "lgtm"
                | "sure"
        )
}

/// The last ```json block of `answer`, read as a plan and checked. `Err`
/// lists every problem found.
pub fn parse_plan(answer: &str, max_sub_issues: usize) -> Result<Plan, Vec<String>> {
    let Some(block) = last_json_block(answer) else {
        return Err(vec![
            "the answer has no fenced ```json block with the plan".to_string(),
        ]);
    };
    let plan: Plan = serde_json::from_str(block)
        .map_err(|e| vec![format!("the plan is not of the expected shape: {e}")])?;
    let problems = check(&plan, max_sub_issues);
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Whether the answer holds a plan at all (a run that did the work itself
/// answers without one).
pub fn has_plan_block(answer: &str) -> bool {
    last_json_block(answer).is_some()
}

fn last_json_block(text: &str) -> Option<&str> {
    let start = text.rfind("```json")? + "```json".len();
    let rest = &text[start..];
    let end = rest.find("```")?;
    Some(rest[..end].trim())
}

fn check(plan: &Plan, max: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let n = plan.sub_issues.len();
    if n == 0 {
        problems.push("the plan lists no sub-issues".to_string());
    }
    if n > max {
        problems.push(format!(
            "the plan lists {n} sub-issues; at most {max} are allowed (orchestration.maxSubIssues)"
        ));
    }
    let mut keys = BTreeSet::new();
    for (i, s) in plan.sub_issues.iter().enumerate() {
        let at = format!("subIssues[{i}]");
        if s.key.trim().is_empty() {
            problems.push(format!("{at}.key is empty"));
        } else if !keys.insert(s.key.as_str()) {
            problems.push(format!("{at}.key \"{}\" is used twice", s.key));
        }
        if s.title.trim().is_empty() {
            problems.push(format!("{at}.title is empty"));
        }
    }
    for (i, s) in plan.sub_issues.iter().enumerate() {
        for d in &s.depends_on {
            if d == &s.key {
                problems.push(format!("subIssues[{i}] (\"{}\") depends on itself", s.key));
            } else if !keys.contains(d.as_str()) {
                problems.push(format!(
                    "subIssues[{i}] (\"{}\") depends on \"{d}\", which is no key in the plan",
                    s.key
                ));
            }
        }
    }
    if problems.is_empty() {
        let graph: Vec<Child> = plan
            .sub_issues
            .iter()
            .map(|s| Child {
                id: s.key.clone(),
                identifier: s.key.clone(),
                title: s.title.clone(),
                priority: 0,
                sort_order: 0.0,
                blocked_by: s.depends_on.clone(),
                external_blockers: Vec::new(),
                status: ChildStatus::Waiting,
            })
            .collect();
        if let Some(cycle) = find_cycle(&graph) {
            problems.push(format!("the dependencies form a cycle: {cycle}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> String {
        format!("Here is the plan.\n\n```json\n{json}\n```\n\nNo decisions needed.")
    }

    #[test]
    fn a_valid_plan_is_read_from_the_last_block() {
        let text = format!(
            "```json\n{{\"old\": 1}}\n```\n{}",
            answer(
                r#"{"subIssues": [
                    {"key": "db", "title": "Table", "acceptanceCriteria": ["migrates"]},
                    {"key": "api", "title": "API", "description": "Expose it.", "dependsOn": ["db"], "labels": ["Feature"]}
                ]}"#
            )
        );
        let plan = parse_plan(&text, 12).unwrap();
        assert_eq!(plan.sub_issues.len(), 2);
        assert_eq!(plan.sub_issues[1].depends_on, ["db"]);
        let body = plan.sub_issues[0].body("ENG-1", "plan:db");
        assert!(body.contains("- [ ] migrates"), "{body}");
        assert!(
            body.ends_with("Part of ENG-1, planned by Cyrus (plan:db)."),
            "{body}"
        );
    }

    #[test]
    fn approvals_are_recognised_and_feedback_is_not() {
        for yes in ["yes", "Yes please", "LGTM", &approval_option(3), "ok!"] {
            assert!(is_approval(yes), "{yes}");
        }
        for no in [
            "no",
            "yes but split the API part",
            "make it two",
            "",
            "don't",
        ] {
            assert!(!is_approval(no), "{no}");
        }
    }

    #[test]
    fn every_problem_is_named() {
        let text = answer(
            r#"{"subIssues": [
                {"key": "a", "title": "", "dependsOn": ["zzz", "a"]},
                {"key": "a", "title": "Again"}
            ]}"#,
        );
        let problems = parse_plan(&text, 1).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "at most 1",
            "subIssues[0].title is empty",
            "\"a\" is used twice",
            "depends on \"zzz\"",
            "depends on itself",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
    }

    #[test]
    fn unknown_fields_missing_blocks_and_cycles_are_refused() {
        let unknown = parse_plan(
            &answer(r#"{"subIssues": [{"key": "a", "title": "A", "owner": "me"}]}"#),
            12,
        )
        .unwrap_err();
        assert!(unknown[0].contains("unknown field `owner`"), "{unknown:?}");
        assert!(parse_plan("no plan here", 12).unwrap_err()[0].contains("no fenced"));
        assert!(!has_plan_block("Finished: did it."));
        let cycle = parse_plan(
            &answer(
                r#"{"subIssues": [
                {"key": "a", "title": "A", "dependsOn": ["b"]},
                {"key": "b", "title": "B", "dependsOn": ["a"]}
            ]}"#,
            ),
            12,
        )
        .unwrap_err();
        assert!(
            cycle[0].contains("cycle: a → b → a") || cycle[0].contains("cycle: b → a → b"),
            "{cycle:?}"
        );
        assert!(
            parse_plan(&answer(r#"{"subIssues": []}"#), 12).unwrap_err()[0]
                .contains("no sub-issues")
        );
    }
}
