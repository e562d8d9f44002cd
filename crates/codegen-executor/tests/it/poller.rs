//! The single poller against the simulator, with frozen simulated time.

use crate::support::{Harness, frozen, start};
use cyrus_codegen_executor::poller::{PollConfig, RunTracker, TrackerEvent};
use cyrus_codegen_executor::{CreateRun, RunStatus};
use cyrus_sandbox::codegen::Endpoint;
use std::time::Duration;

async fn create(h: &Harness, prompt: &str) -> i64 {
    let run = h
        .client
        .create_run(&CreateRun {
            prompt: prompt.into(),
            repo_id: Some(7),
            ..Default::default()
        })
        .await
        .unwrap();
    run.id
}

fn changed(events: &[TrackerEvent]) -> Vec<(i64, RunStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            TrackerEvent::StatusChanged { run_id, run, .. } => Some((*run_id, run.status())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn one_list_call_follows_many_runs() {
    let h = start(frozen()).await;
    let a = create(&h, "[sim duration=10s] a").await;
    let b = create(&h, "[sim duration=20s outcome=FAILED] b").await;
    let c = create(&h, "[sim duration=600s] c").await;
    let mut tracker = RunTracker::new(h.client.clone(), PollConfig::default());
    for id in [a, b, c] {
        tracker.track(id, Some(RunStatus::Active));
    }
    let report = tracker.tick().await.unwrap();
    assert_eq!(changed(&report.events), vec![], "{report:?}");
    assert_eq!((report.list_calls, report.get_calls), (1, 0), "{report:?}");

    h.sim.control().advance(Duration::from_secs(15));
    let report = tracker.tick().await.unwrap();
    assert_eq!(
        changed(&report.events),
        vec![(a, RunStatus::Complete)],
        "{report:?}\n{}",
        h.dump()
    );
    assert!(!tracker.is_tracking(a), "finished runs are dropped");

    h.sim.control().advance(Duration::from_secs(10));
    let report = tracker.tick().await.unwrap();
    assert_eq!(
        changed(&report.events),
        vec![(b, RunStatus::Failed)],
        "{report:?}"
    );
    assert_eq!(tracker.len(), 1);
    assert_eq!(
        h.sim.control().request_count(Endpoint::GetRun),
        0,
        "{}",
        h.dump()
    );
}

#[tokio::test]
async fn runs_beyond_the_read_pages_fall_back_to_get() {
    let h = start(frozen()).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(create(&h, &format!("[sim duration=10s] r{i}")).await);
    }
    let config = PollConfig {
        list_page_size: 2,
        max_list_pages: 1,
        ..PollConfig::default()
    };
    let mut tracker = RunTracker::new(h.client.clone(), config);
    for id in &ids {
        tracker.track(*id, Some(RunStatus::Active));
    }
    h.sim.control().advance(Duration::from_secs(11));
    let report = tracker.tick().await.unwrap();
    assert_eq!((report.list_calls, report.get_calls), (1, 2), "{report:?}");
    let mut finished: Vec<i64> = changed(&report.events)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    finished.sort();
    assert_eq!(finished, ids, "{report:?}");
    assert!(tracker.is_empty());
}

#[tokio::test]
async fn unknown_run_is_reported_vanished() {
    let h = start(frozen()).await;
    let real = create(&h, "[sim duration=100s] x").await;
    let mut tracker = RunTracker::new(h.client.clone(), PollConfig::default());
    tracker.track(real, Some(RunStatus::Active));
    tracker.track(real + 1000, None);
    let report = tracker.tick().await.unwrap();
    assert!(
        report.events.contains(&TrackerEvent::Vanished {
            run_id: real + 1000
        }),
        "{report:?}"
    );
    assert!(tracker.is_tracking(real) && tracker.len() == 1);
}

#[tokio::test]
async fn interval_respects_min_and_read_budget() {
    let h = start(frozen()).await;
    let config = PollConfig {
        min_interval: Duration::from_secs(10),
        ..PollConfig::default()
    };
    let mut tracker = RunTracker::new(h.client.clone(), config);
    assert_eq!(tracker.next_delay(), Duration::from_secs(60), "idle");
    let id = create(&h, "[sim duration=100s] x").await;
    tracker.track(id, Some(RunStatus::Active));
    tracker.tick().await.unwrap();
    // One read per tick is far under 30 per 30 s: the minimum applies.
    assert_eq!(tracker.next_delay(), Duration::from_secs(10));
}

/// The spawned loop: commands in, events out. Real time, but the intervals
/// are milliseconds and the test waits on the event, not on a fixed sleep.
#[tokio::test]
async fn run_loop_tracks_commands_and_emits_events() {
    use cyrus_codegen_executor::poller::TrackerCommand;
    let h = start(frozen()).await;
    let id = create(&h, "[sim duration=10s] loop").await;
    let config = PollConfig {
        min_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        ..PollConfig::default()
    };
    let tracker = RunTracker::new(h.client.clone(), config);
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(8);
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(8);
    let task = tokio::spawn(tracker.run(cmd_rx, ev_tx));
    cmd_tx
        .send(TrackerCommand::Track {
            run_id: id,
            known: Some(RunStatus::Active),
        })
        .await
        .unwrap();
    h.sim.control().advance(Duration::from_secs(11));
    let event = tokio::time::timeout(Duration::from_secs(10), ev_rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no event\n{}", h.dump()))
        .expect("loop alive");
    match event {
        TrackerEvent::StatusChanged {
            run_id,
            run,
            previous,
        } => {
            assert_eq!((run_id, previous), (id, Some(RunStatus::Active)));
            assert_eq!(run.status(), RunStatus::Complete);
        }
        other => panic!("{other:?}"),
    }
    drop(cmd_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop ends when commands close")
        .unwrap();
}

/// When the shared read budget is nearly spent by others, the poller backs
/// off (doubles its interval).
#[tokio::test]
async fn interval_doubles_when_read_headroom_is_low() {
    use crate::support::config_for;
    use cyrus_codegen_executor::{CodegenClient, RateLimit};
    let h = start(frozen()).await;
    let mut config = config_for(&h.sim);
    config.rate_limits.read = RateLimit {
        max: 8,
        per: Duration::from_secs(30),
        burst: 8,
    };
    let client = CodegenClient::new(config).unwrap();
    let id = create(&h, "[sim duration=100s] x").await;
    let poll = PollConfig {
        min_interval: Duration::from_secs(10),
        max_interval: Duration::from_secs(600),
        read_budget_percent: 100,
        ..PollConfig::default()
    };
    let mut tracker = RunTracker::new(client.clone(), poll);
    tracker.track(id, Some(RunStatus::Active));
    tracker.tick().await.unwrap();
    // 1 read per tick within 8 per 30 s: 3.75 s, so the 10 s minimum applies.
    assert_eq!(tracker.next_delay(), Duration::from_secs(10));
    for _ in 0..6 {
        client.get_run(id).await.unwrap();
    }
    // 7 of 8 used: under a quarter left.
    assert_eq!(tracker.next_delay(), Duration::from_secs(20));
}
