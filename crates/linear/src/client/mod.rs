//! `LinearClient`: typed GraphQL calls with authentication, OAuth refresh,
//! error classification, bounded retries and rate-limit budgeting.
//!
//! Retry rules: only [`ErrorClass::Transient`] failures are retried here
//! (exponential backoff with jitter, capped); rate limits and permanent errors
//! return at once so the caller's outbox can wait or give up. Because
//! mutations may be retried, activities carry a client-chosen id that makes
//! the retry idempotent on Linear's side.

pub mod classify;
mod token_source;
pub mod types;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use crate::activity::NewActivity;
use crate::error::{ErrorClass, LinearError};
use crate::oauth::{OAuthClient, OAuthEndpoints};
use crate::operations::{self, Operation};
use crate::rate_limit::{Admission, RateBudget, RateLimitSnapshot};

pub use classify::classify_response;
pub use token_source::{BoxFuture, TokenSource};
pub use types::*;

/// Whether `token` is a personal API key (`lin_api_…`). Such a key acts as
/// the person who created it: it cannot be delegated issues and receives no
/// `AgentSessionEvent`, so an agent configured with one never gets work.
/// Only an OAuth app installed with `actor=app` does (`cyrus linear connect`).
pub fn is_personal_api_key(token: &str) -> bool {
    token.trim_start().starts_with("lin_api_")
}

/// OAuth tokens as issued by Linear's token endpoint.
#[derive(Clone)]
pub struct OAuthTokens {
    pub access_token: SecretString,
    /// Spent on use: each refresh returns a new one that must be saved.
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Saves refreshed tokens (the caller writes them atomically). Called after
/// every successful refresh, before the refreshed token is used.
pub type TokenPersister = Arc<
    dyn Fn(OAuthTokens) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// Everything needed to refresh an OAuth access token.
#[derive(Clone)]
pub struct OAuthConfig {
    pub tokens: OAuthTokens,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Linear's `/oauth/token`, or a simulator's.
    pub token_endpoint: Url,
    pub persist: TokenPersister,
}

/// How we authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// Personal API key, sent as `Authorization: <key>` (no `Bearer`).
    ApiKey(SecretString),
    /// App token, sent as `Authorization: Bearer <token>`, refreshed on 401
    /// by the client itself (one process, one copy of the tokens).
    OAuth(Box<OAuthConfig>),
    /// App token owned by a [`TokenSource`] (the worker's store, shared by
    /// replicas), sent as `Authorization: Bearer <token>`; on a 401 the
    /// source is asked to refresh once and the call is retried once.
    Managed(Arc<dyn TokenSource>),
}

/// Client settings with production defaults via [`LinearClientConfig::new`].
#[derive(Clone)]
pub struct LinearClientConfig {
    /// GraphQL endpoint (`https://api.linear.app/graphql` in production).
    pub endpoint: Url,
    pub credentials: Credentials,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Retries of transient failures (after the first attempt).
    pub max_retries: usize,
    /// First retry delay; grows exponentially with jitter.
    pub retry_min_delay: Duration,
    /// Cap of a single retry delay.
    pub retry_max_delay: Duration,
}

impl LinearClientConfig {
    pub fn new(endpoint: Url, credentials: Credentials) -> Self {
        Self {
            endpoint,
            credentials,
            request_timeout: Duration::from_secs(15),
            max_retries: 3,
            retry_min_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(10),
        }
    }
}

struct AuthState {
    credentials: Credentials,
    /// Bumped on every refresh, so concurrent 401s refresh only once. For
    /// [`Credentials::Managed`], every generation below this one is known to
    /// be refreshed already.
    generation: u64,
    /// Refreshes [`Credentials::OAuth`] tokens; `None` for the others.
    oauth: Option<OAuthClient>,
}

/// A GraphQL client for one token (one workspace installation). Cheap to
/// clone; clones share the token and the rate budget.
#[derive(Clone)]
pub struct LinearClient {
    http: reqwest::Client,
    endpoint: Url,
    auth: Arc<tokio::sync::Mutex<AuthState>>,
    budget: Arc<StdMutex<RateBudget>>,
    retry: ExponentialBuilder,
}

