//! `CodegenClient`: typed calls to Codegen's REST API, with our own rate
//! limiting, classified errors and bounded retries. Cloning is cheap and
//! shares the HTTP connection pool and the rate limiter, so create one per
//! organization and clone it into every task.

use crate::error::{CodegenError, Endpoint, error_message, snippet};
use crate::mcp::McpCatalog;
use crate::model::{
    AgentRun, CreateRun, Integrations, ListRuns, McpProvider, Organization, Page, PageRequest,
    Repo, ResumeRun, RunLogs, User,
};
use crate::rate::{EndpointClass, GovernorPermits, RateLimits, RatePermit};
use crate::retry::{RetryPolicy, parse_retry_after};
use backon::Retryable;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Codegen's public API (the spec's `servers[0]`).
pub const DEFAULT_BASE_URL: &str = "https://api.codegen.com";

/// Everything needed to talk to one Codegen organization.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub base_url: String,
    pub org_id: i64,
    pub token: SecretString,
    /// Per HTTP attempt.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub rate_limits: RateLimits,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, org_id: i64, token: SecretString) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            org_id,
            token,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            rate_limits: RateLimits::default(),
        }
    }
}

#[derive(Clone)]
pub struct CodegenClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    org_id: i64,
    token: SecretString,
    retry: RetryPolicy,
    limits: RateLimits,
    permits: Arc<dyn RatePermit>,
}

impl std::fmt::Debug for CodegenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodegenClient")
            .field("base", &self.inner.base)
            .field("org_id", &self.inner.org_id)
            .finish_non_exhaustive()
    }
}

/// One prepared request (rebuilt for every attempt).
struct Call {
    endpoint: Endpoint,
    class: EndpointClass,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// Safe to repeat after an ambiguous failure (5xx, timeout).
    idempotent: bool,
}

impl CodegenClient {
    /// A client with the in-process [`GovernorPermits`] limiter.
    pub fn new(config: ClientConfig) -> Result<CodegenClient, CodegenError> {
        let permits = Arc::new(GovernorPermits::new(config.rate_limits));
        CodegenClient::with_rate_permit(config, permits)
    }

