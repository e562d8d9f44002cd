//! The dashboard in a real headless Chromium: what a person sees after the
//! page's JavaScript ran (DOM dump), plus a screenshot kept as a test
//! artifact. Chromium comes from `.ci/install-test-tools`; without it the
//! test skips loudly, except under `CI=true`, where it fails.

use crate::dashboard::{Mixed, mixed_stack};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> Option<PathBuf> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path.to_path_buf());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{CHROMIUM} is missing under CI=true: run .ci/install-test-tools");
    }
    eprintln!("SKIPPED: the dashboard browser test needs {CHROMIUM} (run .ci/install-test-tools)");
    None
}

/// Runs headless Chromium with `args` and `url`; returns stdout, or panics
/// with everything it printed.
fn run_chromium(bin: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_runs_costs_and_the_chart_in_chromium() {
    let Some(bin) = chromium() else { return };
    let Mixed { stack, status } = mixed_stack(None).await;
    let url = stack.worker_url() + "/";
    let profile = tempfile::tempdir().unwrap();

    // Virtual time lets the 5 s auto-refresh fire before the DOM is dumped.
    let dom = {
        let (bin, profile, url) = (bin.clone(), profile.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(
                &bin,
                &profile,
                &["--virtual-time-budget=7000", "--dump-dom"],
                &url,
            )
        })
        .await
        .unwrap()
    };
    let show = || format!("--- DOM ---\n{dom}\n--- /api/status ---\n{status:#}");
    let mut identifiers: Vec<&str> = status["active"]
        .as_array()
        .unwrap()
        .iter()
        .chain(status["history"].as_array().unwrap())
        .map(|t| t["issue_identifier"].as_str().unwrap())
        .collect();
    identifiers.dedup();
    assert_eq!(identifiers.len(), 3, "{}", show());
    for id in &identifiers {
        assert!(dom.contains(id), "the page does not show {id}\n{}", show());
    }
    // A finished task's estimate no longer changes: the page shows it exactly.
    let done_cost = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["outcome"] == "completed")
        .and_then(|t| t["estimated_cost_micro"].as_i64())
        .unwrap();
    assert!(done_cost > 0, "{}", show());
    let dollars = |micro: i64| format!("${}.{:04}", micro / 1_000_000, (micro % 1_000_000) / 100);
    let spent = status["spend"]["today_micro"].as_i64().unwrap();
    assert!(spent > 0, "{}", show());
    for needle in [
        "<svg".to_string(),
        "Estimated spend today".to_string(),
        format!("{} est.", dollars(done_cost)),
        format!("${}.", spent / 1_000_000),
        "Active runs (1)".to_string(),
        "running".to_string(),
        "completed".to_string(),
        "failed".to_string(),
    ] {
        assert!(
            dom.contains(&needle),
            "the page lacks {needle:?}\n{}",
            show()
        );
    }
    // The auto-refresh ran: the live part was replaced by a fetched fragment.
    assert!(
        dom.contains("data-refreshed=\""),
        "the auto-refresh did not run\n{}",
        show()
    );

    // A screenshot for people (a test artifact, never committed).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, size) in [
        ("dashboard-laptop.png", "1280,900"),
        ("dashboard-phone.png", "390,844"),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let (bin, profile, url) = (bin.clone(), profile.path().to_path_buf(), url.clone());
        let shot = path.clone();
        tokio::task::spawn_blocking(move || {
            run_chromium(
                &bin,
                &profile,
                &[
                    &format!("--screenshot={}", shot.display()),
                    &format!("--window-size={size}"),
                ],
                &url,
            )
        })
        .await
        .unwrap();
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "no screenshot at {}", path.display());
        eprintln!("dashboard screenshot: {}", path.display());
    }
    stack.shutdown().await;
}
