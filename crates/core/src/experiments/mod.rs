//! Model experiments: which experiment and arm a task belongs to, and the
//! statistics that compare arms (`stats`).
//!
//! Assignment is a pure function of the experiment's name and the Linear
//! issue id — SHA-256 of `name:issue`, its first eight bytes as a number,
//! placed on the arms' cumulative weights — so retries, restarts,
//! follow-ups and every replica agree without coordination, and an issue
//! keeps its arm for the life of the experiment.

pub mod stats;

use crate::TaskType;
use crate::config::{Config, Experiment};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What an experiment's match looks at.
#[derive(Clone, Debug, Default)]
pub struct ExperimentTask<'a> {
    pub issue_id: &'a str,
    pub task_type: Option<TaskType>,
    pub repository_id: Option<&'a str>,
    pub labels: &'a [String],
    pub team_key: Option<&'a str>,
}

/// A task's place in an experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub experiment: String,
    pub arm: String,
    pub model: String,
}

/// The first running experiment that matches `task`, and its arm.
pub fn assign(
    config: &Config,
    task: &ExperimentTask<'_>,
    now: DateTime<Utc>,
) -> Option<Assignment> {
    let experiment = config
        .experiments
        .iter()
        .find(|e| e.is_running(now) && matches(e, task))?;
    let arm = pick_arm(experiment, task.issue_id);
    Some(Assignment {
        experiment: experiment.name.clone(),
        arm: arm.name.clone(),
        model: arm.model.clone(),
    })
}

fn matches(e: &Experiment, t: &ExperimentTask<'_>) -> bool {
    let m = &e.matches;
    let text = |list: &[String], v: Option<&str>| {
        list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
    };
    (m.task_types.is_empty() || t.task_type.is_some_and(|tt| m.task_types.contains(&tt)))
        && text(&m.repositories, t.repository_id)
        && text(&m.teams, t.team_key)
        && (m.labels.is_empty()
            || t.labels
                .iter()
                .any(|l| m.labels.iter().any(|x| x.eq_ignore_ascii_case(l))))
}

fn pick_arm<'e>(e: &'e Experiment, issue_id: &str) -> &'e crate::config::Arm {
    let digest = Sha256::digest(format!("{}:{issue_id}", e.name).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // A point in [0, 1): 53 bits are all an f64 holds exactly.
    let point = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    let total: f64 = e.arms.iter().map(|a| a.weight).sum();
    let mut edge = 0.0;
    for arm in &e.arms {
        edge += arm.weight / total;
        if point < edge {
            return arm;
        }
    }
    e.arms.last().expect("validation requires two arms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::collections::BTreeMap;

    fn config(experiments: &str) -> Config {
        let text = format!(
            r#"{{
              "codegen": {{"orgId": 1, "apiToken": "t", "pricing": {{"a": {{"inputPerMTok": 1, "outputPerMTok": 1}}, "b": {{"inputPerMTok": 1, "outputPerMTok": 1}}}}}},
              "linear": {{"webhookSecret": "s"}},
              "repositories": [{{"id": "web", "name": "web", "linearWorkspaceId": "org", "linearToken": "k"}}],
              "experiments": {experiments}
            }}"#
        );
        parse(&text, &BTreeMap::new())
            .expect("config parses")
            .config
    }

    fn task(issue: &str) -> ExperimentTask<'_> {
        ExperimentTask {
            issue_id: issue,
            task_type: Some(TaskType::Debugger),
            repository_id: Some("web"),
            labels: &[],
            team_key: Some("ENG"),
        }
    }

    #[test]
    fn assignment_is_sticky_and_follows_the_weights() {
        let c = config(
            r#"[{"name": "sonnet-vs-b", "arms": [{"name": "A", "model": "a", "weight": 3}, {"name": "B", "model": "b", "weight": 1}]}]"#,
        );
        let now = Utc::now();
        let first = assign(&c, &task("issue-1"), now).unwrap();
        for _ in 0..5 {
            assert_eq!(assign(&c, &task("issue-1"), now).unwrap(), first);
        }
        let ids: Vec<String> = (0..4000).map(|i| format!("issue-{i}")).collect();
        let a = ids
            .iter()
            .filter(|id| assign(&c, &task(id), now).unwrap().arm == "A")
            .count();
        // 3:1 within a few percent.
        assert!((2850..3150).contains(&a), "{a} of 4000 in A");
    }

    #[test]
    fn match_window_and_order_decide_which_experiment() {
        let c = config(
            r#"[{"name": "bugs", "match": {"taskTypes": ["builder"]}, "arms": [{"name": "A", "model": "a"}, {"name": "B", "model": "b"}]},
                {"name": "later", "startsAt": "2999-01-01T00:00:00Z", "arms": [{"name": "A", "model": "a"}, {"name": "B", "model": "b"}]},
                {"name": "all", "match": {"teams": ["eng"]}, "arms": [{"name": "A", "model": "a"}, {"name": "B", "model": "b"}]}]"#,
        );
        let now = Utc::now();
        assert_eq!(assign(&c, &task("i"), now).unwrap().experiment, "all");
        let builder = ExperimentTask {
            task_type: Some(TaskType::Builder),
            ..task("i")
        };
        assert_eq!(assign(&c, &builder, now).unwrap().experiment, "bugs");
        let other_team = ExperimentTask {
            team_key: Some("OPS"),
            ..task("i")
        };
        assert_eq!(assign(&c, &other_team, now), None);
    }
}
