//! Resident memory of a real `cyrus start` process: idle, then with 1 000
//! active runs (`never_finish`), read from `/proc/<pid>/status`. The create
//! limit is raised on both sides so the runs exist within a minute; the
//! memory held per run does not depend on how fast they were created.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig, wait_healthy, wait_until};
use cyrus_sandbox::codegen::Window;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

pub async fn run(cyrus_bin: &Path, active_runs: usize) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "memory";
    let create = (active_runs as u32 * 2).max(10);
    let mut opts =
        rig::options().patch(json!({"codegen": {"rateLimits": {"createPerMinute": create}}}));
    opts.codegen.rate_limits.create = Window {
        max: create,
        window: Duration::from_secs(60),
    };
    opts.linear.rate_limits.requests_per_window = 1_000_000;
    opts.max_concurrent_runs = active_runs as u32;
    let mut rig = Rig::prepare(opts).await?;
    let mut child = rig.spawn_cli(cyrus_bin)?;
    if !wait_healthy(rig.addr, Duration::from_secs(30)).await {
        let log = child.log_tail();
        child.stop();
        anyhow::bail!("cyrus start did not become healthy:\n{log}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = child.rss_kib()?;

    let issues = rig.create_issues(active_runs, "[sim never_finish]")?;
    for chunk in issues.chunks(50) {
        for issue in chunk {
            rig.delegate(issue)?;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let codegen = rig.codegen.control();
    let all_started = wait_until(Duration::from_secs(240), || {
        codegen.runs().len() >= active_runs
    })
    .await;
    let started = codegen.runs().len();
    // Let the poller and the outbox settle into their steady state.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let loaded = child.rss_kib()?;
    let peak = child.peak_rss_kib()?;
    let crashed = child.exited();
    child.stop();
    rig.shutdown().await;
    if let Some(status) = crashed {
        anyhow::bail!("cyrus start exited during the scenario: {status}");
    }
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    Ok(vec![
        Figure::new(S, "RSS idle", Some(mib(idle)), "MiB"),
        Figure::new(
            S,
            &format!("RSS with {started} active runs"),
            Some(mib(loaded)),
            "MiB",
        )
        .goal(Goal::AtMost(64.0))
        .note(if all_started {
            "15 s after the last run started".to_string()
        } else {
            format!("only {started} of {active_runs} runs started within 240 s")
        }),
        Figure::new(S, "peak RSS (VmHWM)", Some(mib(peak)), "MiB"),
    ])
}
