//! `cyrus start`: runs the worker (webhook endpoint, scheduler, poller,
//! outbox) until SIGTERM/SIGINT, then shuts down gracefully.

use crate::config_loader;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// Configuration file (default: CYRUS_CONFIG, then the standard places).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Structured logs on stderr; `RUST_LOG` overrides the default level.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn run(args: StartArgs) -> ExitCode {
    init_logging(args.log_format);
    let env = config_loader::process_env();
    let found = match config_loader::load(args.config.as_deref(), &env) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    for warning in &found.loaded.warnings {
        tracing::warn!("config: {warning}");
    }
    let config = found.loaded.config;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: cyrus_core::config::Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let url = &config.store.url;
    if let Some(path) = url.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut store = cyrus_store::Store::connect(url)
        .await
        .with_context(|| format!("opening the store at {}", config.store.redacted_url()))?;
    if let Some(keys) = secret_keys(&config)? {
        store = store.with_secret_keys(keys);
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {} (server.listen)", config.server.listen))?;
    let worker = cyrus_edge_worker::Worker::start(config, store, listener).await?;
    println!("cyrus: listening on http://{}", worker.addr());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight work");
    worker.shutdown().await;
    Ok(())
}

/// The key that decrypts the stored Linear tokens: needed (and, beside a
/// SQLite database, created) when the OAuth app is configured; otherwise
/// used if one exists, so a deployment of static tokens gets no key file.
fn secret_keys(
    config: &cyrus_core::config::Config,
) -> anyhow::Result<Option<cyrus_store::Keyring>> {
    let url = &config.store.url;
    let env_set = std::env::var(cyrus_store::SECRET_KEY_ENV).is_ok_and(|v| !v.trim().is_empty());
    let file_exists = cyrus_store::SecretKey::default_file_for(url).is_some_and(|f| f.exists());
    if config.linear.oauth.is_none() && !env_set && !file_exists {
        return Ok(None);
    }
    let (keys, source) = cyrus_edge_worker::install::keyring_for(url)?;
    if let cyrus_store::KeySource::File {
        path,
        created: true,
    } = &source
    {
        tracing::warn!(
            "created the secret key {} (mode 0600); it encrypts the Linear tokens in the store: back it up with the database",
            path.display()
        );
    }
    Ok(Some(keys))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
