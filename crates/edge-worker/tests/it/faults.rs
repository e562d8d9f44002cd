//! Reliability under upstream faults: about 20 % of Codegen calls fail (500,
//! 503, 429, dropped connections) and 10 % of Linear calls are rate-limited,
//! yet every task ends with the right answer, exactly one Codegen run per
//! task, and no rate limit is exceeded (every 429 served was one we forced).
//!
//! Linear's rate-limit window is shortened to 2 s (budget unlimited): a
//! `RATELIMITED` answer tells the client to wait until the window resets,
//! which with Linear's real one-hour window would outlast any test.
//!
//! Runs are time-scaled ×30; the client's budgets are Codegen's documented
//! counts ×30 per real window, and the simulator enforces exactly those
//! counts over the same real windows (`sim_limits`).

use crate::harness::describe;
use cyrus_sandbox::codegen::{DroppedConnections, Faults, ForcedFailure, SimOptions};
use cyrus_sandbox::linear::{Fault, FaultKind, NewIssue};
use cyrus_stack::{Stack, StackOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const TASKS: usize = 20;
const SCALE: f64 = 30.0;

/// Codegen's documented limits, with the client's windows divided by
/// `SCALE` like the simulator's clock.
fn scaled_limits() -> serde_json::Value {
    serde_json::json!({"codegen": {
        "rateLimits": {"timeScale": SCALE as u32}
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

/// The stack under test: Codegen's limits scaled with its clock, and the
/// Linear window above.
async fn start() -> Stack {
    let mut opts = StackOptions {
        codegen: SimOptions {
            time_scale: SCALE,
            // The client's ×SCALE budgets, counted over ×SCALE real windows.
            rate_limits: cyrus_sandbox::codegen::RateLimits::scaled(SCALE as u32),
            ..SimOptions::default()
        },
        max_concurrent_runs: TASKS as u32,
        config_patch: Some(scaled_limits()),
        ..StackOptions::default()
    };
    opts.linear.rate_limits.requests_per_window = 1_000_000;
    opts.linear.rate_limits.window = Duration::from_secs(2);
    opts.linear.webhook_retry_delays = vec![Duration::from_secs(1), Duration::from_secs(3)];
    Stack::start(opts).await.unwrap()
}

fn delegate(stack: &Stack, title: &str, description: &str) -> String {
    let control = stack.linear.control();
    let issue = control
        .create_issue(NewIssue {
            team_id: Some(stack.team_id.clone()),
            title: title.into(),
            description: Some(description.into()),
            ..Default::default()
        })
        .unwrap();
    control.delegate(&issue.id, None).unwrap()
}

/// The session's final `response`/`error` kind and body, if any.
fn outcome(stack: &Stack, id: &str) -> Option<(String, String)> {
    let view = stack.linear.control().session(id)?;
    view.activities
        .iter()
        .rev()
        .find(|a| a.kind() == "response" || a.kind() == "error")
        .map(|a| {
            let body = a.content.get("body").and_then(|b| b.as_str());
            (a.kind().to_string(), body.unwrap_or_default().to_string())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_ends_correctly_under_codegen_and_linear_faults() {
    let stack = Arc::new(start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(Injected::default());
    let injector = {
        let (stack, stop, injected) = (stack.clone(), stop.clone(), injected.clone());
        tokio::spawn(async move { inject(&stack, stop, injected).await })
    };

    let mut sessions = Vec::new();
    for i in 0..TASKS {
        sessions.push(delegate(
            &stack,
            &format!("Fault task {i}"),
            &format!("Task {i}. [sim outcome=COMPLETE prs=1 duration=60s logs=6]"),
        ));
    }

    // Bounded: 20 tasks, at most 300 s in all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while tokio::time::Instant::now() < deadline
        && !sessions.iter().all(|s| outcome(&stack, s).is_some())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outcomes: Vec<_> = sessions.iter().map(|s| outcome(&stack, s)).collect();
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

    for (s, outcome) in sessions.iter().zip(&outcomes) {
        let Some((kind, body)) = outcome else {
            panic!("no final answer\n{summary}\n{}", describe(&stack, s));
        };
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
    let Ok(stack) = Arc::try_unwrap(stack) else {
        panic!("injector finished")
    };
    stack.shutdown().await;
}
