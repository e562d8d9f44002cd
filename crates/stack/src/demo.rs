//! `cyrus demo`: the whole loop on one machine. Starts the simulators, a
//! SQLite store and a worker, delegates a handful of issues that cover the
//! paths users care about (then an epic whose sub-issues are orchestrated),
//! and checks each one ended as it should.

use crate::{Stack, StackOptions, StoreLocation};
use cyrus_sandbox::linear::SessionView;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub db_path: Option<PathBuf>,
    /// Simulated Codegen seconds per real second.
    pub time_scale: f64,
    /// Give up on a scenario after this long (real time).
    pub timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            db_path: None,
            time_scale: 60.0,
            timeout: Duration::from_secs(90),
        }
    }
}

/// One scenario's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub issue: String,
    pub expected: &'static str,
    pub observed: String,
    pub ok: bool,
    pub seconds: f64,
}

struct Scenario {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    labels: &'static [&'static str],
    expected: &'static str,
    issue_id: String,
    session: String,
    identifier: String,
    started: Instant,
    done: Option<ScenarioResult>,
    /// Scenario-specific progress (follow-up sent, stop sent).
    acted: bool,
}

impl Scenario {
    fn new(
        name: &'static str,
        title: &'static str,
        description: &'static str,
        labels: &'static [&'static str],
        expected: &'static str,
    ) -> Scenario {
        Scenario {
            name,
            title,
            description,
            labels,
            expected,
            issue_id: String::new(),
            session: String::new(),
            identifier: String::new(),
            started: Instant::now(),
            done: None,
            acted: false,
        }
    }
}

/// Budget settings chosen so the fifth issue must wait: four runs hold
/// $1.00 each against a $4.50 day.
const PER_TASK: f64 = 1.0;
const PER_DAY: f64 = 4.5;

