//! Finds the upstream contracts and docs in `../shared/` for tests.
//!
//! A user's plain clone has no `../shared`; tests that need it skip with a loud
//! message there. Under CI (`CI=true`) its absence is a failure instead.

use std::path::PathBuf;

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// Where `../shared` is expected, beside the workspace root; `CYRUS_SHARED_DIR`
/// overrides it.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("CYRUS_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared"),
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns the path of `relative` inside `../shared` when it exists.
///
/// When it is missing: under CI this panics (the test fails) naming where it
/// looked; elsewhere it prints a loud skip notice and returns `None`, and the
/// caller returns early.
pub fn locate(relative: &str) -> Option<PathBuf> {
    let path = shared_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "../shared/{relative} not found (looked at {}); set CYRUS_SHARED_DIR or place the shared folder beside the clone",
        path.display()
    );
    if in_ci() {
        panic!("{msg} — required under CI=true");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    None
}

/// Reads a file from `../shared` (see [`locate`]).
pub fn read(relative: &str) -> Option<String> {
    let path = locate(relative)?;
    Some(
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
}
