//! The wizard driven through a pseudo-terminal, as a person would.

use crate::operator::sim;
use crate::support::write;
use expectrl::Expect;
use std::time::Duration;

/// The prompts that read without echo.
const HIDDEN: [&str; 3] = [
    "Codegen API token",
    "Linear OAuth app client secret",
    "webhook signing secret",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_setup_asks_checks_and_maps_repositories() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let path = write(
        home.path(),
        "config.json",
        &format!(
            r#"{{"repositories": [{{"id": "web", "name": "web", "linearWorkspaceId": "org-1", "linearToken": "lin_x"}}],
                "codegen": {{"baseUrl": "{}"}}, "linear": {{"webhookSecret": "whsec_x"}}}}"#,
            sim.url()
        ),
    );
    let token = sim.token().to_owned();
    let home_path = home.path().to_owned();
    let transcript = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cyrus"));
        cmd.env_clear()
            .env("HOME", &home_path)
            .env("TERM", "dumb")
            .args(["codegen", "setup", "--config", &path]);
        let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
        p.set_expect_timeout(Some(Duration::from_secs(20)));
        let mut seen = String::new();
        let mut step = |p: &mut expectrl::session::OsSession, wait: &str, answer: &str| {
            let found = p
                .expect(wait)
                .unwrap_or_else(|e| panic!("waiting for {wait:?}: {e}\nso far:\n{seen}"));
            seen.push_str(&String::from_utf8_lossy(found.before()));
            seen.push_str(wait);
            if HIDDEN.contains(&wait) {
                // A hidden prompt prints its text, then turns echo off with
                // TCSAFLUSH, which discards input already waiting: an
                // answer sent before that is lost and the wizard waits
                // for ever. Answer once echo is off.
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while p.get_process().get_echo().unwrap() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "echo never went off at {wait:?}\nso far:\n{seen}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            p.send_line(answer).unwrap();
        };
        step(&mut p, "Codegen organization id", "42");
        step(&mut p, "Codegen API token", &token);
        step(&mut p, "Linear OAuth app client id", "cid-1");
        step(&mut p, "Linear OAuth app client secret", "csec-1");
        step(&mut p, "Linear OAuth redirect URL", "");
        step(&mut p, "webhook signing secret", "");
        step(&mut p, "Codegen repository for `web`", "");
        step(&mut p, "Spend limit per task", "2.5");
        step(&mut p, "Spend limit per UTC day", "");
        step(&mut p, "Default model", "claude-sonnet");
        let rest = p
            .expect(expectrl::Eof)
            .map(|f| String::from_utf8_lossy(f.before()).into_owned());
        seen.push_str(&rest.unwrap_or_default());
        let status = format!("{:?}", p.get_process_mut().wait().unwrap());
        (seen, status, path)
    })
    .await
    .unwrap();
    let (seen, status, path) = transcript;
    assert!(
        status.starts_with("Exited(") && status.ends_with(", 0)"),
        "{status}\n{seen}"
    );
    assert!(seen.contains("signed in as"), "{seen}");
    assert!(!seen.contains(sim.token()), "the token was echoed\n{seen}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["codegen"]["orgId"], 42, "{v}\n{seen}");
    assert_eq!(v["codegen"]["apiToken"], sim.token());
    assert_eq!(v["codegen"]["maxCostPerTask"], 2.5);
    assert_eq!(v["codegen"]["defaultModel"], "claude-sonnet");
    assert_eq!(v["repositories"][0]["linearToken"], "lin_x");
    assert_eq!(v["repositories"][0]["codegenRepoId"], 7, "{v}\n{seen}");
    assert_eq!(v["linear"]["oauth"]["clientId"], "cid-1", "{v}");
    assert_eq!(v["linear"]["oauth"]["clientSecret"], "csec-1");
    assert_eq!(
        v["linear"]["oauth"]["redirectUrl"],
        "http://127.0.0.1:8765/oauth/callback"
    );
    assert!(
        !seen.contains("csec-1"),
        "the client secret was echoed\n{seen}"
    );
    sim.shutdown().await;
}
