//! Following many concurrent runs: Codegen reads per active run per minute,
//! run finished → final Linear activity latency, and 429s, at a given number
//! of concurrent runs.
//!
//! Real time (scale 1): the reads are what production would make. Only the
//! *create* limit is raised on both sides (simulator and client, equally),
//! so that `runs` runs can be in flight at once — creation is measured in the
//! `creation` scenario; reads and logs keep Codegen's documented limits.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig};
use crate::stats::{Samples, ms};
use cyrus_sandbox::codegen::{Endpoint, Window};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

pub struct RunsOptions {
    pub runs: usize,
    /// Run durations are spread uniformly over this range (real seconds).
    pub min_secs: u64,
    pub max_secs: u64,
}

const FINAL: [&str; 5] = ["COMPLETE", "FAILED", "ERROR", "CANCELLED", "PAUSED"];

pub async fn run(opts: RunsOptions) -> anyhow::Result<Vec<Figure>> {
    let scenario = format!("runs ×{}", opts.runs);
    let create_per_minute = (opts.runs as u32 + 10).max(10);
    // The production poll interval (the demo configuration polls every
    // second, which is what the read budget is measured against here).
    let mut stack = rig::options().patch(json!({"codegen": {
        "rateLimits": {"createPerMinute": create_per_minute},
        "pollIntervalSecs": cyrus_core::config::defaults::POLL_INTERVAL_SECS
    }}));
    stack.codegen.rate_limits.create = Window {
        max: create_per_minute,
        window: Duration::from_secs(60),
    };
    // Linear's hourly budgets (requests and query complexity) would
    // hold back the answers of 1 000 tasks within the hour; what is
    // measured here is Codegen's side.
    stack.linear.rate_limits.requests_per_window = 1_000_000;
    stack.linear.rate_limits.complexity_per_window = 1_000_000_000;
    stack.max_concurrent_runs = opts.runs as u32;
    let mut rig = Rig::prepare(stack).await?;
    let worker = rig.start_worker().await?;
    let spread = opts.max_secs.saturating_sub(opts.min_secs);
    let mut issues = Vec::new();
    for i in 0..opts.runs {
        let secs = opts.min_secs + spread * i as u64 / opts.runs.max(1) as u64;
        issues.extend(rig.create_issues(
            1,
            &format!("[sim outcome=COMPLETE duration={secs}s logs=6] run {i}"),
        )?);
    }
    let mut sessions = Vec::new();
    for issue in &issues {
        sessions.push(rig.delegate(issue)?);
    }

    let codegen = rig.codegen.control();
    let linear = rig.linear.control();
    let mut finished_at: HashMap<i64, chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut run_minutes = 0.0;
    let mut last = std::time::Instant::now();
    let deadline = last + Duration::from_secs(opts.max_secs + 180);
    let answered = |s: &String| {
        linear.session(s).is_some_and(|v| {
            v.activities
                .iter()
                .any(|a| a.kind() == "response" || a.kind() == "error")
        })
    };
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = chrono::Utc::now();
        let runs = codegen.runs();
        let active = runs
            .iter()
            .filter(|r| !FINAL.contains(&r.status.as_str()))
            .count();
        run_minutes += active as f64 * last.elapsed().as_secs_f64() / 60.0;
        last = std::time::Instant::now();
        for r in runs.iter().filter(|r| FINAL.contains(&r.status.as_str())) {
            finished_at.entry(r.id).or_insert(now);
        }
        let done = finished_at.len() >= opts.runs && sessions.iter().all(answered);
        if done || last >= deadline {
            break;
        }
    }
    let stats = codegen.stats();
    let count = |e| stats.requests.get(&e).copied().unwrap_or(0);
    let reads = count(Endpoint::GetRun) + count(Endpoint::ListRuns);
    let logs = count(Endpoint::Logs);

    // Finished (as observed, ≤ 0.5 s late) → the session's final activity.
    let by_key: HashMap<usize, &String> = sessions.iter().enumerate().collect();
    let mut latency = Samples::default();
    let mut unanswered = 0;
    for r in codegen.runs() {
        let Some(done) = finished_at.get(&r.id) else {
            continue;
        };
        let key = r
            .prompt
            .split("bench-key=")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|k| k.parse::<usize>().ok());
        let Some(session) = key.and_then(|k| by_key.get(&k)) else {
            continue;
        };
        let answer = linear.session(session).and_then(|v| {
            v.activities
                .iter()
                .find(|a| a.kind() == "response" || a.kind() == "error")
                .map(|a| a.created_at)
        });
        match answer {
            Some(at) => latency.push((at - *done).to_std().unwrap_or_default()),
            None => unanswered += 1,
        }
    }
    worker.shutdown().await;
    rig.shutdown().await;

    let per = |n: u64| (run_minutes > 0.0).then(|| n as f64 / run_minutes);
    let note = format!(
        "{reads} reads ({} get + {} list), {logs} log reads over {run_minutes:.0} run-minutes; runs of {}–{} s",
        count(Endpoint::GetRun),
        count(Endpoint::ListRuns),
        opts.min_secs,
        opts.max_secs
    );
    let mut reads_fig = Figure::new(&scenario, "reads per run-minute", per(reads), "").note(note);
    let mut p95 = Figure::new(
        &scenario,
        "finished → answer p95",
        latency.percentile(95.0).map(|d| ms(d) / 1000.0),
        "s",
    )
    .note(format!(
        "{} answered, {unanswered} unanswered; finish observed every 0.5 s",
        latency.len()
    ));
    if opts.runs == 200 {
        reads_fig = reads_fig.goal(Goal::AtMost(0.3));
        p95 = p95.goal(Goal::AtMost(15.0));
    }
    Ok(vec![
        reads_fig,
        Figure::new(&scenario, "log reads per run-minute", per(logs), ""),
        p95,
        Figure::new(&scenario, "429s", Some(stats.rate_limited as f64), "").goal(Goal::AtMost(0.0)),
    ])
}
