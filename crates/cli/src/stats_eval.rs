//! Pure statistics behind `cyrus stats`: percentiles, rates, the monthly cost
//! projection, and the verdicts on the architecture's success metrics and
//! hybrid-executor triggers (design doc, "Метрики успеха" and "Триггеры для
//! добавления гибридного режима"). No I/O, so every threshold is unit-tested.

use serde::Serialize;

/// Outcomes that count as failures. `stopped` is a user's cancellation, not
/// a failure of the system.
pub const FAILED_OUTCOMES: [&str; 2] = ["failed", "dead_letter"];

/// Below this many samples a rate or a latency says little: the verdict is
/// `insufficient data` rather than a coin flip.
pub const MIN_SAMPLE: usize = 10;

/// Days per month for projections.
pub const DAYS_PER_MONTH: f64 = 30.0;

/// Success metric: time to start below 2 s (p95).
pub const START_LATENCY_TARGET_MS: f64 = 2_000.0;
/// Success metric: under $200 a month.
pub const MONTHLY_COST_TARGET_MICROS: f64 = 200_000_000.0;
/// Success metric: under 5 % failed tasks.
pub const FAILED_TARGET_PERCENT: f64 = 5.0;
/// Hybrid trigger: more than $300 a month.
pub const MONTHLY_COST_TRIGGER_MICROS: f64 = 300_000_000.0;
/// Hybrid trigger: average planning (time-to-start) latency above 3 s.
pub const PLANNING_LATENCY_TRIGGER_MS: f64 = 3_000.0;
/// Hybrid trigger: rate limiting causes more than 5 % of tasks to fail.
pub const RATE_LIMIT_FAILURE_TRIGGER_PERCENT: f64 = 5.0;

/// Median and 95th percentile (nearest rank) of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    pub count: usize,
    pub median_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub mean_ms: Option<f64>,
}

impl Spread {
    pub fn of(mut values: Vec<i64>) -> Spread {
        values.sort_unstable();
        let count = values.len();
        if count == 0 {
            return Spread::default();
        }
        Spread {
            count,
            median_ms: Some(nearest_rank(&values, 50.0)),
            p95_ms: Some(nearest_rank(&values, 95.0)),
            mean_ms: Some(values.iter().map(|v| *v as f64).sum::<f64>() / count as f64),
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty values.
fn nearest_rank(sorted: &[i64], percentile: f64) -> i64 {
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `part / whole` in percent, `None` for an empty whole.
pub fn percent(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Spend over `window_days` scaled to a 30-day month.
pub fn monthly_projection(total_micros: i64, window_days: f64) -> Option<f64> {
    (window_days > 0.0).then(|| total_micros as f64 * DAYS_PER_MONTH / window_days)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "breached")]
    Breached,
    #[serde(rename = "insufficient data")]
    InsufficientData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Breached => "breached",
            Verdict::InsufficientData => "insufficient data",
        }
    }
}

/// One evaluated metric or trigger.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable identifier (documented in docs/cli.md).
    pub key: &'static str,
    pub description: &'static str,
    /// `ms`, `micros` or `percent`.
    pub unit: &'static str,
    pub threshold: f64,
    pub observed: Option<f64>,
    pub verdict: Verdict,
}

/// What the verdicts are computed from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    pub time_to_start: Spread,
    pub finished: usize,
    pub failed: usize,
    pub rate_limit_failures: usize,
    pub projected_monthly_micros: Option<f64>,
    /// Tasks in the window at all (cost needs tasks, not a sample size).
    pub tasks: usize,
}

/// `observed < threshold` is ok for success metrics.
fn below(observed: Option<f64>, threshold: f64, enough: bool) -> Verdict {
    match observed {
        Some(v) if enough => {
            if v < threshold {
                Verdict::Ok
            } else {
                Verdict::Breached
            }
        }
        _ => Verdict::InsufficientData,
    }
}

/// `observed > threshold` breaches a trigger.
fn above(observed: Option<f64>, threshold: f64, enough: bool) -> Verdict {
    match observed {
        Some(v) if enough => {
            if v > threshold {
                Verdict::Breached
            } else {
                Verdict::Ok
            }
        }
        _ => Verdict::InsufficientData,
    }
}

pub fn success_metrics(o: &Observations) -> Vec<Check> {
    let p95 = o.time_to_start.p95_ms.map(|v| v as f64);
    let failed = percent(o.failed, o.finished);
    vec![
        Check {
            key: "start_latency",
            description: "p95 time from delegation to the Codegen run starting < 2 s",
            unit: "ms",
            threshold: START_LATENCY_TARGET_MS,
            observed: p95,
            verdict: below(
                p95,
                START_LATENCY_TARGET_MS,
                o.time_to_start.count >= MIN_SAMPLE,
            ),
        },
        Check {
            key: "monthly_cost",
            description: "estimated cost per month at the observed rate < $200",
            unit: "micros",
            threshold: MONTHLY_COST_TARGET_MICROS,
            observed: o.projected_monthly_micros,
            verdict: below(
                o.projected_monthly_micros,
                MONTHLY_COST_TARGET_MICROS,
                o.tasks > 0,
            ),
        },
        Check {
            key: "failed_tasks",
            description: "failed tasks (failed or dead-lettered) < 5 % of finished tasks",
            unit: "percent",
            threshold: FAILED_TARGET_PERCENT,
            observed: failed,
            verdict: below(failed, FAILED_TARGET_PERCENT, o.finished >= MIN_SAMPLE),
        },
    ]
}

