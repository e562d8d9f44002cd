//! The figures that compare an experiment's arms, and the verdict.
//!
//! - Rates carry a Wilson score interval at 95 % (sensible for small counts
//!   and rates near 0 or 1, unlike the normal approximation).
//! - The verdict on the *completion rate* (the issue reached a completed
//!   state within the outcome window) is a two-sided two-proportion z-test
//!   of each arm against the first (the control), at 5 %. When it finds no
//!   difference it says how many tasks per arm a 10-point difference would
//!   need at 80 % power.
//! - The verdict on *cost* is a percentile bootstrap of the difference in
//!   mean estimated cost (2 000 resamples, a fixed seed so a report is
//!   reproducible).
//!
//! Distributions come from `statrs`; nothing here reads a clock or a file.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// One task of an experiment, as the store and the outcome window say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskOutcome {
    pub arm: String,
    /// The task has ended (its figures are final but for late outcomes).
    pub finished: bool,
    /// Codegen's run ended successfully.
    pub succeeded: bool,
    pub pull_request: bool,
    /// The issue reached a completed state within the outcome window:
    /// `None` while the window is still open and it has not (yet).
    pub completed: Option<bool>,
    /// Reopened after it was completed.
    pub reopened: bool,
    pub follow_ups: u32,
    pub resumes: u32,
    pub stopped_by_person: bool,
    pub cost_micros: i64,
    pub duration_ms: Option<i64>,
}

/// A proportion with its 95 % Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub successes: u64,
    pub trials: u64,
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmReport {
    pub arm: String,
    pub model: String,
    pub tasks: u64,
    pub finished: u64,
    pub success: Rate,
    pub pull_request: Rate,
    /// Over tasks whose outcome window has closed or that completed.
    pub completion: Rate,
    pub reopened: u64,
    pub stopped_by_person: u64,
    pub follow_ups_per_task: Option<f64>,
    pub resumes_per_task: Option<f64>,
    pub mean_cost_micros: Option<i64>,
    pub median_cost_micros: Option<i64>,
    pub median_duration_ms: Option<i64>,
    pub cost_per_completed_micros: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub arm: String,
    pub against: String,
    /// Two-sided p-value of the completion-rate difference.
    pub completion_p_value: Option<f64>,
    /// 95 % interval of mean cost (arm − against), micro-dollars.
    pub cost_difference_low_micros: Option<i64>,
    pub cost_difference_high_micros: Option<i64>,
    pub verdict: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentReport {
    pub arms: Vec<ArmReport>,
    pub comparisons: Vec<Comparison>,
}

const Z95: f64 = 1.959_963_984_540_054;
const BOOTSTRAP_SAMPLES: usize = 2_000;
/// The difference the "tasks needed" estimate is for.
const DETECTABLE_DIFFERENCE: f64 = 0.10;

fn normal() -> Normal {
    Normal::standard()
}

pub fn wilson(successes: u64, trials: u64) -> Rate {
    if trials == 0 {
        return Rate {
            successes,
            trials,
            value: None,
            low: None,
            high: None,
        };
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt() / (1.0 + z2 / n);
    Rate {
        successes,
        trials,
        value: Some(p),
        low: Some((centre - half).max(0.0)),
        high: Some((centre + half).min(1.0)),
    }
}

/// Two-sided p-value that two proportions differ (pooled z-test); `None`
/// when either is empty or the pooled rate is 0 or 1 (no variance).
pub fn two_proportion_p(a: &Rate, b: &Rate) -> Option<f64> {
    if a.trials == 0 || b.trials == 0 {
        return None;
    }
    let (n1, n2) = (a.trials as f64, b.trials as f64);
    let pooled = (a.successes + b.successes) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (b.successes as f64 / n2 - a.successes as f64 / n1) / se;
    Some(2.0 * (1.0 - normal().cdf(z.abs())))
}

/// Tasks per arm to detect `DETECTABLE_DIFFERENCE` from a base rate `p` at
/// 5 % significance and 80 % power.
pub fn tasks_needed(p: f64) -> u64 {
    let z_power = normal().inverse_cdf(0.80);
    let p1 = p.clamp(0.0, 1.0);
    let p2 = if p1 + DETECTABLE_DIFFERENCE <= 1.0 {
        p1 + DETECTABLE_DIFFERENCE
    } else {
        p1 - DETECTABLE_DIFFERENCE
    };
    let variance = p1 * (1.0 - p1) + p2 * (1.0 - p2);
    ((Z95 + z_power).powi(2) * variance / DETECTABLE_DIFFERENCE.powi(2)).ceil() as u64
}

/// 95 % percentile-bootstrap interval of mean(b) − mean(a).
pub fn bootstrap_mean_difference(a: &[i64], b: &[i64], seed: u64) -> Option<(i64, i64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let resample_mean = |xs: &[i64], rng: &mut StdRng| {
        let sum: f64 = (0..xs.len())
            .map(|_| xs[rng.random_range(0..xs.len())] as f64)
            .sum();
        sum / xs.len() as f64
    };
    let mut diffs: Vec<f64> = (0..BOOTSTRAP_SAMPLES)
        .map(|_| resample_mean(b, &mut rng) - resample_mean(a, &mut rng))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs[((diffs.len() - 1) as f64 * q).round() as usize].round() as i64;
    Some((at(0.025), at(0.975)))
}

fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    })
}