    /// A client whose calls are admitted by `permits` (e.g. a limiter shared
    /// through the database by several replicas).
    pub fn with_rate_permit(
        config: ClientConfig,
        permits: Arc<dyn RatePermit>,
    ) -> Result<CodegenClient, CodegenError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base)
            .map_err(|e| CodegenError::Config(format!("base URL `{base}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CodegenError::Config(format!(
                "base URL `{base}` must be http or https"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("cyrus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CodegenError::Config(format!("HTTP client: {e}")))?;
        Ok(CodegenClient {
            inner: Arc::new(Inner {
                http,
                base,
                org_id: config.org_id,
                token: config.token,
                retry: config.retry,
                limits: config.rate_limits,
                permits,
            }),
        })
    }

    pub fn org_id(&self) -> i64 {
        self.inner.org_id
    }

    /// The limiter, for headroom on status pages and for the poller.
    pub fn rate_permit(&self) -> &Arc<dyn RatePermit> {
        &self.inner.permits
    }

    pub fn rate_limits(&self) -> RateLimits {
        self.inner.limits
    }

    fn org_path(&self, rest: &str) -> String {
        format!("/v1/organizations/{}{rest}", self.inner.org_id)
    }

    // ---- agent runs -------------------------------------------------------

    /// Starts a run. Retried only when Codegen provably did not create it
    /// (429, or the connection could not be opened): a 5xx or a timeout may
    /// come after the run was created, and a blind retry would start a
    /// duplicate. The caller reconciles those through [`Self::list_runs`]
    /// and the `metadata` it sent.
    pub async fn create_run(&self, input: &CreateRun) -> Result<AgentRun, CodegenError> {
        let body = serde_json::to_value(input).expect("CreateRun serializes");
        self.send(Call {
            endpoint: "create_run",
            class: EndpointClass::Create,
            method: Method::POST,
            path: self.org_path("/agent/run"),
            query: vec![],
            body: Some(body),
            idempotent: false,
        })
        .await
    }

    pub async fn get_run(&self, run_id: i64) -> Result<AgentRun, CodegenError> {
        self.send(Call {
            endpoint: "get_run",
            class: EndpointClass::Read,
            method: Method::GET,
            path: self.org_path(&format!("/agent/run/{run_id}")),
            query: vec![],
            body: None,
            idempotent: true,
        })
        .await
    }

    /// Newest first.
    pub async fn list_runs(&self, req: &ListRuns) -> Result<Page<AgentRun>, CodegenError> {
        let mut query = page_query(req.page);
        if let Some(source) = &req.source_type {
            query.push(("source_type", source.clone()));
        }
        if let Some(user) = req.user_id {
            query.push(("user_id", user.to_string()));
        }
        self.send(Call {
            endpoint: "list_runs",
            class: EndpointClass::Read,
            method: Method::GET,
            path: self.org_path("/agent/runs"),
            query,
            body: None,
            idempotent: true,
        })
        .await
    }

    /// Continues a run with a follow-up prompt (documented for `PAUSED`; if
    /// refused, start a new run carrying the prior context).
    pub async fn resume_run(&self, input: &ResumeRun) -> Result<AgentRun, CodegenError> {
        self.send(Call {
            endpoint: "resume_run",
            class: EndpointClass::Read,
            method: Method::POST,
            path: self.org_path("/agent/run/resume"),
            query: vec![],
            body: Some(serde_json::to_value(input).expect("ResumeRun serializes")),
            idempotent: false,
        })
        .await
    }

    /// Best-effort stop through the beta route. Returns the run when the
    /// answer parses as one (its shape is unverified), `None` otherwise.
    ///
    /// [`CodegenError::StopUnsupported`] means the route is gone: stop
    /// following the run and mark it cancelled locally; use
    /// [`Self::remove_from_pr`] only when Codegen must also stop pushing to
    /// the run's PR (it stops every agent on that PR).
    pub async fn stop_run(&self, run_id: i64) -> Result<Option<AgentRun>, CodegenError> {
        let result: Result<Value, CodegenError> = self
            .send(Call {
                endpoint: "stop_run",
                class: EndpointClass::Read,
                method: Method::POST,
                path: format!(
                    "/v1/beta/organizations/{}/agent/run/stop",
                    self.inner.org_id
                ),
                query: vec![],
                body: Some(json!({ "agent_run_id": run_id })),
                idempotent: true,
            })
            .await;
        match result {
            Ok(value) => Ok(serde_json::from_value(value).ok()),
            Err(CodegenError::Unexpected { status: 405, .. }) => {
                Err(CodegenError::StopUnsupported { status: 405 })
            }
            // A missing route answers FastAPI's `{"detail": "Not Found"}`; an
            // unknown run answers `{"message": "Agent run not found."}`.
            Err(CodegenError::NotFound { message, .. }) if message == "Not Found" => {
                Err(CodegenError::StopUnsupported { status: 404 })
            }
            Err(e) => Err(e),
        }
    }

    /// Flags the run's PR so Codegen ignores its CI events and stops all
    /// agents on it.
    pub async fn ban_run(&self, run_id: i64) -> Result<Value, CodegenError> {
        self.pr_action("ban_run", "/agent/run/ban", run_id).await
    }

    pub async fn unban_run(&self, run_id: i64) -> Result<Value, CodegenError> {
        self.pr_action("unban_run", "/agent/run/unban", run_id)
            .await
    }

    /// Friendlier alias of [`Self::ban_run`].
    pub async fn remove_from_pr(&self, run_id: i64) -> Result<Value, CodegenError> {
        self.pr_action("remove_from_pr", "/agent/run/remove-from-pr", run_id)
            .await
    }

    async fn pr_action(
        &self,
        endpoint: Endpoint,
        rest: &str,
        run_id: i64,
    ) -> Result<Value, CodegenError> {
        self.send(Call {
            endpoint,
            class: EndpointClass::Read,
            method: Method::POST,
            path: self.org_path(rest),
            query: vec![],
            body: Some(json!({ "agent_run_id": run_id })),
            idempotent: true,
        })
        .await
    }

    /// One page of a run's logs, oldest first (alpha route).
    pub async fn run_logs(&self, run_id: i64, page: PageRequest) -> Result<RunLogs, CodegenError> {
        let mut query = page_query(page);
        query.push(("reverse", "false".to_string()));
        self.send(Call {
            endpoint: "run_logs",
            class: EndpointClass::Logs,
            method: Method::GET,
            path: format!(
                "/v1/alpha/organizations/{}/agent/run/{run_id}/logs",
                self.inner.org_id
            ),
            query,
            body: None,
            idempotent: true,
        })
        .await
    }

    // ---- account ----------------------------------------------------------

    /// Cheap token check.
    pub async fn me(&self) -> Result<User, CodegenError> {
        self.read("users_me", "/v1/users/me".to_string(), vec![])
            .await
    }

    pub async fn organizations(
        &self,
        page: PageRequest,
    ) -> Result<Page<Organization>, CodegenError> {
        self.read(
            "organizations",
            "/v1/organizations".to_string(),
            page_query(page),
        )
        .await
    }

    pub async fn repos(&self, page: PageRequest) -> Result<Page<Repo>, CodegenError> {
        self.read("repos", self.org_path("/repos"), page_query(page))
            .await
    }

    /// Every repo, following pages.
    pub async fn all_repos(&self) -> Result<Vec<Repo>, CodegenError> {
        let mut all = Vec::new();
        loop {
            let page = self
                .repos(PageRequest {
                    skip: all.len() as u64,
                    limit: 100,
                })
                .await?;
            let got = page.items.len();
            all.extend(page.items);
            if got == 0 || all.len() as u64 >= page.total {
                return Ok(all);
            }
        }
    }

    pub async fn integrations(&self) -> Result<Integrations, CodegenError> {
        self.read("integrations", self.org_path("/integrations"), vec![])
            .await
    }

    /// Codegen's MCP servers (OAuth providers with `is_mcp`). Not limited
    /// by Codegen; drawn from the read bucket anyway (codegen-api.md §8).
    pub async fn mcp_providers(&self) -> Result<Vec<McpProvider>, CodegenError> {
        self.read("mcp_providers", "/v1/mcp-providers".to_string(), vec![])
            .await
    }

    /// The MCP providers and the organization's integrations, read together
    /// (two calls) for checking `mcpServers`.
    pub async fn mcp_catalog(&self) -> Result<McpCatalog, CodegenError> {
        let providers = self.mcp_providers().await?;
        let integrations = self.integrations().await?;
        Ok(McpCatalog {
            providers,
            integrations,
        })
    }

    async fn read<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> Result<T, CodegenError> {
        self.send(Call {
            endpoint,
            class: EndpointClass::Read,
            method: Method::GET,
            path,
            query,
            body: None,
            idempotent: true,
        })
        .await
    }

    // ---- transport --------------------------------------------------------

    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, CodegenError> {
        let policy = self.inner.retry;
        let window = self.inner.limits.get(call.class).per;
        let mut waited = Duration::ZERO;
        let call = &call;
        let body = (|| self.attempt(call))
            .retry(policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|err| {
                err.is_retryable()
                    && (call.idempotent
                        || matches!(err, CodegenError::RateLimited { .. })
                        || matches!(err, CodegenError::Transport { source, .. } if source.is_connect()))
            })
            .adjust(|err, next| {
                let next = next?;
                let wait = match err {
                    CodegenError::RateLimited { retry_after: Some(ra), .. }
                    | CodegenError::Server { retry_after: Some(ra), .. } => *ra,
                    // No Retry-After on a 429: wait out Codegen's window.
                    CodegenError::RateLimited { retry_after: None, .. } => next.max(window),
                    _ => next,
                };
                if waited + wait > policy.max_total_wait {
                    return None;
                }
                waited += wait;
                Some(wait)
            })
            .notify(|err, wait| {
                metrics::counter!("codegen_retries_total", "endpoint" => call.endpoint).increment(1);
                tracing::warn!(endpoint = call.endpoint, error = %err, wait_ms = wait.as_millis() as u64, "retrying Codegen call");
            })
            .await?;
        serde_json::from_str(&body).map_err(|source| CodegenError::Decode {
            endpoint: call.endpoint,
            source,
            snippet: snippet(&body),
        })
    }

    /// One HTTP exchange: rate permit, request, classification.
    async fn attempt(&self, call: &Call) -> Result<String, CodegenError> {
        self.inner.permits.acquire(call.class).await;
        let url = format!("{}{}", self.inner.base, call.path);
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(self.inner.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(source) => {
                metrics::counter!("codegen_api_calls_total", "endpoint" => call.endpoint, "status" => "transport_error")
                    .increment(1);
                return Err(CodegenError::Transport {
                    endpoint: call.endpoint,
                    source,
                });
            }
        };
        let status = response.status();
        metrics::counter!("codegen_api_calls_total", "endpoint" => call.endpoint, "status" => status.as_u16().to_string())
            .increment(1);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = response
            .text()
            .await
            .map_err(|source| CodegenError::Transport {
                endpoint: call.endpoint,
                source,
            })?;
        if status.is_success() {
            return Ok(body);
        }
        Err(self.classify(call.endpoint, status, retry_after, body))
    }

    fn classify(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: String,
    ) -> CodegenError {
        let message = error_message(&body);
        match status.as_u16() {
            401 => CodegenError::Unauthorized { endpoint, message },
            402 => CodegenError::PlanLimit { endpoint, message },
            403 => CodegenError::Forbidden {
                endpoint,
                org_id: self.inner.org_id,
                message,
            },
            404 => CodegenError::NotFound { endpoint, message },
            422 => {
                tracing::error!(endpoint, body = %body, "Codegen rejected a request as invalid: this is a Cyrus bug");
                CodegenError::Validation {
                    endpoint,
                    message,
                    body,
                }
            }
            429 => CodegenError::RateLimited {
                endpoint,
                message,
                retry_after,
            },
            s @ 500..=599 => CodegenError::Server {
                endpoint,
                status: s,
                message,
                retry_after,
            },
            s => CodegenError::Unexpected {
                endpoint,
                status: s,
                message,
            },
        }
    }
}

fn page_query(page: PageRequest) -> Vec<(&'static str, String)> {
    vec![
        ("skip", page.skip.to_string()),
        ("limit", page.limit.clamp(1, 100).to_string()),
    ]
}
