//! `experiments[]`: model A/B experiments. Assignment and the statistics are
//! `crate::experiments`; this module reads and validates the list.

use super::diagnostics::Diagnostics;
use super::walk::{Obj, show};
use crate::TaskType;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One experiment: which tasks it takes and how they are split.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    pub name: String,
    pub matches: ExperimentMatch,
    pub arms: Vec<Arm>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub enabled: bool,
}

/// Every non-empty list must match (an empty list matches all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentMatch {
    pub task_types: Vec<TaskType>,
    /// Repository ids.
    pub repositories: Vec<String>,
    pub labels: Vec<String>,
    /// Team keys.
    pub teams: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arm {
    pub name: String,
    pub model: String,
    /// Relative share (> 0).
    pub weight: f64,
}

impl Experiment {
    /// Running at `now`: enabled and inside its window.
    pub fn is_running(&self, now: DateTime<Utc>) -> bool {
        self.enabled
            && self.starts_at.is_none_or(|s| now >= s)
            && self.ends_at.is_none_or(|e| now < e)
    }
}

pub(super) fn read_experiments(
    value: Option<&serde_json::Value>,
    known_models: &[&str],
    d: &mut Diagnostics,
) -> Option<Vec<Experiment>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let Some(items) = value.as_array() else {
        d.problem("experiments", "must be a list of experiments");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match read_one(format!("experiments[{i}]"), item, known_models, d) {
            Some(e) => {
                if out.iter().any(|o: &Experiment| o.name == e.name) {
                    d.problem(
                        format!("experiments[{i}].name"),
                        format!("\"{}\" names two experiments; names must be unique (assignment hashes the name)", e.name),
                    );
                    ok = false;
                }
                out.push(e);
            }
            None => ok = false,
        }
    }
    for (i, a) in out.iter().enumerate() {
        for b in &out[..i] {
            if a.enabled && b.enabled && may_overlap(&a.matches, &b.matches) {
                d.warning(
                    format!("experiments[{i}]"),
                    format!(
                        "may take the same tasks as experiment \"{}\", listed earlier, which wins for them",
                        b.name
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// Two matches are disjoint when some dimension both restrict has no value
/// in common; otherwise a task could match both.
fn may_overlap(a: &ExperimentMatch, b: &ExperimentMatch) -> bool {
    fn disjoint<T: PartialEq>(x: &[T], y: &[T], eq: impl Fn(&T, &T) -> bool) -> bool {
        !x.is_empty() && !y.is_empty() && !x.iter().any(|v| y.iter().any(|w| eq(v, w)))
    }
    let text = |x: &String, y: &String| x.eq_ignore_ascii_case(y);
    !(disjoint(&a.task_types, &b.task_types, |x, y| x == y)
        || disjoint(&a.repositories, &b.repositories, text)
        || disjoint(&a.teams, &b.teams, text))
}

fn read_one(
    path: String,
    value: &serde_json::Value,
    known_models: &[&str],
    d: &mut Diagnostics,
) -> Option<Experiment> {
    let mut o = Obj::new(path, value, d)?;
    let mut ok = true;
    let name = match o.string("name", d) {
        Some(n) if !n.trim().is_empty() => Some(n.trim().to_string()),
        _ => {
            d.problem(
                o.child("name"),
                "missing: name the experiment (reports use it)",
            );
            None
        }
    };
    let enabled = o.bool("enabled", d).unwrap_or(true);
    let mut matches = ExperimentMatch::default();
    if let Some(mut m) = o.obj("match", d) {
        for (i, t) in m.strings("taskTypes", d).iter().enumerate() {
            match t.parse::<TaskType>() {
                Ok(t) => matches.task_types.push(t),
                Err(e) => {
                    d.problem(format!("{}.taskTypes[{i}]", m.path()), e);
                    ok = false;
                }
            }
        }
        matches.repositories = m.strings("repositories", d);
        matches.labels = m.strings("labels", d);
        matches.teams = m.strings("teams", d);
        m.finish(d);
    }
    let mut time =
        |key: &'static str, o: &mut Obj<'_>, d: &mut Diagnostics| -> Option<DateTime<Utc>> {
            let text = o.string(key, d)?;
            match DateTime::parse_from_rfc3339(&text) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    d.problem(
                    o.child(key),
                    format!(
                        "must be an RFC 3339 time such as \"2026-12-01T00:00:00Z\" (got \"{text}\")"
                    ),
                );
                    ok = false;
                    None
                }
            }
        };
    let starts_at = time("startsAt", &mut o, d);
    let ends_at = time("endsAt", &mut o, d);
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        d.problem(o.child("endsAt"), "must be after startsAt");
        ok = false;
    }
    let mut arms = Vec::new();
    match o.get("arms").and_then(|a| a.as_array()) {
        None => {
            d.problem(
                o.child("arms"),
                "missing: list at least two arms, each {name, model, weight}",
            );
            ok = false;
        }
        Some(items) => {
            if items.len() < 2 {
                d.problem(o.child("arms"), "needs at least two arms to compare");
                ok = false;
            }
            for (i, item) in items.iter().enumerate() {
                match read_arm(format!("{}[{i}]", o.child("arms")), item, known_models, d) {
                    Some(arm) => {
                        if arms.iter().any(|a: &Arm| a.name == arm.name) {
                            d.problem(
                                format!("{}[{i}].name", o.child("arms")),
                                format!("\"{}\" names two arms", arm.name),
                            );
                            ok = false;
                        }
                        arms.push(arm);
                    }
                    None => ok = false,
                }
            }
        }
    }
    o.finish(d);
    let name = name?;
    ok.then_some(Experiment {
        name,
        matches,
        arms,
        starts_at,
        ends_at,
        enabled,
    })
}

fn read_arm(
    path: String,
    value: &serde_json::Value,
    known_models: &[&str],
    d: &mut Diagnostics,
) -> Option<Arm> {
    let mut o = Obj::new(path, value, d)?;
    let name = o.string("name", d).filter(|n| !n.trim().is_empty());
    if name.is_none() {
        d.problem(o.child("name"), "missing: name the arm (A, B, …)");
    }
    let model = o.string("model", d).filter(|m| !m.trim().is_empty());
    match &model {
        None => d.problem(o.child("model"), "missing: the model this arm runs with"),
        Some(m) if !known_models.contains(&m.as_str()) => d.warning(
            o.child("model"),
            format!("model \"{m}\" has no entry in codegen.pricing: its cost cannot be estimated, so cost figures for this arm are zero"),
        ),
        Some(_) => {}
    }
    let weight = match o.get("weight") {
        None => Some(1.0),
        Some(serde_json::Value::Number(n))
            if n.as_f64().is_some_and(|w| w > 0.0 && w.is_finite()) =>
        {
            n.as_f64()
        }
        Some(other) => {
            d.problem(
                o.child("weight"),
                format!("must be a number greater than 0 (got {})", show(other)),
            );
            None
        }
    };
    if o.get("template").is_some() {
        d.warning(
            o.child("template"),
            "per-arm templates are not supported yet; the task type's template is used",
        );
    }
    o.finish(d);
    Some(Arm {
        name: name?.trim().to_string(),
        model: model?,
        weight: weight?,
    })
}
