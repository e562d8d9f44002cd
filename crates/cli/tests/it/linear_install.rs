//! The whole first run with the real binary against the simulators: `cyrus
//! linear connect` (authorize URL → the admin's consent → the callback on
//! its loopback listener → code exchange → `viewer`/`organization`), then
//! `cyrus start`, and a delegated issue answered with the stored token — no
//! Linear token or id in the configuration file.

use cyrus_stack::{Simulators, StackOptions};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cyrus(home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cyrus"));
    cmd.env_clear()
        .env("HOME", home)
        .env("RUST_LOG", "info,sqlx=warn")
        .args(args);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_then_start_answers_a_delegation_with_the_stored_token() {
    let home = tempfile::tempdir().unwrap();
    let opts = StackOptions::default().time_scale(20.0).oauth();
    let sims = Simulators::start(&opts).await.unwrap();
    let worker_port = free_port();
    let callback_port = free_port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{worker_port}").parse().unwrap();
    let db = home.path().join("state").join("cyrus.db");
    let mut config = sims.config(&format!("sqlite://{}", db.display()), listen, &opts);
    config["linear"]["oauth"]["redirectUrl"] =
        serde_json::json!(format!("http://127.0.0.1:{callback_port}/oauth/callback"));
    let config_path = home.path().join("cyrus.json");
    let text = serde_json::to_string_pretty(&config).unwrap();
    std::fs::write(&config_path, &text).unwrap();
    for learned in [
        sims.linear.organization_id(),
        sims.linear.agent_user_id(),
        sims.linear.api_key(),
    ] {
        assert!(!text.contains(learned), "{learned} is in the configuration");
    }
    let config_arg = config_path.to_string_lossy().into_owned();

    // 1. `cyrus linear connect`: prints the URL, then waits on its listener.
    let mut connect = Running(
        cyrus(home.path(), &["linear", "connect", "--config", &config_arg])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(connect.0.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(
        url.contains("/oauth/authorize?"),
        "the first line is the URL: {url}"
    );
    assert!(url.contains("actor=app"), "{url}");

    // 2. The admin approves in the browser: the consent redirects to the
    // loopback callback, whose page says what happened.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = http.get(&url).send().await.unwrap();
    let callback = consent
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("the consent redirects")
        .to_str()
        .unwrap()
        .to_string();
    assert!(callback.starts_with(&format!("http://127.0.0.1:{callback_port}/oauth/callback?")));
    let page = http.get(&callback).send().await.unwrap();
    assert!(page.status().is_success(), "{}", page.text().await.unwrap());

    let status = connect.0.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    connect
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "connect failed\n{rest}\n{stderr}");
    assert!(
        rest.contains("Connected Linear workspace") && rest.contains(sims.linear.agent_user_id()),
        "it says what was connected:\n{rest}"
    );

    // 3. `cyrus start` with the same configuration serves the workspace.
    let worker_log = home.path().join("worker.log");
    let mut worker = Running(
        cyrus(home.path(), &["start", "--config", &config_arg])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&worker_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let health = format!("http://127.0.0.1:{worker_port}/healthz");
    let started = Instant::now();
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if let Some(exit) = worker.0.try_wait().unwrap() {
            panic!(
                "cyrus start exited with {exit}\n{}",
                std::fs::read_to_string(&worker_log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sims.send_webhooks_to(listen);
    let (_issue, session_id) = sims
        .delegate_issue(
            "Add a health endpoint",
            "[sim outcome=COMPLETE prs=1 duration=20s logs=4]",
            &["Feature"],
        )
        .unwrap();
    let started = Instant::now();
    let view = loop {
        let view = sims.linear.control().session(&session_id).unwrap();
        if view.activities.iter().any(|a| a.kind() == "response") {
            break view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer: {view:#?}\n{}",
            std::fs::read_to_string(&worker_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view.activities.first().map(|a| a.kind()), Some("thought"));
    assert!(
        view.activities
            .iter()
            .all(|a| a.user_id == sims.linear.agent_user_id()),
        "{view:#?}"
    );
    // A graceful stop, then: no token in anything it printed.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(worker.0.id().to_string())
        .status();
    let stopped = Instant::now();
    while worker.0.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_secs(25) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(worker);
    let store_url = format!("sqlite://{}", db.display());
    let key_file = cyrus_store::SecretKey::default_file_for(&store_url).unwrap();
    let (keys, _) = cyrus_store::Keyring::from_env_or_file(&key_file).unwrap();
    let store = cyrus_store::Store::connect(&store_url)
        .await
        .unwrap()
        .with_secret_keys(keys);
    let installation = store
        .get_installation(sims.linear.organization_id())
        .await
        .unwrap()
        .expect("the installation is stored");
    let log = std::fs::read_to_string(&worker_log).unwrap_or_default();
    use secrecy::ExposeSecret as _;
    let access = installation.tokens.access_token.expose_secret().to_string();
    for printed in [&log, &rest, &stderr] {
        assert!(!printed.contains(&access), "the access token was printed");
        if let Some(refresh) = &installation.tokens.refresh_token {
            assert!(
                !printed.contains(refresh.expose_secret()),
                "the refresh token was printed"
            );
        }
    }
    store.close().await;
    sims.shutdown().await;
}
