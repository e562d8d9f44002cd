//! `cyrus linear connect`, `list` and `reencrypt`: installing the Linear
//! OAuth app in a workspace (the flow itself is `cyrus_edge_worker::install`,
//! shared with the worker's `/oauth/callback`) and showing what is installed.
//!
//! Exit codes: 0 connected (or listed); 1 the connection failed; 2 the
//! configuration cannot be used.

use crate::probes;
use crate::ui::{self, EXIT_FAILURE, EXIT_USAGE, Style};
use clap::{Args, Subcommand};
use cyrus_core::config::{Config, Warning};
use cyrus_edge_worker::install::{self, Connected, InstallError, OAuthApp};
use cyrus_store::{InstallationInfo, InstallationStatus, KeySource, Store};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum LinearCommand {
    /// Install the Linear OAuth app in a workspace (actor=app) and store the installation.
    Connect(ConnectArgs),
    /// List connected Linear workspaces with their status (no tokens).
    List(ListArgs),
    /// After a key rotation: rewrite every stored token under CYRUS_SECRET_KEY
    /// (values sealed with CYRUS_SECRET_KEY_PREVIOUS are read with it).
    Reencrypt(ReencryptArgs),
}

#[derive(Debug, Args)]
pub struct ReencryptArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Connect a further workspace (forces Linear's consent screen so you can pick it).
    #[arg(long)]
    add: bool,
    /// Print only the authorize URL and exit; finish later with --code and --state.
    #[arg(long, conflicts_with_all = ["code", "client_credentials"])]
    print_url: bool,
    /// The `code` from the callback URL (with --state), to finish without a listener.
    #[arg(long, requires = "state", value_name = "CODE")]
    code: Option<String>,
    /// The `state` from the callback URL (with --code).
    #[arg(long, requires = "code", value_name = "STATE")]
    state: Option<String>,
    /// Use the client_credentials grant instead: the app's own workspace only,
    /// a 30-day app token and no browser (enable the grant on the app first).
    #[arg(long, conflicts_with_all = ["code", "add"])]
    client_credentials: bool,
    /// How long to wait for the callback.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Configuration file (default: $CYRUS_CONFIG, then the default locations).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: LinearCommand) -> ExitCode {
    match cmd {
        LinearCommand::Connect(args) => connect(args),
        LinearCommand::List(args) => list(args),
        LinearCommand::Reencrypt(args) => reencrypt(args),
    }
}

fn reencrypt(args: ReencryptArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = found.loaded.config;
    if probes::store_missing(&config.store.url) {
        println!("No store yet: nothing to re-encrypt.");
        return ExitCode::SUCCESS;
    }
    let result = runtime.block_on(async {
        let store = open_store(&config).await?;
        let rewritten = store
            .reencrypt_installations()
            .await
            .map_err(|e| ConnectError::Other(format!("re-encrypting failed: {e}")));
        store.close().await;
        rewritten
    });
    match result {
        Ok(n) => {
            println!(
                "Re-encrypted {n} value(s) under the current key. Once every replica runs with it, CYRUS_SECRET_KEY_PREVIOUS can be removed."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ui::exit(EXIT_FAILURE)
        }
    }
}

fn now_ms() -> i64 {
    cyrus_store::millis(chrono::Utc::now())
}

fn connect(args: ConnectArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = found.loaded.config;
    let app = match OAuthApp::from_config(&config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_USAGE);
        }
    };
    let api_url = match url::Url::parse(&config.linear.api_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "error: linear.apiUrl `{}` is not a URL ({e}); fix it or CYRUS_LINEAR_API_URL",
                config.linear.api_url
            );
            return ui::exit(EXIT_USAGE);
        }
    };
    let s = Style::detect();
    let result = runtime.block_on(async {
        let store = open_store(&config).await?;
        let outcome = if args.client_credentials {
            install::client_credentials(&store, &app, &api_url, now_ms())
                .await
                .map(Some)
                .map_err(ConnectError::from)
        } else if let (Some(code), Some(state)) = (&args.code, &args.state) {
            install::complete(&store, &app, &api_url, code, state, now_ms())
                .await
                .map(Some)
                .map_err(ConnectError::from)
        } else {
            authorize(&store, &app, &api_url, &config, &args).await
        };
        store.close().await;
        outcome
    });
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(connected)) => {
            print_connected(&connected, s);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{} {e}", s.fail());
            ui::exit(EXIT_FAILURE)
        }
    }
}

