//! `cyrus experiments list` / `report` over a store with an experiment's
//! tasks, through the real binary.

use crate::operator::{Seed, config, fill, run, sim};
use cyrus_store::{ExperimentAssignment, Store, TaskFilter};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_shows_each_arm_with_intervals_and_a_verdict() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["experiments"] = serde_json::json!([{
        "name": "models",
        "arms": [{"name": "A", "model": "claude-sonnet"}, {"name": "B", "model": "gpt-4o"}]
    }]);
    std::fs::write(&path, file.to_string()).unwrap();
    let path = path.to_str().unwrap().to_owned();

    // Eight tasks: A's four all completed, B's four: two completed, one
    // failed, one still running.
    let seed = |outcome: Option<&'static str>, cost| Seed {
        issue: "ENG-1",
        repo: "web",
        model: "m",
        start_ms: 1_000,
        run: Duration::from_secs(300),
        outcome,
        error: None,
        cost_micros: cost,
        api_calls: 3,
    };
    let mut seeds: Vec<Seed> = (0..4).map(|_| seed(Some("completed"), 400_000)).collect();
    seeds.extend([
        seed(Some("completed"), 900_000),
        seed(Some("completed"), 900_000),
        seed(Some("failed"), 300_000),
        seed(None, 100_000),
    ]);
    let now = fill(&store_url, &seeds).await;
    let store = Store::connect(&store_url).await.unwrap();
    let tasks = store.list_tasks(&TaskFilter::default()).await.unwrap();
    for t in &tasks {
        let i: usize = t.issue_id.trim_start_matches("issue-").parse().unwrap();
        let arm = if i < 4 { "A" } else { "B" };
        store
            .record_experiment_assignment(&ExperimentAssignment {
                task_id: t.id.clone(),
                experiment: "models".into(),
                arm: arm.into(),
                model: if i < 4 { "claude-sonnet" } else { "gpt-4o" }.into(),
                issue_id: t.issue_id.clone(),
                assigned_at: now - 3_600_000,
            })
            .await
            .unwrap();
        if i < 3 || i == 4 {
            store
                .mark_experiment_issue_completed(&t.issue_id, now)
                .await
                .unwrap();
        }
    }
    store.close().await;

    let out = run(
        home.path(),
        &[
            "experiments",
            "report",
            "models",
            "--config",
            &path,
            "--json",
        ],
        &[],
    )
    .await;
    out.assert_code(0);
    let v = out.json();
    let arms = v["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2, "{out}");
    assert_eq!(arms[0]["tasks"], 4);
    assert_eq!(arms[0]["success"]["successes"], 4);
    assert_eq!(arms[0]["completion"]["successes"], 3, "{out}");
    assert_eq!(
        arms[0]["completion"]["trials"], 3,
        "A's fourth is still inside the window"
    );
    assert_eq!(arms[1]["finished"], 3);
    assert_eq!(arms[1]["success"]["successes"], 2);
    assert_eq!(arms[1]["medianCostMicros"], 900_000);
    assert!(arms[0]["completion"]["low"].as_f64().unwrap() < 1.0);
    let verdict = v["comparisons"][0]["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("no difference in completion rate detected yet (about"),
        "{verdict}"
    );

    let csv = run(
        home.path(),
        &[
            "experiments",
            "report",
            "models",
            "--config",
            &path,
            "--csv",
        ],
        &[],
    )
    .await;
    csv.assert_code(0)
        .assert_stdout_contains("arm,model,tasks,finished");
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("A,claude-sonnet,4,4,1.0000"), "{csv}");

    let list = run(
        home.path(),
        &["experiments", "list", "--config", &path, "--json"],
        &[],
    )
    .await;
    list.assert_code(0);
    let l = list.json();
    assert_eq!(l[0]["name"], "models");
    assert_eq!(l[0]["tasks"], 8);
    assert_eq!(l[0]["running"], true);

    let missing = run(
        home.path(),
        &["experiments", "report", "nope", "--config", &path],
        &[],
    )
    .await;
    assert_eq!(missing.code, Some(2), "{missing}");
    assert!(missing.stderr.contains("configured: models"), "{missing}");
    sim.shutdown().await;
}
