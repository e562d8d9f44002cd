//! Linear requests per typical task: delegate → acknowledgement, routing,
//! progress, PR link, final answer. Counted by the Linear simulator per
//! session (requests that touched the session or its issue), with
//! Codegen time-scaled ×20 and the client's Codegen budgets scaled equally.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig, wait_until};
use serde_json::json;
use std::time::Duration;

const SCALE: f64 = 20.0;

pub async fn run(tasks: usize) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "linear requests";
    // Codegen's documented counts; windows divided like the simulator's clock.
    let opts = rig::options()
        .time_scale(SCALE)
        .patch(json!({"codegen": {"rateLimits": {"timeScale": SCALE as u32}}}));
    let mut rig = Rig::prepare(opts).await?;
    let worker = rig.start_worker().await?;
    let issues = rig.create_issues(
        tasks,
        "Add a health endpoint. [sim outcome=COMPLETE prs=1 duration=5m logs=12]",
    )?;
    let mut sessions = Vec::new();
    for issue in &issues {
        sessions.push(rig.delegate(issue)?);
    }
    let linear = rig.linear.control();
    let done = wait_until(Duration::from_secs(120), || {
        sessions.iter().all(|s| {
            linear.session(s).is_some_and(|v| {
                v.activities
                    .iter()
                    .any(|a| a.kind() == "response" || a.kind() == "error")
            })
        })
    })
    .await;
    // Let the outbox finish (e.g. the state move after the answer).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = linear.request_stats();
    worker.shutdown().await;
    rig.shutdown().await;
    let counts: Vec<u64> = sessions
        .iter()
        .map(|s| stats.by_session.get(s).copied().unwrap_or(0))
        .collect();
    let max = counts.iter().max().copied().map(|m| m as f64);
    let mean =
        (!counts.is_empty()).then(|| counts.iter().sum::<u64>() as f64 / counts.len() as f64);
    let unattributed = stats.total - counts.iter().sum::<u64>();
    Ok(vec![
        Figure::new(S, "per task (max)", max, "requests")
            .goal(Goal::AtMost(15.0))
            .note(format!(
                "{tasks} tasks (5-min run, 12 logs, 1 PR){}; by operation {:?}",
                if done {
                    ""
                } else {
                    ", NOT all answered in 120 s"
                },
                stats.by_operation
            )),
        Figure::new(S, "per task (mean)", mean, "requests"),
        Figure::new(
            S,
            "not attributed to a session",
            Some(unattributed as f64),
            "requests",
        ),
    ])
}
