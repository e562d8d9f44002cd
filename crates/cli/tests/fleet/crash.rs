//! Issue #5: SIGKILL the real binary at random moments while tasks flow;
//! nothing may be lost, started twice or answered twice.

use crate::support::{Kind, Planned, Replica, World, drive, runs_by_session, seed, violations};
use rand::{RngExt as _, SeedableRng as _};
use std::time::{Duration, Instant};

const TASKS: usize = 56;
const DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let seed = seed("crash");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let world = World::start().await;
    let db = world.dir.path().join("cyrus.db");
    let config = world.config(&format!("sqlite://{}", db.display()), 10);
    let mut replica = Replica::spawn("cyrus", &config, world.dir.path());
    replica.wait_ready().await;
    world.balancer.set_backends(vec![replica.addr]);

    let started = Instant::now();
    let mut tasks: Vec<Planned> = Vec::new();
    let mut next_delegation = Instant::now();
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(1_500..4_000));
    let mut kills = 0u32;
    let mut last_delegation = None;
    loop {
        let now = Instant::now();
        if tasks.len() < TASKS && now >= next_delegation {
            let kind = Kind::pick(rng.random_range(0..10));
            // 60–180 simulated seconds: 1–3 s at the simulator's 60×.
            let secs = rng.random_range(60..=180);
            let session = world.delegate(
                &format!("Crash task {}", tasks.len() + 1),
                &kind.description(secs),
            );
            tasks.push(Planned {
                kind,
                session,
                follow_up_sent: false,
                stop_sent: false,
                delegated_at: now,
            });
            next_delegation = now + Duration::from_millis(rng.random_range(150..900));
            if tasks.len() == TASKS {
                last_delegation = Some(now);
            }
        }
        // Kill while tasks are being delegated and for a while after, so
        // kills land in every state (intake, start, follow, outbox).
        let killing = last_delegation.is_none_or(|t| now - t < Duration::from_secs(10));
        if killing && now >= next_kill {
            replica.kill();
            kills += 1;
            eprintln!(
                "crash: SIGKILL #{kills} at {:.1} s ({} tasks delegated)",
                started.elapsed().as_secs_f64(),
                tasks.len()
            );
            replica.restart().await;
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(1_500..5_000));
        }
        let runs = world.codegen.control().runs();
        let by_session = runs_by_session(&runs);
        let mut all_done = tasks.len() == TASKS;
        for task in &mut tasks {
            if !drive(&world, task, &by_session) {
                all_done = false;
            }
        }
        if all_done {
            break;
        }
        if started.elapsed() > DEADLINE {
            let open: Vec<String> = tasks
                .iter()
                .filter(|t| crate::support::finals(&world.session(&t.session)) < t.kind.rounds())
                .map(|t| {
                    format!(
                        "{} {:?}:\n{}",
                        t.session,
                        t.kind,
                        crate::support::describe(&world.session(&t.session))
                    )
                })
                .collect();
            panic!(
                "seed {seed}: {} of {TASKS} tasks did not end within {DEADLINE:?} ({kills} kills)\n{}\n{}",
                open.len(),
                open.join("\n"),
                replica.log_tail(300)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A duplicate (second run, second answer) would show up now: give the
    // worker a moment to make one before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let problems = violations(&world, &tasks);
    let runs = world.codegen.control().runs();
    let lifecycles: usize = tasks.iter().map(|t| t.kind.rounds()).sum();
    eprintln!(
        "crash: seed {seed}, {} tasks ({lifecycles} lifecycles), {} Codegen runs, {kills} SIGKILLs, {} process starts, {:.1} s",
        tasks.len(),
        runs.len(),
        replica.starts,
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: {} violation(s):\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        replica.log_tail(300)
    );
    assert!(
        kills >= 5,
        "only {kills} kills happened: the test proved little"
    );
    assert!(lifecycles >= 50, "{lifecycles} lifecycles");
    replica.kill();
}