pub fn hybrid_triggers(o: &Observations) -> Vec<Check> {
    let mean = o.time_to_start.mean_ms;
    let rate_limited = percent(o.rate_limit_failures, o.finished);
    vec![
        Check {
            key: "monthly_cost",
            description: "monthly Codegen cost > $300",
            unit: "micros",
            threshold: MONTHLY_COST_TRIGGER_MICROS,
            observed: o.projected_monthly_micros,
            verdict: above(
                o.projected_monthly_micros,
                MONTHLY_COST_TRIGGER_MICROS,
                o.tasks > 0,
            ),
        },
        Check {
            key: "planning_latency",
            description: "average planning latency (time to start) > 3 s",
            unit: "ms",
            threshold: PLANNING_LATENCY_TRIGGER_MS,
            observed: mean,
            verdict: above(
                mean,
                PLANNING_LATENCY_TRIGGER_MS,
                o.time_to_start.count >= MIN_SAMPLE,
            ),
        },
        Check {
            key: "rate_limit_failures",
            description: "rate limiting causes > 5 % of task failures",
            unit: "percent",
            threshold: RATE_LIMIT_FAILURE_TRIGGER_PERCENT,
            observed: rate_limited,
            verdict: above(
                rate_limited,
                RATE_LIMIT_FAILURE_TRIGGER_PERCENT,
                o.finished >= MIN_SAMPLE,
            ),
        },
    ]
}

/// True when a task's error text says it failed because of rate limiting.
pub fn is_rate_limit_error(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("rate limit") || e.contains("rate-limit") || e.contains("http 429")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Spread::of((1..=100).rev().collect());
        assert_eq!(s.median_ms, Some(50));
        assert_eq!(s.p95_ms, Some(95));
        assert_eq!(s.mean_ms, Some(50.5));
        let one = Spread::of(vec![7]);
        assert_eq!((one.median_ms, one.p95_ms), (Some(7), Some(7)));
        assert_eq!(Spread::of(vec![]).p95_ms, None);
    }

    #[test]
    fn projection_scales_to_thirty_days() {
        assert_eq!(monthly_projection(7_000_000, 7.0), Some(30_000_000.0));
        assert_eq!(monthly_projection(1, 0.0), None);
    }

    fn obs(latencies: Vec<i64>, finished: usize, failed: usize, monthly: f64) -> Observations {
        Observations {
            time_to_start: Spread::of(latencies),
            finished,
            failed,
            rate_limit_failures: 0,
            projected_monthly_micros: Some(monthly),
            tasks: finished,
        }
    }

    fn verdicts(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
        checks.iter().map(|c| (c.key, c.verdict)).collect()
    }

    #[test]
    fn success_metrics_at_their_thresholds() {
        let healthy = obs(vec![500; 20], 20, 0, 150_000_000.0);
        assert!(
            success_metrics(&healthy)
                .iter()
                .all(|c| c.verdict == Verdict::Ok)
        );
        // Exactly at a "<" threshold is a breach; 1 of 20 failed is 5 %.
        let edge = obs(vec![2_000; 20], 20, 1, 200_000_000.0);
        assert_eq!(
            verdicts(&success_metrics(&edge)),
            vec![
                ("start_latency", Verdict::Breached),
                ("monthly_cost", Verdict::Breached),
                ("failed_tasks", Verdict::Breached),
            ]
        );
        let small = obs(vec![100; 3], 3, 3, 0.0);
        assert_eq!(
            verdicts(&success_metrics(&small)),
            vec![
                ("start_latency", Verdict::InsufficientData),
                ("monthly_cost", Verdict::Ok),
                ("failed_tasks", Verdict::InsufficientData),
            ]
        );
    }

    #[test]
    fn hybrid_triggers_fire_only_above() {
        let mut o = obs(vec![3_000; 10], 10, 1, 300_000_000.0);
        assert!(hybrid_triggers(&o).iter().all(|c| c.verdict == Verdict::Ok));
        o.time_to_start = Spread::of(vec![3_001; 10]);
        o.projected_monthly_micros = Some(300_000_001.0);
        o.rate_limit_failures = 1;
        o.finished = 10;
        assert_eq!(
            verdicts(&hybrid_triggers(&o)),
            vec![
                ("monthly_cost", Verdict::Breached),
                ("planning_latency", Verdict::Breached),
                ("rate_limit_failures", Verdict::Breached),
            ]
        );
        let empty = Observations::default();
        assert!(
            hybrid_triggers(&empty)
                .iter()
                .all(|c| c.verdict == Verdict::InsufficientData)
        );
    }

    #[test]
    fn rate_limit_errors_are_recognised() {
        assert!(is_rate_limit_error(
            "Codegen rate limit on create_run (HTTP 429) after retrying"
        ));
        assert!(!is_rate_limit_error("Codegen server error (HTTP 500)"));
    }
}