fn per_task(total: u64, tasks: u64) -> Option<f64> {
    (tasks > 0).then(|| total as f64 / tasks as f64)
}

fn arm_report(arm: &str, model: &str, outcomes: &[&TaskOutcome]) -> ArmReport {
    let tasks = outcomes.len() as u64;
    let finished: Vec<&&TaskOutcome> = outcomes.iter().filter(|o| o.finished).collect();
    let count = |f: &dyn Fn(&TaskOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    let decided: Vec<bool> = outcomes.iter().filter_map(|o| o.completed).collect();
    let completed = decided.iter().filter(|c| **c).count() as u64;
    let mut costs: Vec<i64> = finished.iter().map(|o| o.cost_micros).collect();
    let total_cost: i64 = outcomes.iter().map(|o| o.cost_micros).sum();
    let mut durations: Vec<i64> = finished.iter().filter_map(|o| o.duration_ms).collect();
    ArmReport {
        arm: arm.to_string(),
        model: model.to_string(),
        tasks,
        finished: finished.len() as u64,
        success: wilson(
            finished.iter().filter(|o| o.succeeded).count() as u64,
            finished.len() as u64,
        ),
        pull_request: wilson(count(&|o| o.pull_request), tasks),
        completion: wilson(completed, decided.len() as u64),
        reopened: count(&|o| o.reopened),
        stopped_by_person: count(&|o| o.stopped_by_person),
        follow_ups_per_task: per_task(
            outcomes.iter().map(|o| u64::from(o.follow_ups)).sum(),
            tasks,
        ),
        resumes_per_task: per_task(outcomes.iter().map(|o| u64::from(o.resumes)).sum(), tasks),
        mean_cost_micros: (!costs.is_empty())
            .then(|| costs.iter().sum::<i64>() / costs.len() as i64),
        median_cost_micros: median(&mut costs),
        median_duration_ms: median(&mut durations),
        cost_per_completed_micros: (completed > 0).then(|| total_cost / completed as i64),
    }
}

/// The report over `arms` (name, model; the first is the control).
pub fn report(arms: &[(String, String)], outcomes: &[TaskOutcome], seed: u64) -> ExperimentReport {
    let reports: Vec<ArmReport> = arms
        .iter()
        .map(|(arm, model)| {
            let mine: Vec<&TaskOutcome> = outcomes.iter().filter(|o| &o.arm == arm).collect();
            arm_report(arm, model, &mine)
        })
        .collect();
    let costs = |arm: &str| -> Vec<i64> {
        outcomes
            .iter()
            .filter(|o| o.arm == arm && o.finished)
            .map(|o| o.cost_micros)
            .collect()
    };
    let mut comparisons = Vec::new();
    if let Some(control) = reports.first() {
        for other in reports.iter().skip(1) {
            let p = two_proportion_p(&control.completion, &other.completion);
            let cost = bootstrap_mean_difference(&costs(&control.arm), &costs(&other.arm), seed);
            comparisons.push(Comparison {
                arm: other.arm.clone(),
                against: control.arm.clone(),
                completion_p_value: p,
                cost_difference_low_micros: cost.map(|c| c.0),
                cost_difference_high_micros: cost.map(|c| c.1),
                verdict: verdict(control, other, p, cost),
            });
        }
    }
    ExperimentReport {
        arms: reports,
        comparisons,
    }
}

fn verdict(
    control: &ArmReport,
    other: &ArmReport,
    p: Option<f64>,
    cost: Option<(i64, i64)>,
) -> String {
    let mut parts = Vec::new();
    match (p, control.completion.value, other.completion.value) {
        (Some(p), Some(a), Some(b)) if p < 0.05 => {
            let (better, worse) = if b > a {
                (&other.arm, &control.arm)
            } else {
                (&control.arm, &other.arm)
            };
            parts.push(format!(
                "{better} is better than {worse} on completion rate at 95 % ({:.0} % vs {:.0} %, p = {p:.3})",
                a.max(b) * 100.0,
                a.min(b) * 100.0
            ));
        }
        _ => {
            let base = control
                .completion
                .value
                .or(other.completion.value)
                .unwrap_or(0.5);
            let have = control.completion.trials.min(other.completion.trials);
            let more = tasks_needed(base).saturating_sub(have);
            parts.push(format!(
                "no difference in completion rate detected yet (about {more} more tasks per arm needed to detect a 10-point difference)"
            ));
        }
    }
    match cost {
        Some((low, high)) if high < 0 => parts.push(format!(
            "{} costs less than {} at 95 % (mean difference between {} and {})",
            other.arm,
            control.arm,
            crate::MicroDollars(low),
            crate::MicroDollars(high)
        )),
        Some((low, high)) if low > 0 => parts.push(format!(
            "{} costs more than {} at 95 % (mean difference between {} and {})",
            other.arm,
            control.arm,
            crate::MicroDollars(low),
            crate::MicroDollars(high)
        )),
        Some(_) => parts.push("no cost difference detected yet".to_string()),
        None => parts.push("not enough finished tasks to compare cost".to_string()),
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook() {
        // 8 of 10: Wilson 95 % is about [0.490, 0.943].
        let r = wilson(8, 10);
        assert!((r.low.unwrap() - 0.490).abs() < 0.001, "{r:?}");
        assert!((r.high.unwrap() - 0.943).abs() < 0.001, "{r:?}");
        let zero = wilson(0, 20);
        assert_eq!(zero.low, Some(0.0));
        assert!(zero.high.unwrap() > 0.1);
        assert_eq!(wilson(0, 0).value, None);
    }

    #[test]
    fn z_test_and_sample_size() {
        // 40/100 vs 60/100: z ≈ 2.83, p ≈ 0.0047.
        let p = two_proportion_p(&wilson(40, 100), &wilson(60, 100)).unwrap();
        assert!((p - 0.0047).abs() < 0.0005, "{p}");
        let p = two_proportion_p(&wilson(5, 10), &wilson(6, 10)).unwrap();
        assert!(p > 0.5, "{p}");
        // From 50 % to 60 % at 5 % / 80 %: about 385 per arm.
        let n = tasks_needed(0.5);
        assert!((380..=395).contains(&n), "{n}");
    }

    #[test]
    fn bootstrap_is_reproducible_and_finds_clear_differences() {
        let a: Vec<i64> = (0..30).map(|i| 1_000_000 + i * 1_000).collect();
        let b: Vec<i64> = (0..30).map(|i| 500_000 + i * 1_000).collect();
        let once = bootstrap_mean_difference(&a, &b, 7).unwrap();
        assert_eq!(once, bootstrap_mean_difference(&a, &b, 7).unwrap());
        assert!(once.1 < 0, "{once:?}");
        let same = bootstrap_mean_difference(&a, &a, 7).unwrap();
        assert!(same.0 <= 0 && same.1 >= 0, "{same:?}");
    }

    #[test]
    fn the_report_says_which_arm_is_better() {
        let task = |arm: &str, completed: bool, cost: i64| TaskOutcome {
            arm: arm.into(),
            finished: true,
            succeeded: completed,
            completed: Some(completed),
            cost_micros: cost,
            ..TaskOutcome::default()
        };
        let mut outcomes = Vec::new();
        for i in 0..200 {
            outcomes.push(task("A", i % 10 < 4, 1_000_000));
            outcomes.push(task("B", i % 10 < 7, 600_000 + (i % 3) * 1_000));
        }
        let arms = vec![
            ("A".to_string(), "a".to_string()),
            ("B".to_string(), "b".to_string()),
        ];
        let r = report(&arms, &outcomes, 1);
        assert_eq!(r.arms[1].completion.successes, 140);
        assert_eq!(r.arms[0].cost_per_completed_micros, Some(2_500_000));
        let v = &r.comparisons[0].verdict;
        assert!(
            v.starts_with("B is better than A on completion rate at 95 %"),
            "{v}"
        );
        assert!(v.contains("B costs less than A at 95 %"), "{v}");

        let few: Vec<TaskOutcome> = outcomes.iter().take(6).cloned().collect();
        let v = &report(&arms, &few, 1).comparisons[0].verdict;
        assert!(
            v.starts_with("no difference in completion rate detected yet (about"),
            "{v}"
        );
    }
}
