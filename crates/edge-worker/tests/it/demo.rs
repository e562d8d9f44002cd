//! The demo's scenarios are the README's main job: they must all pass.

use cyrus_stack::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_scenario_ends_as_it_should() {
    let mut log = Vec::new();
    let (results, stack) = demo::run(DemoOptions::default(), |line| log.push(line))
        .await
        .expect("demo starts");
    let table = demo::table(&results);
    stack.shutdown().await;
    assert_eq!(results.len(), 6, "{table}");
    assert!(
        results.iter().all(|r| r.ok),
        "{table}\n--- progress ---\n{}",
        log.join("\n")
    );
}
