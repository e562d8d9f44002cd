//! Test control of the simulator: build a workspace, act as a human (delegate,
//! mention, prompt, stop, un-delegate, change state, delete), read what the
//! agent did, inject faults and count requests. [`LinearControl`] is the
//! in-process API; [`router`] mirrors it over HTTP under `/_control`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::faults::{Fault, RequestStats};
use super::inputs::{IssueChanges, NewIssue, NewLabel, NewTeam, NewUser};
use super::model::{
    Activity, Comment, ExternalUrl, Issue, Label, Relation, Team, User, WorkflowState,
};
use super::organizations::Org;
use super::server::Inner;
use super::status::{SessionStatus, is_unresponsive};
use super::webhooks::Delivery;
use super::world::{SimError, World};

/// A session as the tests see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub issue_id: Option<String>,
    pub status: SessionStatus,
    /// Linear's "Did not respond": nothing arrived within 10 s of `created`.
    pub unresponsive: bool,
    pub external_urls: Vec<ExternalUrl>,
    pub plan: Option<serde_json::Value>,
    /// Every activity, oldest first (superseded ephemeral ones included,
    /// flagged `superseded`).
    pub activities: Vec<Activity>,
}

/// An issue with its state resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueView {
    pub issue: Issue,
    pub state: WorkflowState,
}

/// Cheap to clone; every clone controls the same simulator. Workspace
/// calls (teams, issues, delegation, …) act in one organization: the first
/// for `sim.control()`, another through [`LinearControl::organization`].
#[derive(Clone)]
pub struct LinearControl {
    pub(crate) inner: Arc<Inner>,
    pub(crate) org: Arc<Org>,
}

impl LinearControl {
    fn with_world<T>(
        &self,
        f: impl FnOnce(&mut World) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let (result, outbox) = {
            let mut world = self.org.world.lock().expect("world lock");
            let result = f(&mut world);
            (result, world.take_outbox())
        };
        self.inner.webhooks.send_all(outbox);
        result
    }

