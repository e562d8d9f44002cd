//! Finds, reads and parses the configuration file: the I/O around the pure
//! parser in `cyrus_core::config`. Every command that needs a configuration
//! loads it through [`load`], so they all look in the same places and fail
//! the same way.

use cyrus_core::config::{self, ConfigError, Loaded};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why no configuration could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "no configuration file found; looked in:\n{}\nCreate one (see docs/configuration.md), pass --config PATH or set CYRUS_CONFIG.",
        list(searched)
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "  (nowhere: neither --config, CYRUS_CONFIG nor HOME is set)".to_owned();
    }
    paths
        .iter()
        .map(|p| format!("  - {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The process environment as the pure parser wants it. Variables that are
/// not valid UTF-8 cannot be Cyrus settings and are skipped.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

pub fn home_dir(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    env.get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// A loaded configuration and the file it came from.
pub struct Found {
    pub path: PathBuf,
    pub searched: Vec<PathBuf>,
    pub loaded: Loaded,
}

/// The files `load` tries, in order (see `cyrus_core::config::config_candidates`).
pub fn candidates(flag: Option<&Path>, env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    config::config_candidates(flag, env, home_dir(env).as_deref())
}

/// Loads the configuration: `flag` (from `--config`), else `CYRUS_CONFIG`,
/// else the default locations. `~` in `store.url` is expanded here.
pub fn load(flag: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Found, LoadError> {
    let searched = candidates(flag, env);
    let Some(path) = searched.iter().find(|p| p.exists()).cloned() else {
        return Err(LoadError::NotFound { searched });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let mut loaded = config::parse(&text, env).map_err(|source| LoadError::Config {
        path: path.clone(),
        source,
    })?;
    if let Some(home) = home_dir(env) {
        loaded.config.store.url = config::expand_tilde(&loaded.config.store.url, &home);
    }
    Ok(Found {
        path,
        searched,
        loaded,
    })
}
