//! The dashboard and `/api/status` against a stack with tasks in several
//! states, and the token gate over real HTTP.

use crate::harness::{describe, final_activity, spawn};
use cyrus_stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A stack with one completed task (with a PR), one failed task and one run
/// that never finishes (still `running`).
pub struct Mixed {
    pub stack: Stack,
    /// The `/api/status` body once all three are where they should be.
    pub status: Value,
}

pub async fn mixed_stack(patch: Option<Value>) -> Mixed {
    let stack = spawn(StackOptions {
        config_patch: patch,
        ..StackOptions::default().time_scale(30.0)
    })
    .await;
    let (_, done) = stack
        .delegate_issue(
            "Add a health check",
            "[sim outcome=COMPLETE prs=1 duration=30s logs=4]",
            &[],
        )
        .expect("delegate");
    let (_, failed) = stack
        .delegate_issue(
            "Fix flaky job",
            "[sim outcome=FAILED duration=30s logs=2]",
            &[],
        )
        .expect("delegate");
    let (_, _long) = stack
        .delegate_issue("Large refactor", "[sim never_finish logs=5]", &[])
        .expect("delegate");
    let timeout = Duration::from_secs(60);
    let (kind, _) = final_activity(&stack, &done, timeout).await;
    assert_eq!(kind, "response", "{}", describe(&stack, &done));
    let (kind, _) = final_activity(&stack, &failed, timeout).await;
    assert_eq!(kind, "error", "{}", describe(&stack, &failed));

    // Wait until the never-ending run is attached (it has a Codegen link).
    let url = format!("{}/api/status", stack.worker_url());
    let start = Instant::now();
    let status = loop {
        let status: Value = reqwest::get(&url)
            .await
            .expect("GET /api/status")
            .json()
            .await
            .expect("JSON");
        let running = status["active"].as_array().is_some_and(|a| {
            a.iter()
                .any(|t| t["state"] == "running" && t["codegen_url"].is_string())
        });
        if running && status["history"].as_array().is_some_and(|h| h.len() == 2) {
            break status;
        }
        assert!(
            start.elapsed() < timeout,
            "the long run never showed as running with a Codegen link:\n{status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Mixed { stack, status }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_api_and_page_show_queue_runs_history_spend_and_limits() {
    let Mixed { stack, status } = mixed_stack(None).await;
    let show = || format!("{status:#}");

    let count = |state: &str| {
        status["queue"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["state"] == state)
            .map(|q| q["count"].as_i64().unwrap())
    };
    assert_eq!(count("running"), Some(1), "{}", show());
    assert_eq!(count("completed"), Some(1), "{}", show());
    assert_eq!(count("failed"), Some(1), "{}", show());

    let active = status["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{}", show());
    let run = &active[0];
    assert!(
        run["issue_identifier"]
            .as_str()
            .unwrap()
            .starts_with("ENG-"),
        "{}",
        show()
    );
    assert!(
        run["issue_url"].is_string(),
        "issue link missing: {}",
        show()
    );
    assert_eq!(run["repository"], "web", "{}", show());

    let outcomes: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        outcomes.contains(&"completed") && outcomes.contains(&"failed"),
        "{}",
        show()
    );
    let completed = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["outcome"] == "completed")
        .unwrap();
    assert_eq!(
        completed["pr_urls"].as_array().unwrap().len(),
        1,
        "{}",
        show()
    );

    let spend = &status["spend"];
    assert_eq!(spend["estimate"], true);
    assert_eq!(spend["days"].as_array().unwrap().len(), 30, "{}", show());
    assert_eq!(spend["max_per_day_micro"], 100_000_000);
    let today = spend["days"].as_array().unwrap().last().unwrap()["micro"]
        .as_i64()
        .unwrap();
    assert_eq!(spend["today_micro"].as_i64().unwrap(), today);
    assert!(today > 0, "runs were costed: {}", show());
    assert_eq!(spend["by_repository"][0]["key"], "web", "{}", show());
    assert!(
        !spend["by_model"].as_array().unwrap().is_empty(),
        "{}",
        show()
    );

    let classes: Vec<&str> = status["rate_limits"]["codegen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes.len(), 3, "{}", show());
    assert_eq!(
        status["rate_limits"]["linear"].as_array().unwrap().len(),
        1,
        "{}",
        show()
    );

    // The page renders the same figures, labelled as estimates.
    let page = reqwest::get(stack.worker_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        run["issue_identifier"].as_str().unwrap(),
        "<svg",
        "(estimate)",
        "Active runs (1)",
        "Rate-limit headroom",
        "dashboard/live",
    ] {
        assert!(page.contains(needle), "page lacks {needle:?}:\n{page}");
    }
    assert!(
        !page.contains("<script src") && !page.contains("<link") && !page.contains("@import"),
        "the page must load nothing from elsewhere (works offline):\n{page}"
    );
    let fragment = reqwest::get(format!("{}/dashboard/live", stack.worker_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fragment.contains("id=\"active\""), "{fragment}");
    assert!(
        !fragment.contains("<html"),
        "a fragment, not a page: {fragment}"
    );
    stack.shutdown().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_listener_requires_the_dashboard_token() {
    let stack = spawn(StackOptions {
        config_patch: Some(json!({"server": {"listen": "0.0.0.0:0", "dashboardToken": "tkn-123"}})),
        ..Default::default()
    })
    .await;
    let base = stack.worker_url();
    let http = no_redirects();
    for path in ["/", "/api/status", "/dashboard/live"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth("tkn-123")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the token");
    }
    // ?token= sets a cookie and takes the token out of the address bar.
    let r = http
        .get(format!("{base}/?token=tkn-123"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("tkn-123"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = http
        .get(format!("{base}/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<svg"));
    // Health, readiness and metrics stay open (probes and scrapers).
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_listener_without_a_token_turns_the_dashboard_off_and_loopback_is_open() {
    let public = spawn(StackOptions {
        config_patch: Some(json!({"server": {"listen": "0.0.0.0:0"}})),
        ..Default::default()
    })
    .await;
    let r = no_redirects()
        .get(format!("{}/api/status", public.worker_url()))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    public.shutdown().await;

    let local = spawn(StackOptions::default()).await;
    let r = reqwest::get(format!("{}/api/status", local.worker_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    local.shutdown().await;
}
