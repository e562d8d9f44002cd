//! Polling benchmark: N concurrent runs followed by one `RunTracker` against
//! the Codegen simulator, with simulated time compressed `SCALE`×.
//!
//! ```text
//! cargo run --release -p cyrus-codegen-executor --example poll_bench -- [RUNS] [SCALE]
//! ```
//!
//! Every duration on our side (rate-limit windows, poll intervals) is divided
//! by `SCALE` so that, measured in simulated time, the client behaves exactly
//! as in production while the simulator enforces Codegen's documented limits
//! in simulated time. Runs finish at scripted times spread uniformly over
//! 2–30 simulated minutes. Reported (simulated time): reads per followed run
//! per minute, run-finished-to-noticed latency (p50/p95/max), and 429s.

use cyrus_codegen_executor::poller::{PollConfig, RunTracker, TrackerEvent};
use cyrus_codegen_executor::{
    ClientConfig, CodegenClient, CreateRun, RateLimit, RateLimits, RunStatus,
};
use cyrus_sandbox::codegen::{CodegenSim, Endpoint, SimOptions};
use secrecy::SecretString;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let scale: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30.0);

    let sim = CodegenSim::start(SimOptions {
        time_scale: scale,
        ..SimOptions::default()
    })
    .await?;
    let control = sim.control();

    // Setup is not measured: lift the create limit while creating the runs.
    let documented = control_limits();
    control.set_rate_limits(cyrus_sandbox::codegen::RateLimits {
        create: cyrus_sandbox::codegen::Window {
            max: 100_000,
            window: Duration::from_secs(60),
        },
        ..documented.clone()
    });
    let mut setup_config = ClientConfig::new(
        sim.url(),
        sim.org_id(),
        SecretString::from(sim.token().to_string()),
    );
    setup_config.rate_limits.create = RateLimit {
        max: 100_000,
        per: Duration::from_secs(1),
        burst: 1000,
    };
    let setup = CodegenClient::new(setup_config)?;

    let min = 120u64;
    let max = 1800u64;
    let mut finish_at: HashMap<i64, Duration> = HashMap::new();
    let mut started_at: HashMap<i64, Duration> = HashMap::new();
    for i in 0..runs {
        let duration = min + (max - min) * i / runs.max(1);
        let start = control.now();
        let run = setup
            .create_run(&CreateRun {
                prompt: format!("[sim duration={duration}s logs=0] bench run {i}"),
                repo_id: Some(7),
                ..Default::default()
            })
            .await?;
        started_at.insert(run.id, start);
        finish_at.insert(run.id, start + Duration::from_secs(duration));
    }
    control.set_rate_limits(documented);

    // The measured client: production settings with every duration / scale.
    let s = |d: Duration| d.div_f64(scale);
    let prod = RateLimits::default();
    let scaled = |l: RateLimit| RateLimit { per: s(l.per), ..l };
    let mut config = ClientConfig::new(
        sim.url(),
        sim.org_id(),
        SecretString::from(sim.token().to_string()),
    );
    config.rate_limits = RateLimits {
        create: scaled(prod.create),
        read: scaled(prod.read),
        logs: scaled(prod.logs),
    };
    let client = CodegenClient::new(config)?;
    let prod_poll = PollConfig::default();
    let poll = PollConfig {
        min_interval: s(prod_poll.min_interval),
        max_interval: s(prod_poll.max_interval),
        ..prod_poll
    };
    let mut tracker = RunTracker::new(client, poll);
    for id in finish_at.keys() {
        tracker.track(*id, Some(RunStatus::Active));
    }

    let reads_before =
        control.request_count(Endpoint::ListRuns) + control.request_count(Endpoint::GetRun);
    let limited_before = control.rate_limited_count();
    let poll_start = control.now();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut followed = Duration::ZERO;
    let mut errors = 0u32;
    while !tracker.is_empty() {
        match tracker.tick().await {
            Ok(report) => {
                let now = control.now();
                for event in report.events {
                    if let TrackerEvent::StatusChanged { run_id, run, .. } = event
                        && run.status().is_terminal()
                    {
                        latencies.push(now.saturating_sub(finish_at[&run_id]));
                        followed += now.saturating_sub(started_at[&run_id].max(poll_start));
                    }
                }
            }
            Err(e) => {
                errors += 1;
                eprintln!("tick failed: {e}");
            }
        }
        tokio::time::sleep(tracker.next_delay()).await;
    }
    let elapsed = control.now() - poll_start;
    let reads = control.request_count(Endpoint::ListRuns) + control.request_count(Endpoint::GetRun)
        - reads_before;
    let limited = control.rate_limited_count() - limited_before;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let run_minutes = followed.as_secs_f64() / 60.0;
    println!(
        "runs: {runs}, time scale: {scale}x, simulated span: {:.1} min",
        elapsed.as_secs_f64() / 60.0
    );
    println!(
        "reads (list+get): {reads} = {:.3} per followed run per minute ({:.1} run-minutes)",
        reads as f64 / run_minutes,
        run_minutes
    );
    println!(
        "finished-to-noticed (simulated): p50 {:.1} s, p95 {:.1} s, max {:.1} s over {} runs",
        pct(0.50).as_secs_f64(),
        pct(0.95).as_secs_f64(),
        latencies.last().copied().unwrap_or_default().as_secs_f64(),
        latencies.len()
    );
    println!("429s served: {limited}; failed ticks: {errors}");
    sim.shutdown().await;
    Ok(())
}

fn control_limits() -> cyrus_sandbox::codegen::RateLimits {
    cyrus_sandbox::codegen::RateLimits::default()
}
