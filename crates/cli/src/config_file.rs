//! Writing configuration files: the raw JSON (so keys this version does not
//! know survive an edit) and the atomic, owner-only write. A config holds API
//! tokens, so it is never world-readable, not even for an instant: the
//! temporary file is created 0600 before anything is written to it.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a JSON object; fix or move it first: {message}", path.display())]
    NotAnObject { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} already exists; pass --force to overwrite it", path.display())]
    Exists { path: PathBuf },
}

/// Where a command that *writes* the configuration puts it: `--config`, else
/// `CYRUS_CONFIG`, else the first default location that exists, else
/// `~/.cyrus/config.json`.
pub fn target_path(flag: Option<&Path>, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let home = crate::config_loader::home_dir(env);
    let candidates = cyrus_core::config::config_candidates(flag, env, home.as_deref());
    if flag.is_some() || env.get("CYRUS_CONFIG").is_some_and(|v| !v.is_empty()) {
        return candidates.into_iter().next();
    }
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .or_else(|| home.map(|h| h.join(".cyrus").join("config.json")))
}

/// The file's JSON object, or an empty object when it does not exist yet.
pub fn read_object(path: &Path) -> Result<Map<String, Value>, ConfigFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(ConfigFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigFileError::NotAnObject {
            path: path.to_owned(),
            message: "the top level must be an object".to_owned(),
        }),
        Err(e) => Err(ConfigFileError::NotAnObject {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Writes `text` to `path` atomically (temporary file in the same directory,
/// fsync, rename) with mode 0600, creating the parent directory (0700).
/// With `overwrite == false` an existing file is an error.
pub fn write_atomic(path: &Path, text: &str, overwrite: bool) -> Result<(), ConfigFileError> {
    let err = |source| ConfigFileError::Write {
        path: path.to_owned(),
        source,
    };
    if !overwrite && path.exists() {
        return Err(ConfigFileError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        create_private_dir(&dir).map_err(err)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".to_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            file.write_all(b"\n")?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Pretty JSON for a config object.
pub fn to_text(object: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(object).expect("a JSON map always serializes")
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The object at `key`, created (or replaced, if it was not an object).
pub fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_is_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        write_atomic(&path, "{}", false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = write_atomic(&path, "{\"a\":1}", false);
        assert!(matches!(again, Err(ConfigFileError::Exists { .. })));
        write_atomic(&path, "{\"a\":1}", true).unwrap();
        assert_eq!(read_object(&path).unwrap()["a"], 1);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn missing_file_reads_as_empty_and_non_object_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_object(&dir.path().join("none.json"))
                .unwrap()
                .is_empty()
        );
        let path = dir.path().join("list.json");
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(
            read_object(&path),
            Err(ConfigFileError::NotAnObject { .. })
        ));
    }
}
