//! Read-only probes of the things around the CLI: a running worker (its
//! `/healthz` and `/metrics`), the store, and the loaded configuration.
//! Shared by `status`, `stats` and `doctor`, so they agree on what "up"
//! means.

use crate::config_loader::{self, Found, LoadError};
use cyrus_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A worker answers its health check within this, or counts as down.
const WORKER_TIMEOUT: Duration = Duration::from_secs(2);

/// Loads the configuration, printing the error for the user when it fails.
pub fn load_config(flag: Option<&Path>) -> Result<Found, LoadError> {
    let env = config_loader::process_env();
    config_loader::load(flag, &env)
}

/// The configuration and a runtime for a read-only command (`status`,
/// `stats`), or the exit code to return, after telling the user why.
pub fn config_and_runtime(
    flag: Option<&Path>,
) -> Result<(Found, tokio::runtime::Runtime), std::process::ExitCode> {
    let found = load_config(flag).map_err(|e| {
        eprintln!("error: {e}");
        crate::ui::exit(crate::ui::EXIT_USAGE)
    })?;
    let runtime = crate::ui::runtime().map_err(|e| {
        eprintln!("error: {e}");
        crate::ui::exit(crate::ui::EXIT_FAILURE)
    })?;
    Ok((found, runtime))
}

/// What `/healthz` of a running worker says.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerHealth {
    pub url: String,
    pub running: bool,
    /// The worker's lease owner id (host/pid), when it runs.
    pub owner: Option<String>,
    pub version: Option<String>,
    pub started_at_ms: Option<i64>,
    /// Why it is considered not running (connection refused, not Cyrus, …).
    pub error: Option<String>,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WORKER_TIMEOUT)
        .build()
        .expect("a plain HTTP client always builds")
}

/// GET `http://<listen>/healthz`. A 0.0.0.0/[::] listen address is probed on
/// loopback.
pub async fn worker_health(listen: SocketAddr) -> WorkerHealth {
    let base = base_url(listen);
    let url = format!("{base}/healthz");
    let mut health = WorkerHealth {
        url: base,
        running: false,
        owner: None,
        version: None,
        started_at_ms: None,
        error: None,
    };
    let response = match http().get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            health.error = Some(if e.is_connect() {
                "nothing is listening".to_owned()
            } else {
                e.to_string()
            });
            return health;
        }
    };
    if !response.status().is_success() {
        health.error = Some(format!("/healthz answered HTTP {}", response.status()));
        return health;
    }
    match response.json::<serde_json::Value>().await {
        Ok(v) if v.get("status").and_then(|s| s.as_str()) == Some("ok") => {
            health.running = true;
            health.owner = v.get("owner").and_then(|s| s.as_str()).map(str::to_owned);
            health.version = v.get("version").and_then(|s| s.as_str()).map(str::to_owned);
            health.started_at_ms = v.get("started_at_ms").and_then(|s| s.as_i64());
        }
        _ => health.error = Some("something answers but it is not a Cyrus worker".to_owned()),
    }
    health
}

