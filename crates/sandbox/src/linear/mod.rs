//! Linear GraphQL + Agent API simulator, written from
//! `linear-agent-api.md` and `linear-schema.graphql`, never from our client.
//!
//! It answers GraphQL (parsed with a real parser, any field selection) with
//! Linear's shapes, errors and rate-limit headers; behaves like Linear towards
//! an agent (delegation → signed `created` webhook, replies → `prompted`,
//! un-delegation and state changes → `Issue` webhooks, retries with the same
//! `Linear-Delivery`); derives session status from activities; serves
//! Linear's OAuth server (`/oauth/authorize`, `/oauth/token`,
//! `/oauth/revoke`) for several organizations, serves pasted files under
//! `/uploads/…` to authorized requests only, each with its own app user,
//! with token lifetimes on a compressible clock; and exposes a control API
//! (in-process [`LinearControl`], HTTP under `/_control`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cyrus_sandbox::linear::{LinearSim, LinearSimOptions};
//! let sim = LinearSim::start(LinearSimOptions::default()).await?;
//! println!("{} key {}", sim.url(), sim.api_key());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod clock;
mod control;
mod exec;
mod faults;
mod inputs;
mod model;
mod oauth;
mod oauth_control;
mod oauth_http;
mod operations;
mod options;
mod organizations;
mod payloads;
mod schema;
mod server;
mod status;
mod uploads;
mod webhooks;
mod world;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::routing::post;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use control::{IssueView, LinearControl, ORGANIZATION_HEADER, SessionView};
pub use faults::{Fault, FaultKind, RequestStats};
pub use inputs::{NewAttachment, NewComment, NewIssue, NewLabel, NewState, NewTeam, NewUser};
pub use model::{
    Activity, Attachment, Comment, ExternalUrl, Issue, Label, Project, Relation, Session, Team,
    User, WorkflowState,
};
pub use oauth::{
    ACCESS_TOKEN_LIFETIME, CLIENT_CREDENTIALS_LIFETIME, CODE_LIFETIME, Consent, GrantCalls,
    Installation, NewOAuthApp, OAuthApp, PendingAuthorization, TokenStats,
};
pub use options::{LinearSimOptions, RateLimits};
pub use organizations::{NewOrganization, Organization};
pub use status::{SessionStatus, SessionTiming, derive_status};
pub use webhooks::{Attempt, Delivery, sign};
pub use world::SimError;

use clock::LinearClock;
use oauth::OAuthServer;
use organizations::Org;
use server::{Inner, RateWindow};
use webhooks::WebhookSender;
use world::Identity;

/// A running simulator. Call [`LinearSim::shutdown`] to stop the server and
/// pending webhook retries.
pub struct LinearSim {
    addr: SocketAddr,
    api_key: String,
    webhook_secret: String,
    organization_id: String,
    agent_user_id: String,
    oauth_app: OAuthApp,
    control: LinearControl,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl LinearSim {
    /// Binds `opts.addr` (default 127.0.0.1:0: the SDK accepts plain HTTP
    /// only for local hosts) and starts serving.
    pub async fn start(opts: LinearSimOptions) -> std::io::Result<LinearSim> {
        let bind = opts
            .addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let tcp = tokio::net::TcpListener::bind(bind).await?;
        let addr = tcp.local_addr()?;
        let identity = Identity {
            organization_id: opts.organization_id.clone(),
            organization_name: opts.organization_name.clone(),
            url_key: opts.organization_url_key.clone(),
            agent_user_id: opts.agent_user_id.clone(),
            agent_name: opts.agent_name.clone(),
            default_user_id: uuid::Uuid::new_v4().to_string(),
            oauth_client_id: opts.oauth_app.client_id.clone(),
            webhook_id: uuid::Uuid::new_v4().to_string(),
        };
        let first = Org::new(identity, Some(opts.api_key.clone()), opts.session_timing);
        let inner = Arc::new(Inner {
            base_url: format!("http://{addr}"),
            orgs: RwLock::new(vec![Arc::new(first)]),
            oauth: Mutex::new(OAuthServer::new(opts.oauth_app.clone())),
            clock: LinearClock::new(opts.time_scale),
            timing: opts.session_timing,
            webhooks: WebhookSender::new(
                opts.webhook_url.clone(),
                &opts.webhook_secret,
                opts.webhook_retry_delays.clone(),
                opts.webhook_timeout,
            ),
            faults: Mutex::new(Vec::new()),
            stats: Mutex::new(RequestStats::default()),
            rate: Mutex::new(RateWindow::new(opts.rate_limits.clone())),
        });
        let control = LinearControl {
            inner: inner.clone(),
            org: inner.first_org(),
        };
        let app = Router::new()
            .route("/graphql", post(server::graphql))
            .with_state(inner.clone())
            .merge(uploads::router(inner.clone()))
            .merge(oauth_http::router(inner))
            .merge(control::router(control.clone()))
            .merge(oauth_control::router(control.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(tcp, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(LinearSim {
            addr,
            api_key: opts.api_key,
            webhook_secret: opts.webhook_secret,
            organization_id: opts.organization_id,
            agent_user_id: opts.agent_user_id,
            oauth_app: opts.oauth_app,
            control,
            stop,
            task,
        })
    }

    /// The GraphQL endpoint, e.g. `http://127.0.0.1:PORT/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }
    /// The server root (control API lives under `/_control`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn api_key(&self) -> &str {
        &self.api_key
    }
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }
    pub fn organization_id(&self) -> &str {
        &self.organization_id
    }
    pub fn agent_user_id(&self) -> &str {
        &self.agent_user_id
    }
    /// The default OAuth app's client id (the `oauthClientId` of webhooks).
    pub fn oauth_client_id(&self) -> &str {
        &self.oauth_app.client_id
    }
    pub fn oauth_client_secret(&self) -> &str {
        &self.oauth_app.client_secret
    }
    /// `…/oauth/authorize` (on Linear: `https://linear.app/oauth/authorize`).
    pub fn authorize_url(&self) -> String {
        format!("http://{}/oauth/authorize", self.addr)
    }
    /// `…/oauth/token` (on Linear: `https://api.linear.app/oauth/token`).
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.addr)
    }
    /// `…/oauth/revoke` (on Linear: `https://api.linear.app/oauth/revoke`).
    pub fn revoke_url(&self) -> String {
        format!("http://{}/oauth/revoke", self.addr)
    }
    /// Controls the first organization (and, through it, everything else).
    pub fn control(&self) -> LinearControl {
        self.control.clone()
    }

    /// Stops serving and abandons pending webhook retries and held
    /// consents.
    pub async fn shutdown(self) {
        self.control.inner.webhooks.abort_all();
        self.control
            .inner
            .oauth
            .lock()
            .expect("oauth lock")
            .release_waiters();
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
