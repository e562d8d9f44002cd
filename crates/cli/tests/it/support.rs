//! Runs the real binary in a clean environment (only what a test sets) and
//! shows everything it printed when an assertion fails.

use std::path::Path;
use std::process::Command;

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    args: Vec<String>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cyrus {:?} exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self}");
        self
    }

    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    pub fn assert_nowhere(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "output contains {needle:?}\n{self}"
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

/// Runs `cyrus args…` with HOME set to `home` and only the given variables.
pub fn cyrus(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cyrus"));
    cmd.env_clear().env("HOME", home).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cyrus");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

pub const GOOD: &str = r#"{
  "repositories": [{
    "id": "main-repo", "name": "api", "repositoryPath": "/path/to/repo",
    "linearToken": "lin_api_SECRET1", "linearWorkspaceId": "org-1", "codegenRepoId": 42,
    "teamKeys": ["ENG"], "routingLabels": ["backend"]
  }],
  "codegen": {
    "orgId": "123", "apiToken": "codegen_SECRET2",
    "maxCostPerTask": 2.0, "maxCostPerDay": 100.0,
    "defaultModel": "claude-3-5-sonnet",
    "pricing": {"claude-3-5-sonnet": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}}
  },
  "linear": {"webhookSecret": "whsec_SECRET3"},
  "server": {"listen": "127.0.0.1:3456", "dashboardToken": "dash_SECRET4"},
  "store": {"url": "sqlite://~/.cyrus/cyrus.db"}
}"#;

pub const SECRETS: [&str; 4] = ["SECRET1", "SECRET2", "SECRET3", "SECRET4"];

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dir");
    }
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}
