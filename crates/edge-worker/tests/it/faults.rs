//! Reliability under upstream faults: about 20 % of Codegen calls fail (500,
//! 503, 429, dropped connections) and 10 % of Linear calls are rate-limited,
//! yet every task ends with the right answer, exactly one Codegen run per
//! task, and no rate limit is exceeded (every 429 served was one we forced).
//!
//! The simulators are time-scaled ×30 and the client's budgets are scaled by
//! the same factor (see `SCALED_LIMITS`), so the client keeps Codegen's
//! documented limits *in simulated time* — the only clock the simulator
//! enforces them in.

use crate::harness::*;
use cyrus_edge_worker::stack::{Stack, StackOptions};
use cyrus_sandbox::codegen::{DroppedConnections, Faults, ForcedFailure};
use cyrus_sandbox::linear::{Fault, FaultKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const TASKS: usize = 20;
const SCALE: f64 = 30.0;

/// Codegen's documented limits (create 10/60 s, reads 60/30 s, logs 60/60 s)
/// multiplied by `SCALE`, because the client's windows run in real time.
fn scaled_limits() -> serde_json::Value {
    serde_json::json!({"codegen": {
        "maxConcurrentRuns": TASKS,
        "rateLimits": {
            "createPerMinute": 10 * SCALE as u32,
            "readsPer30s": 60 * SCALE as u32,
            "logsPerMinute": 60 * SCALE as u32
        }
    }})
}

/// What the injector forced, to compare with what the simulators served.
#[derive(Default)]
struct Injected {
    codegen_429: AtomicU64,
    codegen_5xx_forced: AtomicU64,
    codegen_dropped: AtomicU64,
    linear_rate_limited: AtomicU64,
}

/// Keeps the fault rates up as traffic flows: for every 25 Codegen requests
/// one 429, one 503 and one dropped connection are queued (12 %) on top of a
/// random 8 % of 500s; for every 10 Linear requests one `RATELIMITED`.
async fn inject(stack: &Stack, stop: Arc<AtomicBool>, injected: Arc<Injected>) {
    let codegen = stack.codegen.control();
    let linear = stack.linear.control();
    codegen
        .set_faults(Faults {
            error_rate: 0.08,
            ..Faults::default()
        })
        .expect("valid faults");
    let (mut codegen_mark, mut linear_mark) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let total: u64 = codegen.stats().requests.values().sum();
        while total >= codegen_mark + 25 {
            codegen_mark += 25;
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
            codegen.set_faults(faults).expect("valid faults");
            injected.codegen_429.fetch_add(1, Ordering::Relaxed);
            injected.codegen_5xx_forced.fetch_add(1, Ordering::Relaxed);
            injected.codegen_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let total = linear.request_stats().total;
        while total >= linear_mark + 10 {
            linear_mark += 10;
            linear.inject_fault(Fault::new(FaultKind::RateLimited));
            injected.linear_rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    codegen.clear_faults();
    linear.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_ends_correctly_under_codegen_and_linear_faults() {
    let stack = Arc::new(
        spawn(StackOptions {
            time_scale: SCALE,
            max_concurrent_runs: TASKS as u32,
            config_patch: Some(scaled_limits()),
            ..Default::default()
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(Injected::default());
    let injector = {
        let (stack, stop, injected) = (stack.clone(), stop.clone(), injected.clone());
        tokio::spawn(async move { inject(&stack, stop, injected).await })
    };

    let mut sessions = Vec::new();
    for i in 0..TASKS {
        let (_issue, session) = stack
            .delegate_issue(
                &format!("Fault task {i}"),
                &format!("Task {i}. [sim outcome=COMPLETE prs=1 duration=60s logs=6]"),
                &["Feature"],
            )
            .unwrap();
        sessions.push(session);
    }

    let mut outcomes = Vec::new();
    for s in &sessions {
        outcomes.push(final_activity(&stack, s, Duration::from_secs(120)).await);
    }
    stop.store(true, Ordering::Relaxed);
    injector.await.unwrap();

    let codegen = stack.codegen.control();
    let stats = codegen.stats();
    let linear_stats = stack.linear.control().request_stats();
    let summary = format!(
        "codegen requests {:?}, 429 served {}, injected 429 {} / 503 {} / dropped {}; \
         linear requests {}, rate-limited injected {}",
        stats.requests,
        stats.rate_limited,
        injected.codegen_429.load(Ordering::Relaxed),
        injected.codegen_5xx_forced.load(Ordering::Relaxed),
        injected.codegen_dropped.load(Ordering::Relaxed),
        linear_stats.total,
        injected.linear_rate_limited.load(Ordering::Relaxed),
    );

    for (s, (kind, body)) in sessions.iter().zip(&outcomes) {
        assert_eq!(kind, "response", "{summary}\n{}", describe(&stack, s));
        assert!(
            body.contains("/pull/"),
            "PR link in the answer: {body}\n{summary}"
        );
    }
    // Exactly one run per task: a dropped or failed create never doubles a run.
    let runs = codegen.runs();
    assert_eq!(runs.len(), TASKS, "{summary}\n{runs:#?}");
    // The faults really happened, in the intended proportions.
    assert!(
        injected.codegen_429.load(Ordering::Relaxed) >= 2,
        "too little traffic to inject faults: {summary}"
    );
    assert!(
        injected.linear_rate_limited.load(Ordering::Relaxed) >= 2,
        "too little Linear traffic to inject faults: {summary}"
    );
    // No limit exceeded: every 429 the simulator served was a forced one
    // (forced 429s not yet consumed at the end are not served, hence ≤).
    assert!(
        stats.rate_limited <= injected.codegen_429.load(Ordering::Relaxed),
        "the client exceeded Codegen's limits: {summary}"
    );
    Arc::try_unwrap(stack)
        .ok()
        .expect("injector finished")
        .shutdown()
        .await;
}
