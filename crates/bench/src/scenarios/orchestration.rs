//! Orchestration: an epic of 20 sub-issues in a dependency graph of depth
//! 4 (layers of five; each sub-issue after the first layer is blocked by
//! two of the layer before), every run the same simulated length. Figures:
//! the makespan (epic delegated → its summary, on the Codegen simulator's
//! clock) against the lower bound for the parallel cap — the longer of the
//! critical path and the work divided among `maxParallelChildren` places
//! (Codegen's create limit, 10 a minute, is far from binding here) — and
//! the Linear requests spent on the epic's own session per sub-issue.

use crate::report::{Figure, Goal};
use crate::rig::{self, Rig, wait_until};
use cyrus_sandbox::linear::NewIssue;
use serde_json::json;
use std::time::Duration;

const LAYERS: usize = 4;
const WIDTH: usize = 5;
const CAP: usize = 3;

pub async fn run(scale: f64, run_minutes: u64) -> anyhow::Result<Vec<Figure>> {
    const S: &str = "orchestration";
    let opts = rig::options().time_scale(scale).patch(json!({
        "codegen": {"rateLimits": {"timeScale": scale as u32}},
        "orchestration": {"maxParallelChildren": CAP},
    }));
    let mut rig = Rig::prepare(opts).await?;
    let worker = rig.start_worker().await?;
    let control = rig.linear.control();
    let epic = control
        .create_issue(NewIssue {
            team_id: Some(rig.team_id.clone()),
            title: "Bench epic".into(),
            description: Some("Twenty parts.".into()),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("creating the epic: {e:?}"))?;
    let script = format!(
        "[sim outcome=COMPLETE prs=1 duration={}m logs=4]",
        run_minutes
    );
    let mut layers: Vec<Vec<String>> = Vec::new();
    for layer in 0..LAYERS {
        let mut ids = Vec::new();
        for j in 0..WIDTH {
            let child = control
                .create_issue(NewIssue {
                    team_id: Some(rig.team_id.clone()),
                    title: format!("Part {layer}.{j}"),
                    description: Some(script.clone()),
                    parent_id: Some(epic.id.clone()),
                    ..Default::default()
                })
                .map_err(|e| anyhow::anyhow!("creating a sub-issue: {e:?}"))?;
            if layer > 0 {
                let before = &layers[layer - 1];
                for b in [j, (j + 1) % WIDTH] {
                    control
                        .create_relation(&before[b], &child.id, "blocks")
                        .map_err(|e| anyhow::anyhow!("relating: {e:?}"))?;
                }
            }
            ids.push(child.id);
        }
        layers.push(ids);
    }
    let children = LAYERS * WIDTH;
    let start = rig.codegen.control().now();
    let session = rig.delegate(&epic.id)?;
    let run_ms = run_minutes as f64 * 60_000.0;
    let bound_ms = (LAYERS.max(children.div_ceil(CAP))) as f64 * run_ms;
    let real_limit = Duration::from_secs_f64(bound_ms * 3.0 / scale / 1000.0 + 60.0);
    let mut finished_at = None;
    let done = wait_until(real_limit, || {
        let answered = control.session(&session).is_some_and(|v| {
            v.activities
                .iter()
                .any(|a| a.kind() == "response" || a.kind() == "error")
        });
        if answered && finished_at.is_none() {
            finished_at = Some(rig.codegen.control().now());
        }
        answered
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = control.request_stats();
    let runs = rig.codegen.control().runs().len();
    worker.shutdown().await;
    rig.shutdown().await;
    let makespan_ms = finished_at.map(|end| (end - start).as_millis() as f64);
    let on_epic = stats.by_session.get(&session).copied().unwrap_or(0);
    Ok(vec![
        Figure::new(
            S,
            "makespan / lower bound",
            makespan_ms.map(|m| m / bound_ms),
            "ratio",
        )
        .goal(Goal::AtMost(1.10))
        .note(format!(
            "{children} sub-issues, depth {LAYERS}, cap {CAP}, {run_minutes}-min runs ×{scale}: makespan {:.1} min, bound {:.0} min, {runs} Codegen runs{}",
            makespan_ms.unwrap_or(f64::NAN) / 60_000.0,
            bound_ms / 60_000.0,
            if done { "" } else { ", NOT finished in time" }
        )),
        Figure::new(
            S,
            "Linear requests on the epic's session per sub-issue",
            Some(on_epic as f64 / children as f64),
            "requests",
        )
        .goal(Goal::AtMost(2.0))
        .note(format!("{on_epic} in all on the epic's session")),
    ])
}