/// Runs the scenarios; `say` receives progress lines. The stack is returned
/// for `--keep-running`.
pub async fn run(
    opts: DemoOptions,
    mut say: impl FnMut(String),
) -> anyhow::Result<(Vec<ScenarioResult>, Stack)> {
    let store = match &opts.db_path {
        Some(path) => StoreLocation::SqliteFile(path.clone()),
        None => StoreLocation::TempSqlite,
    };
    let stack = Stack::start(StackOptions {
        max_cost_per_task: PER_TASK,
        max_cost_per_day: PER_DAY,
        max_concurrent_runs: 10,
        ..StackOptions::default()
            .time_scale(opts.time_scale)
            .store(store)
    })
    .await?;
    say(format!(
        "worker listening on {}  (store: {})",
        stack.worker_url(),
        stack.store_url
    ));
    say(format!(
        "Codegen simulator {}  ·  Linear simulator {}",
        stack.codegen.url(),
        stack.linear.url()
    ));

    let mut scenarios = vec![
        Scenario::new(
            "success with PR",
            "Add a /health endpoint",
            "Expose a JSON health check. [sim outcome=COMPLETE prs=1 duration=600s logs=12]",
            &["Feature"],
            "response with a PR link",
        ),
        Scenario::new(
            "failure",
            "Fix the flaky login test",
            "It fails one run in ten. [sim outcome=FAILED duration=480s logs=6]",
            &["Bug"],
            "error with the reason",
        ),
        Scenario::new(
            "follow-up prompt",
            "Document the API",
            "Write docs for the public API. [sim outcome=COMPLETE duration=480s logs=6]",
            &["Feature"],
            "two responses (follow-up resumed the run)",
        ),
        Scenario::new(
            "stop",
            "Refactor the billing module",
            "Large refactor. [sim never_finish logs=30]",
            &[],
            "stopped on request",
        ),
        Scenario::new(
            "budget deferral",
            "Upgrade dependencies",
            "Routine upgrade. [sim outcome=COMPLETE duration=120s]",
            &[],
            "told it waits for budget, then ran",
        ),
    ];

    // The first four start together; the fifth is delegated once their four
    // runs hold the day's budget.
    for s in scenarios.iter_mut().take(4) {
        delegate(&stack, s)?;
        say(format!(
            "[{}] delegated: {} — {}",
            s.identifier, s.name, s.title
        ));
    }
    wait_for(opts.timeout, || {
        (stack.codegen.control().runs().len() >= 4).then_some(())
    })
    .await;
    {
        let store = &stack.worker.context().store;
        let today = chrono::Utc::now().date_naive();
        let held = store.reserved_for_day(today).await.unwrap_or_default();
        let spent = store.spend_for_day(today).await.unwrap_or_default();
        say(format!(
            "budget: {held} held by running tasks, {spent} spent, of a {} day (estimates)",
            cyrus_core::MicroDollars::from_dollars(PER_DAY).unwrap_or_default()
        ));
        let s = &mut scenarios[4];
        delegate(&stack, s)?;
        say(format!(
            "[{}] delegated: {} — {} (the day's budget is fully held now)",
            s.identifier, s.name, s.title
        ));
    }

    let mut seen: Vec<usize> = vec![0; scenarios.len()];
    let deadline = Instant::now() + opts.timeout;
    while scenarios.iter().any(|s| s.done.is_none()) {
        if Instant::now() > deadline {
            for s in scenarios.iter_mut().filter(|s| s.done.is_none()) {
                let view = stack.linear.control().session(&s.session);
                s.done = Some(result(
                    s,
                    false,
                    format!(
                        "timed out; session: {}",
                        view.map(|v| summary(&v)).unwrap_or_default()
                    ),
                ));
            }
            break;
        }
        // The stop scenario holds its budget until the deferral was announced,
        // so the deferral does not depend on timing.
        let budget_told = stack
            .linear
            .control()
            .session(&scenarios[4].session)
            .is_some_and(|v| bodies(&v, "thought").any(|t| t.contains("daily budget")));
        for (i, s) in scenarios.iter_mut().enumerate() {
            if s.done.is_some() {
                continue;
            }
            let Some(view) = stack.linear.control().session(&s.session) else {
                continue;
            };
            for a in view.activities.iter().skip(seen[i]) {
                let body = a
                    .content
                    .get("body")
                    .and_then(|b| b.as_str())
                    .unwrap_or_default();
                let first_line = body.lines().next().unwrap_or_default();
                let short: String = first_line.chars().take(100).collect();
                say(format!("[{}] {:<11} {}", s.identifier, a.kind(), short));
            }
            seen[i] = view.activities.len();
            check(&stack, s, &view, budget_told, &mut say);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut results: Vec<ScenarioResult> = scenarios.into_iter().filter_map(|s| s.done).collect();
    // Then an epic: its sub-issues run as their own sessions.
    results.push(orchestration(&stack, &opts, &mut say).await?);
    Ok((results, stack))
}

/// An epic with three sub-issues, one blocking another: two run side by
/// side, the third after its blocker, and the epic's session ends with the
/// summary. Progress lines show the epic's plan as it changes.
async fn orchestration(
    stack: &Stack,
    opts: &DemoOptions,
    say: &mut impl FnMut(String),
) -> anyhow::Result<ScenarioResult> {
    use cyrus_sandbox::linear::NewIssue;
    let control = stack.linear.control();
    let started = Instant::now();
    let issue = |title: &str, description: &str, parent: Option<&str>| {
        control
            .create_issue(NewIssue {
                team_id: Some(stack.team_id.clone()),
                title: title.to_string(),
                description: Some(description.to_string()),
                parent_id: parent.map(str::to_string),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("creating {title}: {e:?}"))
    };
    let epic = issue("Checkout revamp", "The new checkout, in three parts.", None)?;
    let api = issue(
        "Cart API",
        "[sim outcome=COMPLETE prs=1 duration=300s logs=4]",
        Some(&epic.id),
    )?;
    let ui = issue(
        "Cart UI",
        "[sim outcome=COMPLETE prs=1 duration=120s logs=4]",
        Some(&epic.id),
    )?;
    issue(
        "Payment provider",
        "[sim outcome=COMPLETE prs=1 duration=300s logs=4]",
        Some(&epic.id),
    )?;
    control
        .create_relation(&api.id, &ui.id, "blocks")
        .map_err(|e| anyhow::anyhow!("relating the sub-issues: {e:?}"))?;
    let session = control
        .delegate(&epic.id, None)
        .map_err(|e| anyhow::anyhow!("delegating the epic: {e:?}"))?;
    say(format!(
        "[{}] delegated: orchestration — {} ({} blocks {})",
        epic.identifier, epic.title, api.identifier, ui.identifier
    ));
    let finish = |ok: bool, observed: String| ScenarioResult {
        name: "orchestration",
        issue: epic.identifier.clone(),
        expected: "2 sub-issues side by side, the third after its blocker, one summary",
        observed,
        ok,
        seconds: started.elapsed().as_secs_f64(),
    };
    let deadline = Instant::now() + opts.timeout;
    let mut last_plan = String::new();
    loop {
        let Some(view) = control.session(&session) else {
            return Ok(finish(false, "the epic's session is gone".into()));
        };
        if let Some(plan) = view.plan.as_ref().and_then(|p| p.as_array()) {
            let line = plan
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        s["content"]
                            .as_str()
                            .unwrap_or_default()
                            .split(' ')
                            .next()
                            .unwrap_or_default(),
                        s["status"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            if line != last_plan {
                say(format!("[{}] plan        {line}", epic.identifier));
                last_plan = line;
            }
        }
        if let Some(summary) = bodies(&view, "response").next() {
            let runs = stack.codegen.control().runs();
            let run = |title: &str| runs.iter().find(|r| r.prompt.contains(title));
            let (Some(a), Some(u), Some(p)) =
                (run("Cart API"), run("Cart UI"), run("Payment provider"))
            else {
                return Ok(finish(
                    false,
                    format!("summary without every run: {summary}"),
                ));
            };
            let side_by_side = p.created_ms < a.created_ms + 300_000;
            let after = u.created_ms >= a.created_ms + 300_000;
            let ok = side_by_side && after && summary.contains("All 3 sub-issues");
            return Ok(finish(
                ok,
                format!(
                    "side by side: {side_by_side}; blocked one after its blocker: {after}; summary posted"
                ),
            ));
        }
        if let Some(e) = bodies(&view, "error").next() {
            return Ok(finish(false, format!("error: {e}")));
        }
        if Instant::now() > deadline {
            return Ok(finish(
                false,
                format!("timed out; session: {}", summary(&view)),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delegate(stack: &Stack, s: &mut Scenario) -> anyhow::Result<()> {
    let (issue_id, session) = stack.delegate_issue(s.title, s.description, s.labels)?;
    s.identifier = stack
        .linear
        .control()
        .issue(&issue_id)
        .map(|v| v.issue.identifier)
        .unwrap_or_default();
    s.issue_id = issue_id;
    s.session = session;
    s.started = Instant::now();
    Ok(())
}

fn bodies<'a>(view: &'a SessionView, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    view.activities
        .iter()
        .filter(move |a| a.kind() == kind)
        .map(|a| {
            a.content
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or_default()
        })
}

fn summary(view: &SessionView) -> String {
    view.activities
        .iter()
        .map(|a| a.kind().to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

fn result(s: &Scenario, ok: bool, observed: String) -> ScenarioResult {
    ScenarioResult {
        name: s.name,
        issue: s.identifier.clone(),
        expected: s.expected,
        observed,
        ok,
        seconds: s.started.elapsed().as_secs_f64(),
    }
}

/// Advances a scenario (sending the follow-up or the stop) and records its
/// result once it has ended.
fn check(
    stack: &Stack,
    s: &mut Scenario,
    view: &SessionView,
    budget_told: bool,
    say: &mut impl FnMut(String),
) {
    let responses: Vec<&str> = bodies(view, "response").collect();
    let errors: Vec<&str> = bodies(view, "error").collect();
    let control = stack.linear.control();
    let outcome = match s.name {
        "success with PR" => match (responses.first(), errors.first()) {
            (Some(r), _) => Some((r.contains("/pull/"), "response with PR link".to_string())),
            (None, Some(e)) => Some((false, format!("error: {e}"))),
            _ => None,
        },
        "failure" => match (errors.first(), responses.first()) {
            (Some(e), _) => Some((
                e.contains("FAILED") || e.contains("couldn't"),
                "error posted".to_string(),
            )),
            (None, Some(_)) => Some((false, "unexpected success".to_string())),
            _ => None,
        },
        "follow-up prompt" => {
            if responses.len() == 1 && !s.acted {
                s.acted = true;
                say(format!(
                    "[{}] user        replies: \"Please also add usage examples.\"",
                    s.identifier
                ));
                let _ = control.prompt(&s.session, "Please also add usage examples.", false);
            }
            if responses.len() >= 2 {
                let resumed = stack
                    .codegen
                    .control()
                    .runs()
                    .iter()
                    .any(|r| !r.follow_ups.is_empty());
                Some((
                    resumed,
                    format!("{} responses, run resumed: {resumed}", responses.len()),
                ))
            } else {
                errors.first().map(|e| (false, format!("error: {e}")))
            }
        }
        "stop" => {
            let has_run = view
                .external_urls
                .iter()
                .any(|u| u.url.contains("/agent/trace/"));
            if has_run && (budget_told || s.started.elapsed() > Duration::from_secs(30)) && !s.acted
            {
                s.acted = true;
                say(format!(
                    "[{}] user        sends the stop signal",
                    s.identifier
                ));
                let _ = control.prompt(&s.session, "stop", true);
            }
            responses.first().map(|r| {
                let cancelled = stack
                    .codegen
                    .control()
                    .runs()
                    .iter()
                    .any(|run| run.status.eq_ignore_ascii_case("CANCELLED"));
                (
                    r.contains("stopped") && cancelled,
                    format!("stopped; Codegen run cancelled: {cancelled}"),
                )
            })
        }
        "budget deferral" => {
            let told = bodies(view, "thought").any(|t| t.contains("daily budget"));
            match (responses.first(), errors.first()) {
                (Some(_), _) => Some((
                    told,
                    format!("told it waits: {told}; then ran to a response"),
                )),
                (None, Some(e)) => Some((false, format!("error: {e}"))),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some((ok, observed)) = outcome {
        s.done = Some(result(s, ok, observed));
    }
}

async fn wait_for(timeout: Duration, mut check: impl FnMut() -> Option<()>) {
    let end = Instant::now() + timeout;
    while check().is_none() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The summary table printed at the end.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<18} {:<8} {:<6} {:>6}  {}\n",
        "SCENARIO", "ISSUE", "RESULT", "SECS", "OBSERVED"
    ));
    for r in results {
        out.push_str(&format!(
            "{:<18} {:<8} {:<6} {:>6.1}  {}\n",
            r.name,
            r.issue,
            if r.ok { "ok" } else { "FAILED" },
            r.seconds,
            r.observed
        ));
    }
    out
}