/// Opens (creating if need be) the store with the keys that encrypt tokens.
/// Creating is fine here: the first connect usually precedes `cyrus start`.
async fn open_store(config: &Config) -> Result<Store, ConnectError> {
    let url = &config.store.url;
    if let Some(path) = url.strip_prefix("sqlite://")
        && let Some(dir) = Path::new(path.split('?').next().unwrap_or(path)).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            ConnectError::Other(format!(
                "cannot create {} for the store: {e}; fix store.url or the directory's permissions",
                dir.display()
            ))
        })?;
    }
    let (keys, source) = install::keyring_for(url)?;
    if let KeySource::File {
        path,
        created: true,
    } = &source
    {
        eprintln!(
            "Created the secret key {} (mode 0600). It encrypts the Linear tokens in the store: back it up with the database; without it the workspaces must be connected again.",
            path.display()
        );
    }
    let store = Store::connect(url).await.map_err(|e| {
        ConnectError::Other(format!(
            "cannot open the store at {}: {e}; check store.url (or CYRUS_STORE_URL)",
            config.store.redacted_url()
        ))
    })?;
    Ok(store.with_secret_keys(keys))
}

/// Why `connect` failed: the install flow's own errors, or the CLI's.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("{0}")]
    Install(#[from] InstallError),
    #[error("{0}")]
    Other(String),
}

/// Prints the authorize URL, then waits for the callback: through a running
/// worker (the redirect URL is its `publicUrl`), or on a loopback listener
/// of its own. `Ok(None)` with `--print-url`.
async fn authorize(
    store: &Store,
    app: &OAuthApp,
    api_url: &url::Url,
    config: &Config,
    args: &ConnectArgs,
) -> Result<Option<Connected>, ConnectError> {
    let redirect = url::Url::parse(app.redirect_url()).map_err(|e| {
        ConnectError::Other(format!(
            "linear.oauth.redirectUrl `{}` is not a URL ({e})",
            app.redirect_url()
        ))
    })?;
    let started = now_ms();
    let url = install::begin(store, app, args.add, started).await?;
    if args.print_url {
        println!("{url}");
        return Ok(None);
    }
    let via_worker = match &config.server.public_url {
        Some(public) if app.redirect_url().starts_with(public.trim_end_matches('/')) => {
            probes::worker_health(config.server.listen).await.running
        }
        _ => false,
    };
    let loopback = if via_worker {
        None
    } else {
        Some(bind_loopback(&redirect, config).await?)
    };
    eprintln!("Open this link as a Linear workspace admin and approve Cyrus:\n");
    println!("{url}");
    eprintln!();
    offer_to_open(&url);
    match loopback {
        None => {
            eprintln!(
                "Waiting for the running worker to receive the callback at {} (up to {})…",
                app.redirect_url(),
                humantime::format_duration(args.timeout)
            );
            wait_for_installation(store, started, args.timeout)
                .await
                .map(Some)
        }
        Some(listener) => {
            eprintln!(
                "Waiting for the callback on {} (up to {})…",
                app.redirect_url(),
                humantime::format_duration(args.timeout)
            );
            let path = redirect.path().to_owned();
            let outcome =
                loopback::receive(listener, &path, store, app, api_url, args.timeout).await?;
            outcome.map(Some).map_err(ConnectError::from)
        }
    }
}

/// Binds the redirect URL's loopback address, or says why it cannot be used.
async fn bind_loopback(
    redirect: &url::Url,
    config: &Config,
) -> Result<tokio::net::TcpListener, ConnectError> {
    let host = redirect.host_str().unwrap_or("");
    let is_loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
    if !is_loopback || redirect.scheme() != "http" {
        return Err(ConnectError::Other(format!(
            "no worker is receiving {redirect}: the redirect URL is not served by a running worker at server.publicUrl ({}) and is not a loopback http://127.0.0.1:PORT/oauth/callback this command could listen on. Start the worker (`cyrus start`) and run this again, or finish by hand: `cyrus linear connect --print-url`, open it, then `cyrus linear connect --code CODE --state STATE` with the values from the address the browser was sent to",
            config.server.public_url.as_deref().unwrap_or("not set")
        )));
    }
    let port = redirect.port().unwrap_or(80);
    let addr = if host == "localhost" || host == "127.0.0.1" {
        format!("127.0.0.1:{port}")
    } else {
        format!("[::1]:{port}")
    };
    tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        ConnectError::Other(format!(
            "cannot listen on {addr} for the callback ({e}); stop what uses that port, or register another loopback redirect URL on the app and set linear.oauth.redirectUrl to it"
        ))
    })
}