impl std::fmt::Debug for LinearClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearClient")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl LinearClient {
    pub fn new(config: LinearClientConfig) -> Result<Self, LinearError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("cyrus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LinearError::Permanent {
                code: "CLIENT_BUILD".into(),
                message: e.to_string(),
            })?;
        let retry = ExponentialBuilder::default()
            .with_min_delay(config.retry_min_delay)
            .with_max_delay(config.retry_max_delay)
            .with_max_times(config.max_retries)
            .with_jitter();
        let oauth = match &config.credentials {
            // No retries of its own: a transient refresh failure fails the
            // attempt, which `execute` retries as a whole.
            Credentials::OAuth(o) => Some(
                OAuthClient::new(
                    o.client_id.clone(),
                    o.client_secret.clone(),
                    OAuthEndpoints {
                        token: o.token_endpoint.clone(),
                        ..OAuthEndpoints::default()
                    },
                )
                .map_err(|e| LinearError::Permanent {
                    code: "CLIENT_BUILD".into(),
                    message: e.to_string(),
                })?
                .with_retry(0, Duration::ZERO, Duration::ZERO),
            ),
            _ => None,
        };
        Ok(Self {
            http,
            endpoint: config.endpoint,
            auth: Arc::new(tokio::sync::Mutex::new(AuthState {
                credentials: config.credentials,
                generation: 0,
                oauth,
            })),
            budget: Arc::new(StdMutex::new(RateBudget::new())),
            retry,
        })
    }

    /// The token's current budget, for status pages and metrics.
    pub fn rate_limit(&self) -> RateLimitSnapshot {
        self.budget.lock().expect("budget lock").snapshot()
    }

    /// Runs one operation and returns its `data`, retrying transient failures.
    pub async fn execute(&self, op: Operation, variables: Value) -> Result<Value, LinearError> {
        let result = (|| self.execute_authenticated(op, &variables))
            .retry(self.retry)
            .when(|e: &LinearError| e.class() == ErrorClass::Transient)
            .notify(|e, delay| {
                tracing::warn!(operation = op.name, error = %e, ?delay, "retrying Linear call");
            })
            .await;
        if let Err(e) = &result {
            tracing::warn!(operation = op.name, outcome = e.outcome_label(), error = %e, "Linear call failed");
        }
        result
    }

    /// One attempt, with a single refresh-and-retry on an auth failure.
    async fn execute_authenticated(
        &self,
        op: Operation,
        variables: &Value,
    ) -> Result<Value, LinearError> {
        let (header, generation) = self.authorization().await?;
        match self.execute_once(op, variables, header).await {
            Err(LinearError::Auth { message }) => {
                if !self.refresh(generation).await? {
                    return Err(LinearError::Auth { message });
                }
                let (header, _) = self.authorization().await?;
                self.execute_once(op, variables, header).await
            }
            other => other,
        }
    }

    /// The `Authorization` header value this client sends, for downloading
    /// the workspace's private files (`uploads`).
    pub(crate) async fn authorization_header(&self) -> Result<SecretString, LinearError> {
        Ok(self.authorization().await?.0)
    }

    async fn authorization(&self) -> Result<(SecretString, u64), LinearError> {
        let auth = self.auth.lock().await;
        let bearer =
            |token: &SecretString| SecretString::from(format!("Bearer {}", token.expose_secret()));
        match &auth.credentials {
            Credentials::ApiKey(key) => Ok((key.clone(), auth.generation)),
            Credentials::OAuth(oauth) => Ok((bearer(&oauth.tokens.access_token), auth.generation)),
            Credentials::Managed(source) => {
                // Not under our lock: the source may wait on the store.
                let source = source.clone();
                drop(auth);
                let (token, generation) = source.current().await?;
                Ok((bearer(&token), generation))
            }
        }
    }

    async fn execute_once(
        &self,
        op: Operation,
        variables: &Value,
        authorization: SecretString,
    ) -> Result<Value, LinearError> {
        let admission = self.budget.lock().expect("budget lock").admit(Utc::now());
        match admission {
            Admission::Proceed => {}
            Admission::Delay(delay) => tokio::time::sleep(delay).await,
            Admission::PausedUntil(until) => {
                count(op, "rate_limited_local");
                return Err(LinearError::RateLimited {
                    reset_at: Some(until),
                    message: "budget paused until reset".into(),
                });
            }
        }

        let sent = self
            .http
            .post(self.endpoint.clone())
            .header(
                reqwest::header::AUTHORIZATION,
                authorization.expose_secret(),
            )
            .json(&json!({"query": op.document, "variables": variables}))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                count(op, "transient_error");
                return Err(LinearError::Transient {
                    message: format!("sending request: {e}"),
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let reset_hint = reset_hint(&headers);
        self.budget
            .lock()
            .expect("budget lock")
            .observe_headers(&headers);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                count(op, "transient_error");
                return Err(LinearError::Transient {
                    message: format!("reading response: {e}"),
                });
            }
        };
        let result = classify_response(status, &body, reset_hint);
        match &result {
            Ok(_) => count(op, "ok"),
            Err(e) => {
                count(op, e.outcome_label());
                if let LinearError::RateLimited { reset_at, .. } = e {
                    let until = self
                        .budget
                        .lock()
                        .expect("budget lock")
                        .observe_rate_limited(*reset_at, Utc::now());
                    return Err(LinearError::RateLimited {
                        reset_at: Some(until),
                        message: e.to_string(),
                    });
                }
            }
        }
        result
    }

    /// Refreshes the OAuth token unless another task already did since
    /// `seen_generation`. Returns whether a retry with new credentials makes
    /// sense.
    async fn refresh(&self, seen_generation: u64) -> Result<bool, LinearError> {
        let mut auth = self.auth.lock().await;
        if let Credentials::Managed(source) = &auth.credentials {
            // The lock is held across the source's refresh on purpose: the
            // other tasks that saw the same 401 wait here, then skip it.
            if seen_generation < auth.generation {
                return Ok(true);
            }
            let source = source.clone();
            let refreshed = source.refresh(seen_generation).await?;
            if refreshed {
                auth.generation = auth.generation.max(seen_generation + 1);
            }
            return Ok(refreshed);
        }
        if auth.generation != seen_generation {
            return Ok(true); // someone else refreshed while we waited
        }
        let AuthState {
            credentials: Credentials::OAuth(oauth),
            oauth: Some(client),
            ..
        } = &mut *auth
        else {
            return Ok(false); // an API key cannot be refreshed
        };
        let Some(refresh_token) = oauth.tokens.refresh_token.clone() else {
            return Ok(false);
        };
        let grant = client.refresh(&refresh_token).await?;
        let mut tokens = OAuthTokens::from(grant);
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token);
        }
        // Keep the new tokens in memory even if saving fails: the old refresh
        // token is already spent, so dropping them would lock us out.
        oauth.tokens = tokens.clone();
        let persist = oauth.persist.clone();
        auth.generation += 1;
        drop(auth);
        if let Err(e) = persist(tokens).await {
            metrics::counter!("linear_token_persist_failures_total").increment(1);
            tracing::error!(error = %e, "saving refreshed Linear tokens failed; they are held in memory only");
        }
        Ok(true)
    }

    async fn run<T: DeserializeOwned>(
        &self,
        op: Operation,
        variables: Value,
        path: &[&str],
    ) -> Result<T, LinearError> {
        let data = self.execute(op, variables).await?;
        let mut node = &data;
        for key in path {
            node = node.get(key).unwrap_or(&Value::Null);
        }
        serde_json::from_value(node.clone()).map_err(|e| LinearError::Permanent {
            code: "UNEXPECTED_RESPONSE".into(),
            message: format!("{}: {e}", op.name),
        })
    }

    /// Posts an agent activity; returns its id. Sets a fresh client id when
    /// the caller gave none (store it to keep retries idempotent).
    pub async fn create_activity(&self, activity: &NewActivity) -> Result<String, LinearError> {
        let mut input = activity.to_input();
        if activity.id.is_none() {
            input["id"] = json!(uuid::Uuid::new_v4().to_string());
        }
        let payload: MutationPayload<IdOnly> = self
            .run(
                operations::AGENT_ACTIVITY_CREATE,
                json!({"input": input}),
                &["agentActivityCreate"],
            )
            .await?;
        Ok(payload
            .require(operations::AGENT_ACTIVITY_CREATE, |p| p.agent_activity)?
            .id)
    }

    /// Sets the session's external links and/or plan.
    pub async fn update_session(
        &self,
        session_id: &str,
        update: &SessionUpdate,
    ) -> Result<(), LinearError> {
        let payload: MutationPayload<IdOnly> = self
            .run(
                operations::AGENT_SESSION_UPDATE,
                json!({"id": session_id, "input": update.to_input()}),
                &["agentSessionUpdate"],
            )
            .await?;
        payload.ensure(operations::AGENT_SESSION_UPDATE)
    }

    /// Posts a comment (a reply when `parent_id` is set). Inside a session,
    /// use activities instead.
    pub async fn create_comment(
        &self,
        issue_id: &str,
        body: &str,
        parent_id: Option<&str>,
    ) -> Result<CreatedComment, LinearError> {
        let mut input = json!({"issueId": issue_id, "body": body});
        if let Some(parent) = parent_id {
            input["parentId"] = json!(parent);
        }
        let payload: MutationPayload<CreatedComment> = self
            .run(
                operations::COMMENT_CREATE,
                json!({"input": input}),
                &["commentCreate"],
            )
            .await?;
        payload.require(operations::COMMENT_CREATE, |p| p.comment)
    }

    pub async fn update_issue(
        &self,
        issue_id: &str,
        update: &IssueUpdate,
    ) -> Result<(), LinearError> {
        let payload: MutationPayload<IdOnly> = self
            .run(
                operations::ISSUE_UPDATE,
                json!({"id": issue_id, "input": update.to_input()}),
                &["issueUpdate"],
            )
            .await?;
        payload.ensure(operations::ISSUE_UPDATE)
    }

    pub async fn create_issue(&self, input: &IssueCreate) -> Result<CreatedIssue, LinearError> {
        let payload: MutationPayload<CreatedIssue> = self
            .run(
                operations::ISSUE_CREATE,
                json!({"input": input.to_input()}),
                &["issueCreate"],
            )
            .await?;
        payload.require(operations::ISSUE_CREATE, |p| p.issue)
    }

    /// Creates "`issue_id` <kind> `related_issue_id`"; returns the relation id.
    pub async fn create_issue_relation(
        &self,
        issue_id: &str,
        related_issue_id: &str,
        kind: RelationType,
    ) -> Result<String, LinearError> {
        let payload: MutationPayload<IdOnly> = self
            .run(
                operations::ISSUE_RELATION_CREATE,
                json!({"input": {"issueId": issue_id, "relatedIssueId": related_issue_id, "type": kind.as_str()}}),
                &["issueRelationCreate"],
            )
            .await?;
        Ok(payload
            .require(operations::ISSUE_RELATION_CREATE, |p| p.issue_relation)?
            .id)
    }

    /// The issue with everything a run needs (one query per trigger).
    pub async fn issue_for_agent(&self, issue_id: &str) -> Result<IssueDetails, LinearError> {
        self.run(
            operations::ISSUE_FOR_AGENT,
            json!({"id": issue_id}),
            &["issue"],
        )
        .await
    }

    /// Whether the issue is still open and whom it is delegated to (a cheap
    /// read for periodic checks).
    pub async fn issue_status(&self, issue_id: &str) -> Result<IssueStatus, LinearError> {
        self.run(
            operations::ISSUE_STATUS,
            json!({"id": issue_id}),
            &["issue"],
        )
        .await
    }

    pub async fn team_workflow(&self, team_id: &str) -> Result<TeamWorkflow, LinearError> {
        self.run(
            operations::TEAM_WORKFLOW,
            json!({"teamId": team_id}),
            &["team"],
        )
        .await
    }

    /// A person's guest flag and teams, for the access policy.
    pub async fn user_access(&self, user_id: &str) -> Result<UserAccess, LinearError> {
        self.run(operations::USER_ACCESS, json!({"id": user_id}), &["user"])
            .await
    }

    /// Issues created at or after `since` (at most 50, oldest first), in
    /// the shape `Issue` webhooks carry, for triage's catch-up.
    pub async fn recent_issues(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::webhook::event::WebhookIssue>, LinearError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Node {
            id: String,
            identifier: Option<String>,
            priority: Option<f64>,
            team: Option<crate::webhook::event::TeamRef>,
            state: Option<WorkflowState>,
            #[serde(default)]
            labels: Connection<crate::webhook::event::LabelRef>,
            creator: Option<NamedRef>,
            delegate: Option<NamedRef>,
        }
        let nodes: Connection<Node> = self
            .run(
                operations::RECENT_ISSUES,
                json!({"since": since.to_rfc3339()}),
                &["issues"],
            )
            .await?;
        Ok(nodes
            .nodes
            .into_iter()
            .map(|n| crate::webhook::event::WebhookIssue {
                team_id: n.team.as_ref().map(|t| t.id.clone()),
                state_id: n.state.as_ref().map(|s| s.id.clone()),
                label_ids: n.labels.nodes.iter().map(|l| l.id.clone()).collect(),
                id: n.id,
                identifier: n.identifier,
                priority: n.priority,
                team: n.team,
                state: n.state,
                labels: n.labels.nodes,
                creator_id: n.creator.map(|c| c.id),
                delegate_id: n.delegate.map(|d| d.id),
                ..Default::default()
            })
            .collect())
    }

    /// Opens an agent session on an issue (proactive triage); returns the
    /// session id. Linear sends its `created` webhook as for a delegation.
    pub async fn create_session_on_issue(&self, issue_id: &str) -> Result<String, LinearError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload {
            success: bool,
            agent_session: Option<NamedRef>,
        }
        let p: Payload = self
            .run(
                operations::AGENT_SESSION_CREATE_ON_ISSUE,
                json!({"input": {"issueId": issue_id}}),
                &["agentSessionCreateOnIssue"],
            )
            .await?;
        match (p.success, p.agent_session) {
            (true, Some(session)) => Ok(session.id),
            _ => Err(LinearError::Permanent {
                code: "UNSUCCESSFUL".into(),
                message: "agentSessionCreateOnIssue did not create a session".into(),
            }),
        }
    }

    /// Our own user (its id equals `appUserId` in webhooks).
    pub async fn viewer(&self) -> Result<Viewer, LinearError> {
        self.run(operations::VIEWER, json!({}), &["viewer"]).await
    }

    /// Who this token is: the app user and its workspace. Asked right after
    /// an install, so neither id is ever copied by hand.
    pub async fn identity(&self) -> Result<Identity, LinearError> {
        #[derive(serde::Deserialize)]
        struct Named {
            id: String,
            name: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Org {
            id: String,
            name: String,
            url_key: String,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            viewer: Named,
            organization: Org,
        }
        let a: Answer = self.run(operations::IDENTITY, json!({}), &[]).await?;
        Ok(Identity {
            app_user_id: a.viewer.id,
            app_user_name: a.viewer.name,
            organization_id: a.organization.id,
            organization_name: a.organization.name,
            url_key: a.organization.url_key,
        })
    }
}

