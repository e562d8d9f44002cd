//! The fault suite as a benchmark: ~20 % of Codegen calls fail (random 500s
//! plus forced 503s, 429s and dropped connections) and 10 % of Linear calls
//! are rate-limited; every task must still end with its answer, one Codegen
//! run each, and no 429 beyond the forced ones. The same rule is a test in
//! `crates/edge-worker/tests/it/faults.rs`.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig};
use cyrus_sandbox::codegen::{DroppedConnections, Faults, ForcedFailure};
use cyrus_sandbox::linear::{Fault, FaultKind};
use serde_json::json;
use std::time::Duration;

const SCALE: u32 = 30;

/// Counts of what was forced.
#[derive(Debug, Default, Clone, Copy)]
pub struct Injected {
    pub codegen_429: u64,
    pub codegen_503: u64,
    pub codegen_dropped: u64,
    pub linear_rate_limited: u64,
}

/// Tops the fault queues up as traffic flows (see the module docs); call it
/// repeatedly. `marks` remembers the request counts already served faults.
pub fn top_up(rig: &Rig, marks: &mut (u64, u64), injected: &mut Injected) -> anyhow::Result<()> {
    let codegen = rig.codegen.control();
    let total: u64 = codegen.stats().requests.values().sum();
    while total >= marks.0 + 25 {
        marks.0 += 25;
        let mut faults = codegen.faults();
        faults.fail_next.push(ForcedFailure {
            status: 429,
            count: 1,
            endpoint: None,
        });
        faults.fail_next.push(ForcedFailure {
            status: 503,
            count: 1,
            endpoint: None,
        });
        faults.drop_next.push(DroppedConnections {
            count: 1,
            endpoint: None,
        });
        codegen
            .set_faults(faults)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        injected.codegen_429 += 1;
        injected.codegen_503 += 1;
        injected.codegen_dropped += 1;
    }
    let linear = rig.linear.control();
    let total = linear.request_stats().total;
    while total >= marks.1 + 10 {
        marks.1 += 10;
        linear.inject_fault(Fault::new(FaultKind::RateLimited));
        injected.linear_rate_limited += 1;
    }
    Ok(())
}

pub async fn run(tasks: usize) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "faults";
    // Codegen's documented counts; windows divided like the simulator's clock.
    let mut opts = rig::options()
        .time_scale(SCALE as f64)
        .patch(json!({"codegen": {"rateLimits": {"timeScale": SCALE}}}));
    // Codegen's documented counts ×SCALE over the same real windows on
    // both sides: the client's sliding window cannot be time-scaled by
    // multiplying counts alone, so the simulator counts over real time too.
    opts.codegen.rate_limits = cyrus_sandbox::codegen::RateLimits::scaled(SCALE);
    opts.max_concurrent_runs = tasks as u32;
    // Only forced rate limits; each says "wait until the window resets".
    opts.linear.rate_limits.requests_per_window = 1_000_000;
    opts.linear.rate_limits.window = Duration::from_secs(2);
    let mut rig = Rig::prepare(opts).await?;
    let worker = rig.start_worker().await?;
    rig.codegen
        .control()
        .set_faults(Faults {
            error_rate: 0.08,
            ..Faults::default()
        })
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let issues = rig.create_issues(tasks, "[sim outcome=COMPLETE prs=1 duration=60s logs=6]")?;
    let mut sessions = Vec::new();
    for issue in &issues {
        sessions.push(rig.delegate(issue)?);
    }
    let (mut marks, mut injected) = ((0, 0), Injected::default());
    let linear = rig.linear.control();
    let answered = |s: &String| {
        linear.session(s).and_then(|v| {
            v.activities
                .iter()
                .rev()
                .find(|a| a.kind() == "response" || a.kind() == "error")
                .map(|a| a.kind() == "response")
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while tokio::time::Instant::now() < deadline && !sessions.iter().all(|s| answered(s).is_some())
    {
        top_up(&rig, &mut marks, &mut injected)?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok = sessions
        .iter()
        .filter(|s| answered(s) == Some(true))
        .count();
    let codegen = rig.codegen.control();
    codegen.clear_faults();
    let stats = codegen.stats();
    let total: u64 = stats.requests.values().sum();
    let runs = codegen.runs().len();
    worker.shutdown().await;
    rig.shutdown().await;

    let note = format!(
        "{total} Codegen requests: forced {} × 429, {} × 503, {} dropped, random 500s at 8 %; \
         {} Linear RATELIMITED forced (2-s Linear window)",
        injected.codegen_429,
        injected.codegen_503,
        injected.codegen_dropped,
        injected.linear_rate_limited
    );
    Ok(vec![
        Figure::new(
            S,
            "tasks answered correctly",
            Some(ok as f64),
            &format!("of {tasks}"),
        )
        .goal(Goal::AtLeast(tasks as f64))
        .note(note),
        Figure::new(
            S,
            "Codegen runs",
            Some(runs as f64),
            &format!("for {tasks} tasks"),
        )
        .goal(Goal::AtMost(tasks as f64)),
        Figure::new(
            S,
            "429s beyond the forced ones",
            Some(stats.rate_limited.saturating_sub(injected.codegen_429) as f64),
            "",
        )
        .goal(Goal::AtMost(0.0)),
    ])
}