    fn default_user(&self) -> String {
        self.org
            .world
            .lock()
            .expect("world lock")
            .identity
            .default_user_id
            .clone()
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        *self.inner.webhooks.target.lock().expect("target lock") = url;
    }
    /// The default human user (the delegator unless told otherwise).
    pub fn default_user_id(&self) -> String {
        self.default_user()
    }
    pub fn create_user(&self, input: NewUser) -> User {
        self.with_world(|w| Ok(w.create_user(input)))
            .expect("infallible")
    }
    pub fn create_team(&self, input: NewTeam) -> Result<Team, SimError> {
        self.with_world(|w| w.create_team(input))
    }
    pub fn team_states(&self, team_id: &str) -> Vec<WorkflowState> {
        let w = self.org.world.lock().expect("world lock");
        let Some(team) = w.team(team_id) else {
            return vec![];
        };
        let mut states: Vec<WorkflowState> = w
            .states
            .iter()
            .filter(|s| s.team_id == team.id)
            .cloned()
            .collect();
        states.sort_by(|a, b| a.position.total_cmp(&b.position));
        states
    }
    pub fn create_label(&self, input: NewLabel) -> Result<Label, SimError> {
        self.with_world(|w| w.create_label(input))
    }
    pub fn create_issue(&self, input: NewIssue) -> Result<Issue, SimError> {
        self.with_world(|w| w.create_issue(input))
    }
    /// "`issue_id` blocks `related_issue_id`" and the other relation types,
    /// as `issueRelationCreate` makes them.
    pub fn create_relation(
        &self,
        issue_id: &str,
        related_issue_id: &str,
        relation_type: &str,
    ) -> Result<Relation, SimError> {
        self.with_world(|w| w.create_relation(issue_id, related_issue_id, relation_type, None))
    }
    pub fn add_comment(
        &self,
        issue_id: &str,
        body: &str,
        user_id: Option<&str>,
        parent_id: Option<&str>,
    ) -> Result<Comment, SimError> {
        let user = user_id.map_or_else(|| self.default_user(), str::to_string);
        self.with_world(|w| {
            w.create_comment(
                issue_id,
                body.into(),
                parent_id.map(str::to_string),
                Some(user),
            )
        })
    }
    /// A human (`by`, default user when `None`) delegates the issue to the
    /// agent: a session starts and `created` is sent. Returns its id.
    pub fn delegate(&self, issue_id: &str, by: Option<&str>) -> Result<String, SimError> {
        let by = by.map_or_else(|| self.default_user(), str::to_string);
        self.with_world(|w| {
            let agent = w.identity.agent_user_id.clone();
            let changes = IssueChanges {
                delegate_id: Some(Some(agent)),
                ..IssueChanges::default()
            };
            w.update_issue(issue_id, changes, &by)?;
            let issue = w
                .issue(issue_id)
                .ok_or_else(|| SimError::not_found("Issue", issue_id))?;
            w.latest_session_for_issue(&issue.id)
                .map(|s| s.id.clone())
                .ok_or_else(|| SimError::Invalid("issue was already delegated to the agent".into()))
        })
    }
    /// A human @mentions the agent in a new comment; returns the session id.
    pub fn mention(
        &self,
        issue_id: &str,
        body: &str,
        by: Option<&str>,
    ) -> Result<String, SimError> {
        let by = by.map_or_else(|| self.default_user(), str::to_string);
        self.with_world(|w| w.mention(issue_id, &by, body.into()).map(|s| s.id))
    }
    /// A human writes in the session (`prompted`); `stop` is "Send stop request".
    pub fn prompt(&self, session_id: &str, body: &str, stop: bool) -> Result<Activity, SimError> {
        let by = self.default_user();
        self.with_world(|w| w.prompt(session_id, &by, body.into(), stop))
    }
    pub fn undelegate(&self, issue_id: &str) -> Result<Issue, SimError> {
        let by = self.default_user();
        let changes = IssueChanges {
            delegate_id: Some(None),
            ..IssueChanges::default()
        };
        self.with_world(|w| w.update_issue(issue_id, changes, &by))
    }
    /// Moves the issue to the state with this id, or this name in its team.
    pub fn set_state(&self, issue_id: &str, state: &str) -> Result<Issue, SimError> {
        let by = self.default_user();
        self.with_world(|w| {
            let issue = w
                .issue(issue_id)
                .ok_or_else(|| SimError::not_found("Issue", issue_id))?;
            let state_id = w
                .states
                .iter()
                .find(|s| {
                    s.id == state
                        || (s.team_id == issue.team_id && s.name.eq_ignore_ascii_case(state))
                })
                .ok_or_else(|| SimError::not_found("WorkflowState", state))?
                .id
                .clone();
            let changes = IssueChanges {
                state_id: Some(state_id),
                ..IssueChanges::default()
            };
            w.update_issue(issue_id, changes, &by)
        })
    }
    pub fn delete_issue(&self, issue_id: &str) -> Result<(), SimError> {
        let by = self.default_user();
        self.with_world(|w| w.delete_issue(issue_id, &by))
    }
    pub fn issue(&self, issue_id: &str) -> Option<IssueView> {
        let w = self.org.world.lock().expect("world lock");
        let issue = w.issue(issue_id)?.clone();
        let state = w.state(&issue.state_id)?.clone();
        Some(IssueView { issue, state })
    }
    /// The issue's comments, oldest first.
    pub fn comments(&self, issue_id: &str) -> Vec<Comment> {
        let w = self.org.world.lock().expect("world lock");
        let Some(issue) = w.issue(issue_id) else {
            return vec![];
        };
        w.comments
            .iter()
            .filter(|c| c.issue_id == issue.id)
            .cloned()
            .collect()
    }
    pub fn session(&self, session_id: &str) -> Option<SessionView> {
        let w = self.org.world.lock().expect("world lock");
        let s = w.session(session_id)?;
        let now = Utc::now();
        Some(SessionView {
            id: s.id.clone(),
            issue_id: s.issue_id.clone(),
            status: w.session_status(&s.id, now),
            unresponsive: is_unresponsive(s, now, w.timing),
            external_urls: s.external_urls.clone(),
            plan: s.plan.clone(),
            activities: w.session_activities(&s.id).into_iter().cloned().collect(),
        })
    }
    /// Session ids, oldest first.
    pub fn sessions(&self) -> Vec<String> {
        let w = self.org.world.lock().expect("world lock");
        w.sessions.iter().map(|s| s.id.clone()).collect()
    }
    pub fn inject_fault(&self, fault: Fault) {
        self.inner.faults.lock().expect("faults lock").push(fault);
    }
    pub fn clear_faults(&self) {
        self.inner.faults.lock().expect("faults lock").clear();
    }
    pub fn request_stats(&self) -> RequestStats {
        self.inner.stats.lock().expect("stats lock").clone()
    }
    pub fn reset_request_stats(&self) {
        *self.inner.stats.lock().expect("stats lock") = RequestStats::default();
    }
    /// Every webhook sent or being retried, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner
            .webhooks
            .log
            .lock()
            .expect("webhook log lock")
            .clone()
    }
}

// ---- HTTP mirror ---------------------------------------------------------------

pub(crate) struct ApiError(pub SimError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            SimError::NotFound { .. } => StatusCode::NOT_FOUND,
            SimError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (
            status,
            Json(serde_json::json!({"error": self.0.to_string()})),
        )
            .into_response()
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) fn ok<T>(r: Result<T, SimError>) -> ApiResult<T> {
    r.map(Json).map_err(ApiError)
}

#[derive(Deserialize)]
struct WebhookUrl {
    url: Option<String>,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct ByUser {
    by: Option<String>,
}
#[derive(Deserialize)]
struct Mention {
    body: String,
    by: Option<String>,
}
#[derive(Deserialize)]
struct Prompt {
    body: String,
    #[serde(default)]
    stop: bool,
}
#[derive(Deserialize)]
struct SetState {
    state: String,
}
#[derive(Deserialize)]
struct NewCommentBody {
    body: String,
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "parentId")]
    parent_id: Option<String>,
}
#[derive(Serialize)]
struct SessionId {
    #[serde(rename = "sessionId")]
    session_id: String,
}

