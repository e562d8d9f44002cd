//! `triage`: issues Cyrus starts on by itself, and the bounds on it. The
//! match is `TriageRule::matches`; the worker applies the bounds.

use super::diagnostics::Diagnostics;
use super::walk::Obj;

/// Proactive triage. Without the section (or with no rules) nothing starts
/// on its own.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageConfig {
    pub rules: Vec<TriageRule>,
    /// Most sessions started by triage per UTC day, across rules.
    pub max_per_day: u32,
    /// Only log (and audit) what would be started.
    pub dry_run: bool,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            rules: Vec::new(),
            max_per_day: super::defaults::TRIAGE_MAX_PER_DAY,
            dry_run: false,
        }
    }
}

/// One rule: every non-empty list must match (an empty list matches all).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageRule {
    pub name: String,
    /// Team keys.
    pub teams: Vec<String>,
    /// The issue has at least one of these labels.
    pub labels: Vec<String>,
    /// Workflow state names (`Triage`) or types (`triage`, `backlog`,
    /// `unstarted`).
    pub states: Vec<String>,
    /// Linear priorities: 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    pub priorities: Vec<u8>,
    /// Creator's user id or email.
    pub created_by: Vec<String>,
}

/// What a rule looks at in an issue.
#[derive(Clone, Debug, Default)]
pub struct TriageIssue<'a> {
    pub team_key: Option<&'a str>,
    pub labels: Vec<&'a str>,
    pub state_name: Option<&'a str>,
    pub state_type: Option<&'a str>,
    pub priority: Option<u8>,
    pub creator_id: Option<&'a str>,
    pub creator_email: Option<&'a str>,
}

impl TriageRule {
    pub fn matches(&self, issue: &TriageIssue<'_>) -> bool {
        let any = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        any(&self.teams, issue.team_key)
            && (self.labels.is_empty()
                || issue
                    .labels
                    .iter()
                    .any(|l| self.labels.iter().any(|x| x.eq_ignore_ascii_case(l))))
            && (self.states.is_empty()
                || any(&self.states, issue.state_name)
                || any(&self.states, issue.state_type))
            && (self.priorities.is_empty()
                || issue.priority.is_some_and(|p| self.priorities.contains(&p)))
            && (self.created_by.is_empty()
                || any(&self.created_by, issue.creator_id)
                || any(&self.created_by, issue.creator_email))
    }
}

pub(super) fn read_triage(o: Option<Obj<'_>>, d: &mut Diagnostics) -> Option<TriageConfig> {
    let Some(mut o) = o else {
        return Some(TriageConfig::default());
    };
    let max_per_day = match o.count("maxPerDay", d) {
        Some(n) if n <= u32::MAX as u64 => Some(n as u32),
        Some(n) => {
            d.problem(o.child("maxPerDay"), format!("is too large (got {n})"));
            None
        }
        None => o
            .get("maxPerDay")
            .is_none()
            .then_some(super::defaults::TRIAGE_MAX_PER_DAY),
    };
    let dry_run = o.bool("dryRun", d).unwrap_or(false);
    let mut rules = Vec::new();
    let mut ok = true;
    if let Some(value) = o.get("rules") {
        let path = o.child("rules");
        match value.as_array() {
            None => {
                d.problem(&path, "must be a list of rules");
                ok = false;
            }
            Some(items) => {
                let mut names: Vec<&str> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let name = item.get("name").and_then(|n| n.as_str()).map(str::trim);
                    if let Some(name) = name.filter(|n| !n.is_empty()) {
                        if names.contains(&name) {
                            d.problem(
                                format!("{path}[{i}].name"),
                                format!("\"{name}\" names two rules; names must be unique"),
                            );
                            ok = false;
                        }
                        names.push(name);
                    }
                    match read_rule(format!("{path}[{i}]"), item, d) {
                        Some(rule) => rules.push(rule),
                        None => ok = false,
                    }
                }
            }
        }
    }
    o.finish(d);
    let max_per_day = max_per_day?;
    ok.then_some(TriageConfig {
        rules,
        max_per_day,
        dry_run,
    })
}

fn read_rule(path: String, value: &serde_json::Value, d: &mut Diagnostics) -> Option<TriageRule> {
    let mut r = Obj::new(path, value, d)?;
    let name = match r.string("name", d) {
        Some(n) if !n.trim().is_empty() => Some(n.trim().to_string()),
        _ => {
            d.problem(
                r.child("name"),
                "missing: give the rule a name (it is shown in the audit log)",
            );
            None
        }
    };
    let teams = r.strings("teams", d);
    let labels = r.strings("labels", d);
    let states = r.strings("states", d);
    let created_by = r.strings("createdBy", d);
    let mut priorities = Vec::new();
    let mut ok = true;
    if let Some(value) = r.get("priorities") {
        match value.as_array() {
            Some(items) => {
                for (i, p) in items.iter().enumerate() {
                    match p.as_u64() {
                        Some(p @ 0..=4) => priorities.push(p as u8),
                        _ => {
                            d.problem(
                                format!("{}[{i}]", r.child("priorities")),
                                "must be a Linear priority: 0 (none), 1 (urgent), 2 (high), 3 (medium) or 4 (low)",
                            );
                            ok = false;
                        }
                    }
                }
            }
            None => {
                d.problem(r.child("priorities"), "must be a list of numbers 0–4");
                ok = false;
            }
        }
    }
    if teams.is_empty()
        && labels.is_empty()
        && states.is_empty()
        && priorities.is_empty()
        && created_by.is_empty()
        && ok
    {
        d.warning(
            r.path(),
            "matches every new issue: add teams, labels, states, priorities or createdBy",
        );
    }
    r.finish(d);
    let name = name?;
    ok.then_some(TriageRule {
        name,
        teams,
        labels,
        states,
        priorities,
        created_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_empty_list_must_match() {
        let rule = TriageRule {
            name: "bugs".into(),
            teams: vec!["ENG".into()],
            labels: vec!["Bug".into()],
            states: vec!["triage".into()],
            ..TriageRule::default()
        };
        let issue = TriageIssue {
            team_key: Some("ENG"),
            labels: vec!["bug", "ui"],
            state_name: Some("Triage"),
            state_type: Some("triage"),
            ..TriageIssue::default()
        };
        assert!(rule.matches(&issue));
        assert!(!rule.matches(&TriageIssue {
            team_key: Some("OPS"),
            ..issue.clone()
        }));
        assert!(!rule.matches(&TriageIssue {
            labels: vec!["feature"],
            ..issue.clone()
        }));
        assert!(!rule.matches(&TriageIssue {
            state_name: Some("Todo"),
            state_type: Some("unstarted"),
            ..issue.clone()
        }));
        let urgent = TriageRule {
            name: "urgent".into(),
            priorities: vec![1],
            created_by: vec!["dana@acme.dev".into()],
            ..TriageRule::default()
        };
        assert!(urgent.matches(&TriageIssue {
            priority: Some(1),
            creator_email: Some("Dana@acme.dev"),
            ..TriageIssue::default()
        }));
        assert!(!urgent.matches(&TriageIssue {
            priority: Some(2),
            creator_email: Some("dana@acme.dev"),
            ..TriageIssue::default()
        }));
    }
}