fn count(op: Operation, outcome: &'static str) {
    metrics::counter!("linear_api_calls_total", "operation" => op.name, "outcome" => outcome)
        .increment(1);
}

/// The reset instant for a rate-limit answer: the request reset header,
/// else the endpoint reset, else `Retry-After` seconds.
fn reset_hint(headers: &http::HeaderMap) -> Option<DateTime<Utc>> {
    let number = |name: &str| -> Option<i64> {
        headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok()
    };
    number("x-ratelimit-requests-reset")
        .or_else(|| number("x-ratelimit-endpoint-requests-reset"))
        .and_then(DateTime::from_timestamp_millis)
        .or_else(|| number("retry-after").map(|secs| Utc::now() + chrono::Duration::seconds(secs)))
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: String,
}

/// `{success, <entity>}` with the entity under any of the names we use.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MutationPayload<T> {
    success: bool,
    #[serde(default = "none")]
    agent_activity: Option<T>,
    #[serde(default = "none")]
    comment: Option<T>,
    #[serde(default = "none")]
    issue: Option<T>,
    #[serde(default = "none")]
    issue_relation: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> MutationPayload<T> {
    fn ensure(&self, op: Operation) -> Result<(), LinearError> {
        if self.success {
            Ok(())
        } else {
            Err(LinearError::Permanent {
                code: "NOT_SUCCESSFUL".into(),
                message: format!("{} answered success=false", op.name),
            })
        }
    }

    fn require(
        self,
        op: Operation,
        pick: impl FnOnce(Self) -> Option<T>,
    ) -> Result<T, LinearError> {
        self.ensure(op)?;
        pick(self).ok_or_else(|| LinearError::Permanent {
            code: "UNEXPECTED_RESPONSE".into(),
            message: format!("{} returned no entity", op.name),
        })
    }
}
