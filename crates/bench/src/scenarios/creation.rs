//! Creation throughput with a backlog: Codegen allows 10 creates per minute
//! per token; a backlog must be drained at close to that rate and never
//! above it.
//!
//! Real time by default (`--creation-scale 1`). With a scale N the simulator
//! runs N× faster and the worker's sliding windows are divided by N
//! (`codegen.rateLimits.timeScale`), so in simulated time both keep
//! Codegen's documented 10 per 60 s. Rates are per (simulated) minute;
//! creation times are observed every 50 ms real.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig, wait_until};
use cyrus_sandbox::codegen::Endpoint;
use serde_json::json;
use std::time::Duration;

pub async fn run(backlog: usize, scale: u32) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "creation";
    // Codegen's documented counts; windows divided like the simulator's clock.
    let mut opts = rig::options()
        .time_scale(scale as f64)
        .patch(json!({"codegen": {"rateLimits": {"timeScale": scale}}}));
    opts.linear.rate_limits.requests_per_window = 1_000_000;
    opts.max_concurrent_runs = backlog as u32;
    let mut rig = Rig::prepare(opts).await?;
    let worker = rig.start_worker().await?;
    let issues = rig.create_issues(backlog, "[sim outcome=COMPLETE duration=2m logs=2]")?;
    let codegen = rig.codegen.control();
    let t0 = codegen.now();
    for issue in &issues {
        rig.delegate(issue)?;
    }
    // Simulated time at which each run was first seen.
    let mut seen: Vec<Duration> = Vec::new();
    // Enough for the backlog at 10/min plus three minutes of slack (a 429's
    // Retry-After is obeyed in real time, i.e. ×scale longer than simulated).
    let limit = Duration::from_secs_f64((backlog as f64 / 10.0 + 3.0) * 60.0 / scale as f64);
    wait_until(limit, || {
        let n = codegen.runs().len();
        let now = codegen.now();
        while seen.len() < n {
            seen.push(now);
        }
        n >= backlog
    })
    .await;
    let create_429 = codegen.stats().rate_limited;
    let creates = codegen.request_count(Endpoint::CreateRun);
    worker.shutdown().await;
    rig.shutdown().await;

    // Sustained rate: the runs after the first window (the initial burst
    // Codegen allows), per minute elapsed from the start to the last run —
    // with a full window every `per`, this tends to 10 × 60 / 61.2 s.
    let minute = Duration::from_secs(60);
    let first_window = seen.iter().take_while(|t| **t < t0 + minute).count();
    let sustained = seen
        .last()
        .filter(|last| **last >= t0 + minute && seen.len() > first_window)
        .map(|last| (seen.len() - first_window) as f64 / (*last - t0).as_secs_f64() * 60.0);
    let overall = seen
        .last()
        .filter(|last| **last > t0)
        .map(|last| seen.len() as f64 / (*last - t0).as_secs_f64() * 60.0);
    // Most runs started in any 60 simulated seconds (observation jitter
    // can only merge neighbours, never split a window).
    let max_window = (0..seen.len())
        .map(|i| {
            seen[i..]
                .iter()
                .take_while(|t| **t < seen[i] + minute)
                .count()
        })
        .max()
        .unwrap_or(0);
    let note = format!(
        "{} of {backlog} runs created; {creates} create requests, {create_429} answered 429; ×{scale} time",
        seen.len()
    );
    Ok(vec![
        Figure::new(S, "sustained runs/min", sustained, "runs/min")
            .goal(Goal::AtLeast(9.5))
            .note(note),
        Figure::new(S, "overall runs/min (incl. burst)", overall, "runs/min"),
        Figure::new(S, "most in any 60 s", Some(max_window as f64), "runs")
            .goal(Goal::AtMost(10.0)),
        Figure::new(S, "429s", Some(create_429 as f64), "").goal(Goal::AtMost(0.0)),
    ])
}
