use crate::operator::{config, fill, run, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_wrong_token_and_exits_1() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, "not-the-token");
    let path = path.to_str().unwrap().to_owned();
    fill(&store_url, &[]).await;
    let out = run(home.path(), &["doctor", "--config", &path], &[]).await;
    out.assert_code(1)
        .assert_stdout_contains("codegen.apiToken")
        .assert_stdout_contains("✓ store")
        .assert_stdout_contains("✗ codegen")
        .assert_nowhere("not-the-token");

    let json = run(home.path(), &["doctor", "--config", &path, "--json"], &[]).await;
    json.assert_code(1);
    let v = json.json();
    assert_eq!(v["ok"], false);
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check\n{json}"))
    };
    assert_eq!(check("config")["status"], "pass");
    assert_eq!(check("store")["status"], "pass");
    assert_eq!(check("listen")["status"], "pass");
    assert_eq!(check("codegen")["status"], "fail");
    assert!(
        check("codegen")["fix"]
            .as_str()
            .unwrap()
            .contains("codegen.apiToken")
    );
    assert_eq!(check("clock")["status"], "pass", "{json}");
    assert_eq!(check("webhook")["status"], "pass");
    // Linear points at a closed port: unreachable is a failure with a fix.
    assert_eq!(check("linear:org-1")["status"], "fail");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_codegen_with_the_right_token_and_reports_a_busy_port() {
    let sim = sim().await;
    let home = tempfile::tempdir().unwrap();
    let (path, store_url) = config(home.path(), &sim, sim.token());
    fill(&store_url, &[]).await;
    // Point `server.listen` at a port something else holds.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["server"]["listen"] = squatter.local_addr().unwrap().to_string().into();
    std::fs::write(&path, v.to_string()).unwrap();
    let out = run(
        home.path(),
        &["doctor", "--config", path.to_str().unwrap(), "--json"],
        &[],
    )
    .await;
    out.assert_code(1);
    let report = out.json();
    let status = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(status("codegen"), "pass", "{out}");
    assert_eq!(status("listen"), "fail", "{out}");
    drop(squatter);
    sim.shutdown().await;
}

#[test]
fn doctor_without_config_fails_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    crate::support::cyrus(home.path(), &["doctor"], &[])
        .assert_code(1)
        .assert_stdout_contains("✗ config")
        .assert_stdout_contains("cyrus codegen setup");
}