pub(crate) fn not_found(entity: &'static str, id: &str) -> ApiError {
    ApiError(SimError::not_found(entity, id))
}

/// The control handle a control request addresses: the first organization,
/// or the one named by the `X-Sim-Organization` header (id or url key).
pub(crate) struct Ctl(pub LinearControl);

impl FromRequestParts<LinearControl> for Ctl {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &LinearControl,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(ORGANIZATION_HEADER) else {
            return Ok(Ctl(state.clone()));
        };
        let id = value.to_str().unwrap_or_default();
        state
            .organization(id)
            .map(Ctl)
            .ok_or_else(|| not_found("Organization", id).into_response())
    }
}

/// Names the organization a control request acts in.
pub const ORGANIZATION_HEADER: &str = "x-sim-organization";

pub fn router(control: LinearControl) -> Router {
    Router::new()
        .route(
            "/_control/webhook-url",
            post(|Ctl(c): Ctl, Json(b): Json<WebhookUrl>| async move {
                c.set_webhook_url(b.url);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_control/users",
            post(|Ctl(c): Ctl, Json(b): Json<NewUser>| async move { Json(c.create_user(b)) }),
        )
        .route(
            "/_control/teams",
            post(|Ctl(c): Ctl, Json(b): Json<NewTeam>| async move { ok(c.create_team(b)) }),
        )
        .route(
            "/_control/teams/{id}/states",
            get(|Ctl(c): Ctl, Path(id): Path<String>| async move { Json(c.team_states(&id)) }),
        )
        .route(
            "/_control/labels",
            post(|Ctl(c): Ctl, Json(b): Json<NewLabel>| async move { ok(c.create_label(b)) }),
        )
        .route(
            "/_control/issues",
            post(|Ctl(c): Ctl, Json(b): Json<NewIssue>| async move { ok(c.create_issue(b)) }),
        )
        .route(
            "/_control/issues/{id}",
            get(|Ctl(c): Ctl, Path(id): Path<String>| async move {
                c.issue(&id)
                    .map(Json)
                    .ok_or_else(|| not_found("Issue", &id))
            })
            .delete(|Ctl(c): Ctl, Path(id): Path<String>| async move {
                c.delete_issue(&id)
                    .map(|_| StatusCode::NO_CONTENT)
                    .map_err(ApiError)
            }),
        )
        .route(
            "/_control/issues/{id}/comments",
            get(|Ctl(c): Ctl, Path(id): Path<String>| async move { Json(c.comments(&id)) }).post(
                |Ctl(c): Ctl, Path(id): Path<String>, Json(b): Json<NewCommentBody>| async move {
                    ok(c.add_comment(&id, &b.body, b.user_id.as_deref(), b.parent_id.as_deref()))
                },
            ),
        )
        .route(
            "/_control/issues/{id}/delegate",
            post(
                |Ctl(c): Ctl, Path(id): Path<String>, b: Option<Json<ByUser>>| async move {
                    let by = b.and_then(|Json(b)| b.by);
                    ok(c.delegate(&id, by.as_deref())
                        .map(|session_id| SessionId { session_id }))
                },
            ),
        )
        .route(
            "/_control/issues/{id}/undelegate",
            post(|Ctl(c): Ctl, Path(id): Path<String>| async move { ok(c.undelegate(&id)) }),
        )
        .route(
            "/_control/issues/{id}/mention",
            post(
                |Ctl(c): Ctl, Path(id): Path<String>, Json(b): Json<Mention>| async move {
                    ok(c.mention(&id, &b.body, b.by.as_deref())
                        .map(|session_id| SessionId { session_id }))
                },
            ),
        )
        .route(
            "/_control/issues/{id}/state",
            post(
                |Ctl(c): Ctl, Path(id): Path<String>, Json(b): Json<SetState>| async move {
                    ok(c.set_state(&id, &b.state))
                },
            ),
        )
        .route(
            "/_control/sessions",
            get(|Ctl(c): Ctl| async move { Json(c.sessions()) }),
        )
        .route(
            "/_control/sessions/{id}",
            get(|Ctl(c): Ctl, Path(id): Path<String>| async move {
                c.session(&id)
                    .map(Json)
                    .ok_or_else(|| not_found("AgentSession", &id))
            }),
        )
        .route(
            "/_control/sessions/{id}/prompt",
            post(
                |Ctl(c): Ctl, Path(id): Path<String>, Json(b): Json<Prompt>| async move {
                    ok(c.prompt(&id, &b.body, b.stop))
                },
            ),
        )
        .route(
            "/_control/faults",
            post(|Ctl(c): Ctl, Json(b): Json<Fault>| async move {
                c.inject_fault(b);
                StatusCode::NO_CONTENT
            })
            .delete(|Ctl(c): Ctl| async move {
                c.clear_faults();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_control/requests",
            get(|Ctl(c): Ctl| async move { Json(c.request_stats()) }).delete(
                |Ctl(c): Ctl| async move {
                    c.reset_request_stats();
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/_control/deliveries",
            get(|Ctl(c): Ctl| async move { Json(c.deliveries()) }),
        )
        .with_state(control)
}
