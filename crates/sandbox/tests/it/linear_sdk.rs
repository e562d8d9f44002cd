//! The official `@linear/sdk` works against the simulator unchanged.
//! Needs `node` and `crates/sandbox/tests/js/node_modules` (installed by
//! `.ci/install-test-tools`); skips loudly without them, fails under CI.

use std::path::PathBuf;

use cyrus_sandbox::linear::{LinearSim, LinearSimOptions, NewIssue, NewLabel, NewTeam};
use serde_json::Value;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn skip_or_fail(msg: &str) {
    if in_ci() {
        panic!("{msg} — required under CI=true");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
}

#[tokio::test]
async fn official_sdk_drives_the_simulator() {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js.join("node_modules/@linear/sdk/package.json").exists() {
        return skip_or_fail("@linear/sdk is not installed; run .ci/install-test-tools");
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip_or_fail("node is not on PATH");
    }
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let c = sim.control();
    let team = c
        .create_team(NewTeam {
            key: "ENG".into(),
            name: "Engineering".into(),
            ..NewTeam::default()
        })
        .unwrap();
    let bug = c
        .create_label(NewLabel {
            name: "Bug".into(),
            team_id: Some(team.id.clone()),
            ..NewLabel::default()
        })
        .unwrap();
    let issue = c
        .create_issue(NewIssue {
            title: "Login test is flaky".into(),
            label_ids: vec![bug.id],
            comments: vec![cyrus_sandbox::linear::NewComment {
                body: "Seen again".into(),
                ..Default::default()
            }],
            ..NewIssue::default()
        })
        .unwrap();
    let session = c.delegate(&issue.id, None).unwrap();

    let output = tokio::process::Command::new("node")
        .arg("sdk-check.mjs")
        .current_dir(&js)
        .env("LINEAR_URL", sim.url())
        .env("LINEAR_API_KEY", sim.api_key())
        .env("ISSUE_ID", &issue.identifier)
        .env("SESSION_ID", &session)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let out: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));

    assert_eq!(out["viewerId"], sim.agent_user_id(), "{out:#}");
    assert_eq!(out["viewerApp"], true);
    assert_eq!(out["identifier"], "ENG-1");
    assert_eq!(out["labels"], serde_json::json!(["Bug"]));
    assert_eq!(out["stateType"], "backlog");
    assert_eq!(out["teamKey"], "ENG");
    assert_eq!(out["stateNames"].as_array().unwrap().len(), 7);
    assert!(
        out["commentBodies"]
            .as_array()
            .unwrap()
            .contains(&"Seen again".into())
    );
    assert_eq!(out["activitySuccess"], true);
    assert_eq!(out["updateSuccess"], true);
    assert_eq!(out["newStateId"], out["startedStateId"]);
    assert_eq!(out["commentSuccess"], true);
    assert_eq!(out["sessionStatus"], "active");
    assert_eq!(out["activityCount"], 1);
    assert_eq!(out["sessionUpdateSuccess"], true);

    // What the SDK did is visible through the control API.
    let view = c.session(&session).unwrap();
    assert_eq!(view.activities[0].content["body"], "Looking at the issue");
    assert_eq!(
        view.external_urls[0].url,
        "https://codegen.com/agent/trace/1"
    );
    assert_eq!(c.issue(&issue.id).unwrap().state.state_type, "started");
    sim.shutdown().await;
}
