use crate::operator::{Seed, config, fill, run, sim};
use std::time::Duration;

fn seeds() -> Vec<Seed> {
    let done = |issue, repo, model, start_ms, cost| Seed {
        issue,
        repo,
        model,
        start_ms,
        run: Duration::from_secs(600),
        outcome: Some("completed"),
        error: None,
        cost_micros: cost,
        api_calls: 12,
    };
    let mut seeds: Vec<Seed> = (0..9)
        .map(|_| done("ENG-1", "web", "claude-sonnet", 800, 400_000))
        .collect();
    seeds.push(done("ENG-2", "api", "gpt-4o", 1_500, 1_000_000));
    seeds.push(Seed {
        outcome: Some("failed"),
        error: Some("Codegen rate limit on create_run (HTTP 429) after retrying"),
        ..done("ENG-3", "api", "gpt-4o", 5_000, 100_000)
    });
    seeds.push(Seed {
        outcome: None,
        ..done("ENG-4", "web", "claude-sonnet", 900, 250_000)
    });
    seeds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_store_codegen_and_active_runs_without_a_worker() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    let path = path.to_str().unwrap().to_owned();
    fill(&store_url, &seeds()).await;

    let out = run(home.path(), &["status", "--config", &path, "--json"], &[]).await;
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["worker"]["running"], false, "{out}");
    assert_eq!(v["codegen"]["authorized"], true, "{out}");
    assert_eq!(v["rateLimit"]["source"], "unknown");
    assert_eq!(v["store"]["readable"], true);
    assert_eq!(v["queue"]["completed"], 10, "{out}");
    assert_eq!(v["queue"]["failed"], 1);
    assert_eq!(v["queue"]["running"], 1);
    let runs = v["activeRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{out}");
    assert_eq!(runs[0]["issue"], "ENG-4");
    assert_eq!(runs[0]["model"], "claude-sonnet");
    assert_eq!(runs[0]["estimatedCostMicros"], 250_000);
    assert!(
        runs[0]["webUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://codegen.example/run/")
    );
    assert!(runs[0]["ageMs"].as_i64().unwrap() >= 3_600_000 - 60_000);
    // 9 × 0.40 + 1.00 + 0.10 + 0.25 = 4.95 of 50.
    assert_eq!(v["spendToday"]["spentMicros"], 4_950_000);
    assert_eq!(v["spendToday"]["limitMicros"], 50_000_000);
    assert_eq!(v["spendToday"]["percent"], 9);

    let text = run(
        home.path(),
        &["status", "--config", &path],
        &[("NO_COLOR", "1")],
    )
    .await;
    text.assert_code(0)
        .assert_stdout_contains("No worker at")
        .assert_stdout_contains("ENG-4")
        .assert_stdout_contains("$4.95 of $50.00")
        .assert_nowhere("\u{1b}[");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_computes_rates_latencies_costs_and_verdicts() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    let path = path.to_str().unwrap().to_owned();
    fill(&store_url, &seeds()).await;

    let out = run(
        home.path(),
        &[
            "stats", "--config", &path, "--since", "7d", "--by", "model", "--json",
        ],
        &[],
    )
    .await;
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["tasks"], 12, "{out}");
    assert_eq!(v["outcomes"]["completed"], 10);
    assert_eq!(v["outcomes"]["failed"], 1);
    assert_eq!(v["outcomes"]["active"], 1);
    assert_eq!(v["finished"], 11);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["rateLimitFailures"], 1);
    assert_eq!(v["timeToStart"]["count"], 12);
    assert_eq!(v["timeToStart"]["medianMs"], 800);
    assert_eq!(v["timeToStart"]["p95Ms"], 5_000);
    assert_eq!(v["duration"]["medianMs"], 600_000);
    assert_eq!(v["apiCalls"]["total"], 144);
    assert!(v["retries"].is_null());
    assert_eq!(v["cost"]["totalMicros"], 4_950_000);
    assert_eq!(v["by"], "model");
    assert_eq!(v["breakdown"][0]["key"], "claude-sonnet", "{out}");
    assert_eq!(v["breakdown"][0]["costMicros"], 3_850_000);
    assert_eq!(v["breakdown"][0]["tasks"], 10);
    assert_eq!(v["breakdown"][1]["key"], "gpt-4o");
    assert_eq!(v["breakdown"][1]["failed"], 1);
    let verdict = |list: &str, key: &str| {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| c["verdict"].as_str().unwrap().to_owned())
            .unwrap()
    };
    // p95 5 s > 2 s; 1 of 11 failed = 9 % > 5 %; $4.95/week → $21/month.
    assert_eq!(verdict("successMetrics", "start_latency"), "breached");
    assert_eq!(verdict("successMetrics", "failed_tasks"), "breached");
    assert_eq!(verdict("successMetrics", "monthly_cost"), "ok");
    assert_eq!(verdict("hybridTriggers", "monthly_cost"), "ok");
    assert_eq!(verdict("hybridTriggers", "planning_latency"), "ok");
    assert_eq!(verdict("hybridTriggers", "rate_limit_failures"), "breached");

    let csv = run(
        home.path(),
        &["stats", "--config", &path, "--by", "repo", "--csv"],
        &[],
    )
    .await;
    csv.assert_code(0)
        .assert_stdout_contains("key,tasks,failed,cost_micros,cost_usd\n")
        .assert_stdout_contains("web,10,0,3850000,3.85")
        .assert_stdout_contains("api,2,1,1100000,1.10");

    let issue = run(
        home.path(),
        &["stats", "--config", &path, "--by", "issue", "--json"],
        &[],
    )
    .await;
    issue.assert_code(0);
    assert_eq!(issue.json()["breakdown"][0]["key"], "ENG-1", "{issue}");
    assert_eq!(issue.json()["breakdown"][0]["costMicros"], 3_600_000);

    let text = run(home.path(), &["stats", "--config", &path], &[]).await;
    text.assert_code(0)
        .assert_stdout_contains("Success metrics")
        .assert_stdout_contains("breached")
        .assert_stdout_contains("retries: not recorded");

    run(
        home.path(),
        &["stats", "--config", &path, "--since", "tomorrow"],
        &[],
    )
    .await
    .assert_code(2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_store_means_insufficient_data_and_missing_store_fails() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    let path = path.to_str().unwrap().to_owned();
    run(home.path(), &["status", "--config", &path], &[])
        .await
        .assert_code(1)
        .assert_stdout_contains("does not exist yet");
    fill(&store_url, &[]).await;
    let out = run(home.path(), &["stats", "--config", &path, "--json"], &[]).await;
    out.assert_code(0);
    let v = out.json();
    assert_eq!(v["tasks"], 0);
    for list in ["successMetrics", "hybridTriggers"] {
        for c in v[list].as_array().unwrap() {
            assert_eq!(c["verdict"], "insufficient data", "{out}");
        }
    }
    sim.shutdown().await;
}