/// Polls the store until an installation is (re)connected after `since`.
async fn wait_for_installation(
    store: &Store,
    since: i64,
    timeout: Duration,
) -> Result<Connected, ConnectError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let infos = store
            .list_installation_infos()
            .await
            .map_err(InstallError::from)?;
        if let Some(i) = infos.into_iter().find(|i| i.installed_at >= since) {
            return Ok(Connected {
                workspace_name: i.workspace_name,
                url_key: i.url_key,
                workspace_id: i.workspace_id,
                app_user_name: i.app_user_name,
                app_user_id: i.app_user_id,
                scopes: i.scopes,
                expires_at: i.access_expires_at,
                grant: i.grant,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectError::Other(format!(
                "no workspace was connected within {}. If the browser showed an error, it says what to do; otherwise check that the worker runs (`cyrus status`) and run `cyrus linear connect` again",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// On a desktop, with a person at the terminal, offers to open the URL.
fn offer_to_open(url: &url::Url) {
    let desktop = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty());
    if !desktop || !ui::interactive_terminal() {
        return;
    }
    let open = dialoguer::Confirm::new()
        .with_prompt("Open it in your browser?")
        .default(true)
        .interact()
        .unwrap_or(false);
    if !open {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url.as_str())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("Could not run {opener} ({e}); open the link by hand.");
    }
}

fn print_connected(c: &Connected, s: Style) {
    println!(
        "{} Connected Linear workspace {} (linear.app/{}, id {})",
        s.ok(),
        s.bold(&c.workspace_name),
        c.url_key,
        c.workspace_id
    );
    println!("  agent:   {} (user {})", c.app_user_name, c.app_user_id);
    println!("  scopes:  {}", c.scopes.join(", "));
    let expiry = chrono::DateTime::from_timestamp_millis(c.expires_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let renewal = match c.grant {
        cyrus_store::GrantKind::AuthorizationCode => "the worker refreshes it before then",
        cyrus_store::GrantKind::ClientCredentials => {
            "no refresh token (client credentials): the worker requests a new one before then"
        }
    };
    println!("  token:   expires {expiry}; {renewal}");
    println!(
        "Delegate an issue to {} in Linear to try it.",
        c.app_user_name
    );
}

/// The loopback listener: serves one callback, then stops.
mod loopback {
    use super::*;
    use axum::extract::{Query, State};
    use axum::response::Html;
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::sync::{Mutex, mpsc};

    struct Shared {
        store: Store,
        app: OAuthApp,
        api_url: url::Url,
        done: mpsc::Sender<Result<Connected, InstallError>>,
        /// One callback at a time: a double-submitted callback waits for the
        /// first and is then told the state was already used.
        busy: Mutex<()>,
    }

    pub(super) async fn receive(
        listener: tokio::net::TcpListener,
        path: &str,
        store: &Store,
        app: &OAuthApp,
        api_url: &url::Url,
        timeout: Duration,
    ) -> Result<Result<Connected, InstallError>, ConnectError> {
        let (done, mut results) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            store: store.clone(),
            app: app.clone(),
            api_url: api_url.clone(),
            done,
            busy: Mutex::new(()),
        });
        let router = axum::Router::new()
            .route(path, axum::routing::get(callback))
            .with_state(shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let server = tokio::spawn(server.into_future());
        let outcome = tokio::time::timeout(timeout, results.recv()).await;
        let _ = stop.send(());
        let _ = server.await;
        match outcome {
            Ok(Some(result)) => Ok(result),
            Ok(None) => Err(ConnectError::Other("the callback listener stopped".into())),
            Err(_) => Err(ConnectError::Other(format!(
                "no callback arrived within {}. Run `cyrus linear connect` again and approve in the browser; if the browser could not reach {path}, check that linear.oauth.redirectUrl is the redirect URL registered on the app",
                humantime::format_duration(timeout)
            ))),
        }
    }

    async fn callback(
        State(shared): State<Arc<Shared>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Html<String> {
        let _one = shared.busy.lock().await;
        let result = match (q.get("error"), q.get("code"), q.get("state")) {
            (Some(error), _, _) => Err(install::callback_error(
                error,
                q.get("error_description").map(String::as_str),
            )),
            (None, Some(code), Some(state)) => {
                install::complete(
                    &shared.store,
                    &shared.app,
                    &shared.api_url,
                    code,
                    state,
                    super::now_ms(),
                )
                .await
            }
            _ => Err(install::callback_error(
                "invalid_request",
                Some("the callback carries neither a code and state nor an error"),
            )),
        };
        let page = install::page(&result);
        // A callback for another attempt (unknown state) does not end this
        // one; anything else does.
        if !matches!(result, Err(InstallError::UnknownState)) {
            let _ = shared.done.try_send(result);
        }
        Html(page)
    }
}

// ------------------------------------------------------------------ list

/// One installation as `list`, `status` and `doctor` show it (no tokens).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationReport {
    pub workspace_id: String,
    pub workspace_name: String,
    pub url_key: String,
    pub agent_user_id: String,
    pub agent_name: String,
    /// `active`, `needs_reconnect` or `revoked`.
    pub status: String,
    pub status_reason: Option<String>,
    /// `authorization_code` or `client_credentials`.
    pub grant: String,
    pub scopes: Vec<String>,
    pub access_expires_at_ms: i64,
    pub installed_at_ms: i64,
}

impl From<&InstallationInfo> for InstallationReport {
    fn from(i: &InstallationInfo) -> Self {
        InstallationReport {
            workspace_id: i.workspace_id.clone(),
            workspace_name: i.workspace_name.clone(),
            url_key: i.url_key.clone(),
            agent_user_id: i.app_user_id.clone(),
            agent_name: i.app_user_name.clone(),
            status: i.status.to_string(),
            status_reason: i.status_reason.clone(),
            grant: i.grant.to_string(),
            scopes: i.scopes.clone(),
            access_expires_at_ms: i.access_expires_at,
            installed_at_ms: i.installed_at,
        }
    }
}

/// `Acme (acme): agent Cyrus, active` — in red with what to do when the
/// installation does not work.
pub fn installation_line(i: &InstallationInfo, s: Style) -> String {
    let head = format!(
        "{} (linear.app/{}): agent {}",
        i.workspace_name, i.url_key, i.app_user_name
    );
    match i.status {
        InstallationStatus::Active => format!("{} {head}, active ({})", s.ok(), i.grant),
        other => format!(
            "{} {head}, {}{}: its tasks wait; run `cyrus linear connect` to reconnect it",
            s.fail(),
            s.red(other.as_str()),
            i.status_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    }
}

/// Warnings for configured static tokens that are personal API keys: they
/// act as a person, so Linear never delegates to them nor sends them agent
/// sessions. Each names where the token is set.
pub fn personal_key_warnings(
    config: &Config,
    env: &std::collections::BTreeMap<String, String>,
) -> Vec<Warning> {
    use secrecy::ExposeSecret;
    let personal = |t: &str| cyrus_linear::is_personal_api_key(t);
    let why = "is a personal API key (lin_api_…): it acts as a person, cannot be delegated issues and receives no AgentSessionEvent webhooks, so Cyrus never gets agent sessions with it. Install the OAuth app with `cyrus linear connect` (docs/connect-linear.md); keep static tokens for simulators and scripts";
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, r) in config.repositories.iter().enumerate() {
        if let Some(t) = &r.linear_token
            && personal(t.expose_secret())
        {
            seen.push(t.expose_secret().to_owned());
            out.push(Warning {
                path: format!("repositories[{i}].linearToken"),
                message: format!("the Linear token {why}"),
            });
        }
    }
    let env_token = env
        .get(cyrus_core::config::env::LINEAR_TOKEN)
        .filter(|t| personal(t));
    if let Some(t) = env_token {
        seen.push(t.clone());
        out.push(Warning {
            path: cyrus_core::config::env::LINEAR_TOKEN.to_owned(),
            message: format!("the Linear token {why}"),
        });
    }
    for w in &config.linear.workspaces {
        let t = w.token.expose_secret();
        if personal(t) && !seen.iter().any(|s| s == t) {
            out.push(Warning {
                path: format!(
                    "linear.workspaces[organizationId={}].token",
                    w.organization_id
                ),
                message: format!("the Linear token {why}"),
            });
        }
    }
    out
}

fn list(args: ListArgs) -> ExitCode {
    let (found, runtime) = match probes::config_and_runtime(args.config.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let config = found.loaded.config;
    let infos = runtime.block_on(async {
        if probes::store_missing(&config.store.url) {
            return Ok(Vec::new());
        }
        let store = probes::open_store(&config.store.url).await?;
        let infos = store
            .list_installation_infos()
            .await
            .map_err(|e| format!("cannot read installations: {e}"));
        store.close().await;
        infos
    });
    let infos = match infos {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ui::exit(EXIT_FAILURE);
        }
    };
    if args.json {
        let reports: Vec<InstallationReport> = infos.iter().map(Into::into).collect();
        return match ui::print_json(&reports) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        };
    }
    let s = Style::detect();
    if infos.is_empty() {
        println!("No Linear workspace is connected yet: run `cyrus linear connect`.");
    }
    for i in &infos {
        println!("{}", installation_line(i, s));
    }
    ExitCode::SUCCESS
}