/// The worker's Prometheus text, if it serves one.
pub async fn worker_metrics(listen: SocketAddr) -> Option<String> {
    let url = format!("{}/metrics", base_url(listen));
    let response = http().get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

fn base_url(listen: SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

/// Rate-limit figures read from a worker's `/metrics`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateFigures {
    /// `"worker_metrics"` or `"unknown"` (no worker up).
    pub source: &'static str,
    /// Remaining calls per endpoint class in the current window, when the
    /// worker exports `codegen_rate_headroom{class=…}`.
    pub headroom: BTreeMap<String, f64>,
    /// Codegen answers with HTTP 429 since the worker started.
    pub rate_limited_responses: Option<f64>,
    /// Times our own limiter made a call wait, since the worker started.
    pub limiter_waits: Option<f64>,
}

/// Extracts the rate-limit figures from Prometheus text.
pub fn rate_figures(metrics: Option<&str>) -> RateFigures {
    let Some(text) = metrics else {
        return RateFigures {
            source: "unknown",
            ..RateFigures::default()
        };
    };
    let mut out = RateFigures {
        source: "worker_metrics",
        ..RateFigures::default()
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        match name {
            "codegen_rate_headroom" => {
                if let Some(class) = label(labels, "class") {
                    out.headroom.insert(class, value);
                }
            }
            "codegen_api_calls_total" if label(labels, "status").as_deref() == Some("429") => {
                *out.rate_limited_responses.get_or_insert(0.0) += value;
            }
            "codegen_rate_limit_wait_seconds_count" => {
                *out.limiter_waits.get_or_insert(0.0) += value;
            }
            _ => {}
        }
    }
    out
}

fn label(labels: &str, key: &str) -> Option<String> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Opens the store without creating or migrating anything: an operator
/// command must not leave an empty database behind, nor change a schema a
/// running worker owns.
pub async fn open_store(url: &str) -> Result<Store, String> {
    if let Some(path) = sqlite_path(url)
        && !Path::new(&path).exists()
    {
        return Err(format!(
            "the SQLite database {path} does not exist yet; `cyrus start` creates it"
        ));
    }
    let store = Store::connect_without_migrating(url)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    store
        .ping()
        .await
        .map_err(|e| format!("the store does not answer: {e}"))?;
    match store.migrations_applied().await {
        Ok(true) => Ok(store),
        Ok(false) => Err(
            "the store's schema is not up to date; start the worker (`cyrus start`) to migrate it"
                .to_owned(),
        ),
        Err(e) => Err(format!("cannot read the store's migrations: {e}")),
    }
}

/// True when `url` is a SQLite database whose file does not exist yet
/// (`cyrus start` or `cyrus linear connect` creates it).
pub fn store_missing(url: &str) -> bool {
    sqlite_path(url).is_some_and(|p| !Path::new(&p).exists())
}

/// The file of a `sqlite://PATH[?…]` URL; `None` for memory and other backends.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_owned())
}

/// Runs `read` against the store at `url` (opened without migrating and
/// closed afterwards) on `runtime`. A failure — the store cannot be opened,
/// or `read` fails — is printed and becomes exit 1, as every reporting
/// command does.
pub fn read_store<T, E, F, Fut>(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    read: F,
) -> Result<T, std::process::ExitCode>
where
    E: std::fmt::Display,
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let result = runtime.block_on(async {
        let store = open_store(url).await?;
        let out = read(store.clone()).await.map_err(|e| e.to_string());
        store.close().await;
        out
    });
    result.map_err(|e| {
        eprintln!("error: {e}");
        crate::ui::exit(crate::ui::EXIT_FAILURE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_figures_from_prometheus_text() {
        let text = "# TYPE codegen_api_calls_total counter\n\
            codegen_api_calls_total{endpoint=\"get_run\",status=\"200\"} 40\n\
            codegen_api_calls_total{endpoint=\"get_run\",status=\"429\"} 2\n\
            codegen_api_calls_total{endpoint=\"create_run\",status=\"429\"} 1\n\
            codegen_rate_headroom{class=\"create\"} 7\n\
            codegen_rate_limit_wait_seconds_count{class=\"read\"} 3\n";
        let f = rate_figures(Some(text));
        assert_eq!(f.source, "worker_metrics");
        assert_eq!(f.rate_limited_responses, Some(3.0));
        assert_eq!(f.limiter_waits, Some(3.0));
        assert_eq!(f.headroom.get("create"), Some(&7.0));
        assert_eq!(rate_figures(None).source, "unknown");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db").as_deref(),
            Some("/tmp/a.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db?mode=rwc").as_deref(),
            Some("/tmp/a.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[test]
    fn unspecified_listen_is_probed_on_loopback() {
        assert_eq!(
            base_url("0.0.0.0:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            base_url("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
    }
}
