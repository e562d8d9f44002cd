//! Issue #8: three real replicas on one PostgreSQL database behind one
//! webhook address; one is SIGKILLed midway and stays dead. Every task ends
//! exactly once, no run is created twice, and the fleet together keeps
//! Codegen's creation limit.

use crate::support::{
    CODEGEN_CREATES_PER_WINDOW, Kind, Planned, Replica, World, create_database, drive,
    drop_database, finals, max_creates_per_window, postgres_url, runs_by_session, seed, violations,
};
use rand::{RngExt as _, SeedableRng as _};
use std::time::{Duration, Instant};

const TASKS: usize = 300;
const DEADLINE: Duration = Duration::from_secs(480);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres_survive_losing_one() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let seed = seed("fleet");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (db_name, db_url) = create_database(&admin_url).await;
    let world = World::start().await;
    let config = world.config(&db_url, 40);
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|i| Replica::spawn(&format!("replica-{i}"), &config, world.dir.path()))
        .collect();
    for replica in &mut replicas {
        replica.wait_ready().await;
    }
    world
        .balancer
        .set_backends(replicas.iter().map(|r| r.addr).collect());

    let started = Instant::now();
    let mut tasks: Vec<Planned> = Vec::new();
    let mut killed: Option<(usize, f64)> = None;
    loop {
        // Delegate in bursts of 10 every 200 ms: the whole load within ~6 s,
        // far faster than Codegen lets runs be created.
        for _ in 0..10 {
            if tasks.len() < TASKS {
                let kind = Kind::pick(rng.random_range(0..10));
                let secs = rng.random_range(60..=180);
                let session = world.delegate(
                    &format!("Fleet task {}", tasks.len() + 1),
                    &kind.description(secs),
                );
                tasks.push(Planned {
                    kind,
                    session,
                    follow_up_sent: false,
                    stop_sent: false,
                    delegated_at: Instant::now(),
                });
            }
        }
        let runs = world.codegen.control().runs();
        let by_session = runs_by_session(&runs);
        let mut done = 0;
        for task in &mut tasks {
            if drive(&world, task, &by_session) {
                done += 1;
            }
        }
        // Midway (a third of the tasks ended, runs in every state), kill a
        // replica for good; the forwarder skips it like a load balancer
        // whose health check failed.
        if killed.is_none() && done >= TASKS / 3 {
            let victim = rng.random_range(0..replicas.len());
            replicas[victim].kill();
            let at = started.elapsed().as_secs_f64();
            eprintln!(
                "fleet: SIGKILL {} at {at:.1} s ({done} tasks ended)",
                replicas[victim].name
            );
            killed = Some((victim, at));
        }
        if done == TASKS {
            break;
        }
        if started.elapsed() > DEADLINE {
            let open: Vec<String> = tasks
                .iter()
                .filter(|t| finals(&world.session(&t.session)) < t.kind.rounds())
                .take(20)
                .map(|t| {
                    format!(
                        "{} {:?}:\n{}",
                        t.session,
                        t.kind,
                        crate::support::describe(&world.session(&t.session))
                    )
                })
                .collect();
            let logs: Vec<String> = replicas.iter().map(|r| r.log_tail(80)).collect();
            drop(replicas);
            drop_database(&admin_url, &db_name).await;
            panic!(
                "seed {seed}: {} of {TASKS} tasks did not end within {DEADLINE:?}; first open ones:\n{}\n{}",
                TASKS - done,
                open.join("\n"),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let problems = violations(&world, &tasks);
    let runs = world.codegen.control().runs();
    let rate_limited = world.codegen.control().stats().rate_limited;
    let max_window = max_creates_per_window(&runs);
    let duration = started.elapsed().as_secs_f64();
    let survivors: Vec<bool> = replicas.iter_mut().map(|r| r.is_running()).collect();
    eprintln!(
        "fleet: seed {seed}; {} tasks, {} Codegen runs, {duration:.1} s; replica killed: {:?}; \
         max creates in any {} s simulated window: {max_window} (Codegen allows {CODEGEN_CREATES_PER_WINDOW}); \
         429s served: {rate_limited}; replicas still running: {survivors:?}",
        tasks.len(),
        runs.len(),
        killed.map(|(i, at)| format!("{} at {at:.1} s", replicas[i].name)),
        crate::support::CODEGEN_CREATE_WINDOW_MS / 1000,
    );
    let logs: Vec<String> = replicas.iter().map(|r| r.log_tail(120)).collect();
    drop(replicas);
    drop_database(&admin_url, &db_name).await;

    assert!(
        problems.is_empty(),
        "seed {seed}: {} violation(s):\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        logs.join("\n")
    );
    assert!(killed.is_some(), "no replica was killed");
    assert_eq!(rate_limited, 0, "Codegen answered 429 to the fleet");
    assert!(
        max_window <= CODEGEN_CREATES_PER_WINDOW,
        "{max_window} creates within one {} ms window",
        crate::support::CODEGEN_CREATE_WINDOW_MS
    );
    assert_eq!(
        survivors.iter().filter(|r| **r).count(),
        2,
        "both surviving replicas must still run"
    );
}
