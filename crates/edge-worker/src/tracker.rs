//! Follows every active Codegen run with one poller (see
//! `cyrus_codegen_executor::poller`) and wakes a run's task when its status
//! changes. It holds no state the store doesn't: on start it re-reads the
//! running tasks, and every running step re-registers its run.

use crate::context::{Ctx, TrackerCommand as Command};
use cyrus_codegen_executor::poller::{PollConfig, RunTracker, TrackerEvent};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

pub(crate) async fn run(
    ctx: Ctx,
    mut commands: mpsc::UnboundedReceiver<Command>,
    poll: PollConfig,
) {
    let min_interval = poll.min_interval;
    let mut tracker = RunTracker::new(ctx.codegen.clone(), poll);
    let mut task_of: HashMap<i64, String> = HashMap::new();
    let running = cyrus_store::TaskFilter {
        state: Some(cyrus_core::lifecycle::TaskState::Running),
        active_only: true,
        ..Default::default()
    };
    match ctx.store.list_tasks(&running).await {
        Ok(tasks) => {
            for task in tasks {
                if let Some(run_id) = task.codegen_run_id {
                    tracker.track(run_id, None);
                    task_of.insert(run_id, task.id);
                }
            }
        }
        Err(err) => tracing::error!(error = %err, "tracker: could not load running tasks"),
    }
    // Ticks keep their own schedule: a command (every progress step sends
    // one) must not pull the next tick forward, or reads would follow the
    // number of steps instead of the poller's interval.
    let mut next_tick = tokio::time::Instant::now();
    loop {
        while let Ok(cmd) = commands.try_recv() {
            apply(&mut tracker, &mut task_of, cmd);
        }
        if tracker.is_empty() {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => apply(&mut tracker, &mut task_of, cmd),
                    None => return,
                },
                _ = ctx.shutdown.cancelled() => return,
            }
            // A run just tracked was just read (its create or resume answer);
            // the schedule of the last tick (an empty tracker waits long)
            // no longer applies.
            next_tick = tokio::time::Instant::now() + min_interval;
            continue;
        }
        if tokio::time::Instant::now() >= next_tick {
            tick(&ctx, &mut tracker, &mut task_of).await;
            next_tick = tokio::time::Instant::now() + tracker.next_delay();
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_tick) => {}
            cmd = commands.recv() => match cmd {
                Some(cmd) => apply(&mut tracker, &mut task_of, cmd),
                None => return,
            },
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// One polling round: record what changed and wake the tasks concerned.
async fn tick(ctx: &Ctx, tracker: &mut RunTracker, task_of: &mut HashMap<i64, String>) {
    match tracker.tick().await {
        Ok(report) => {
            for event in report.events {
                let run_id = match event {
                    TrackerEvent::StatusChanged { run_id, run, .. } => {
                        ctx.cache
                            .runs_seen
                            .lock()
                            .expect("runs cache")
                            .insert(run_id, *run);
                        run_id
                    }
                    TrackerEvent::Vanished { run_id } => {
                        ctx.cache
                            .runs_seen
                            .lock()
                            .expect("runs cache")
                            .remove(&run_id);
                        run_id
                    }
                };
                if let Some(task_id) = task_of.get(&run_id) {
                    if let Err(err) = ctx.store.wake_task(task_id, ctx.now_ms()).await {
                        tracing::error!(task = %task_id, error = %err, "tracker: waking task failed");
                    }
                    ctx.wake.scheduler.notify_one();
                }
                if !tracker.is_tracking(run_id) {
                    task_of.remove(&run_id);
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "tracker: polling round failed"),
    }
}

fn apply(tracker: &mut RunTracker, task_of: &mut HashMap<i64, String>, cmd: Command) {
    match cmd {
        Command::Track {
            run_id,
            task_id,
            known,
        } => {
            if !tracker.is_tracking(run_id) {
                tracker.track(run_id, known);
            }
            task_of.insert(run_id, task_id);
        }
        Command::Untrack { run_id } => {
            tracker.untrack(run_id);
            task_of.remove(&run_id);
        }
    }
}

/// The poller's settings from configuration.
pub fn poll_config(ctx_config: &cyrus_core::config::Config) -> PollConfig {
    let min = Duration::from_secs(ctx_config.codegen.poll_interval_secs.max(1));
    PollConfig {
        min_interval: min,
        max_interval: (min * 6)
            .max(Duration::from_secs(60))
            .min(Duration::from_secs(120)),
        ..Default::default()
    }
}
