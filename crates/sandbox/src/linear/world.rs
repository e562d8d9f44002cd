//! The simulated workspace and every change to it.
//!
//! Both the GraphQL API and the control API change the workspace only
//! through these methods, so a delegation behaves the same whichever way it
//! came in. Webhooks a change causes are queued in [`World::outbox`] and sent
//! by the caller once the lock is released.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::inputs::{IssueChanges, NewIssue, NewLabel, NewState, NewTeam, NewUser};
use super::model::*;
use super::status::{SessionStatus, SessionTiming, derive_status};

/// A change the simulator refuses. GraphQL reports it as `INPUT_ERROR`, the
/// control API as HTTP 404 / 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("Entity not found: {entity}")]
    NotFound { entity: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
}

impl SimError {
    pub fn not_found(entity: &'static str, id: &str) -> SimError {
        SimError::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

/// A webhook waiting to be sent: the `Linear-Event` header and the body
/// without `webhookTimestamp` (set per attempt).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event: String,
    pub body: Value,
}

/// Fixed identities of the simulated workspace and app.
#[derive(Debug, Clone)]
pub struct Identity {
    pub organization_id: String,
    pub organization_name: String,
    pub url_key: String,
    pub agent_user_id: String,
    pub agent_name: String,
    pub default_user_id: String,
    pub oauth_client_id: String,
    /// The webhook *configuration* id: identical on every delivery.
    pub webhook_id: String,
}

pub struct World {
    pub identity: Identity,
    pub timing: SessionTiming,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub states: Vec<WorkflowState>,
    pub labels: Vec<Label>,
    pub projects: Vec<Project>,
    pub issues: Vec<Issue>,
    pub attachments: Vec<Attachment>,
    pub comments: Vec<Comment>,
    pub relations: Vec<Relation>,
    pub sessions: Vec<Session>,
    pub activities: Vec<Activity>,
    pub outbox: Vec<Outgoing>,
    /// The app is installed here. Revoking it stops this organization's
    /// webhooks (Linear sends an uninstalled app nothing) until it is
    /// installed again.
    pub app_installed: bool,
}

fn new_id(given: Option<String>) -> String {
    given.unwrap_or_else(|| Uuid::new_v4().to_string())
}

const DEFAULT_STATES: &[(&str, &str, &str)] = &[
    ("Backlog", "backlog", "#bec2c8"),
    ("Todo", "unstarted", "#e2e2e2"),
    ("In Progress", "started", "#f2c94c"),
    ("In Review", "started", "#0f783c"),
    ("Done", "completed", "#5e6ad2"),
    ("Canceled", "canceled", "#95a2b3"),
    ("Duplicate", "duplicate", "#95a2b3"),
];

const ACTIVITY_TYPES: &[&str] = &["thought", "action", "elicitation", "response", "error"];
const SIGNALS: &[&str] = &["auth", "continue", "select", "stop"];

impl World {
    pub fn new(identity: Identity, timing: SessionTiming) -> World {
        let now = Utc::now();
        let users = vec![
            User {
                id: identity.agent_user_id.clone(),
                name: identity.agent_name.clone(),
                email: format!("{}@oauthapp.linear.app", identity.agent_name),
                app: true,
                guest: false,
                team_ids: None,
                created_at: now,
            },
            User {
                id: identity.default_user_id.clone(),
                name: "Dana Reyes".into(),
                email: "dana@acme.dev".into(),
                app: false,
                guest: false,
                team_ids: None,
                created_at: now,
            },
        ];
        World {
            identity,
            timing,
            users,
            teams: vec![],
            states: vec![],
            labels: vec![],
            projects: vec![],
            issues: vec![],
            attachments: vec![],
            comments: vec![],
            relations: vec![],
            sessions: vec![],
            activities: vec![],
            outbox: vec![],
            app_installed: true,
        }
    }

    /// The webhooks to send now; dropped while the app is not installed.
    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        let outbox = std::mem::take(&mut self.outbox);
        if self.app_installed { outbox } else { vec![] }
    }

    // ---- lookups ----------------------------------------------------------

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams
            .iter()
            .find(|t| t.id == id || t.key.eq_ignore_ascii_case(id))
    }
    pub fn state(&self, id: &str) -> Option<&WorkflowState> {
        self.states.iter().find(|s| s.id == id)
    }
    pub fn label(&self, id: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == id)
    }
    pub fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }
    /// By UUID or identifier (`ENG-142`), like Linear.
    pub fn issue(&self, id: &str) -> Option<&Issue> {
        self.issues
            .iter()
            .find(|i| i.id == id || i.identifier.eq_ignore_ascii_case(id))
    }
    fn issue_index(&self, id: &str) -> Result<usize, SimError> {
        self.issues
            .iter()
            .position(|i| i.id == id || i.identifier.eq_ignore_ascii_case(id))
            .ok_or_else(|| SimError::not_found("Issue", id))
    }
    pub fn comment(&self, id: &str) -> Option<&Comment> {
        self.comments.iter().find(|c| c.id == id)
    }
    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }
    pub fn activity(&self, id: &str) -> Option<&Activity> {
        self.activities.iter().find(|a| a.id == id)
    }
    pub fn session_activities(&self, session_id: &str) -> Vec<&Activity> {
        self.activities
            .iter()
            .filter(|a| a.session_id == session_id)
            .collect()
    }
    /// The most recent session on an issue (for per-session statistics).
    pub fn latest_session_for_issue(&self, issue_id: &str) -> Option<&Session> {
        let issue = self.issue(issue_id)?;
        self.sessions
            .iter()
            .rev()
            .find(|s| s.issue_id.as_deref() == Some(issue.id.as_str()))
    }
    pub fn session_status(&self, session_id: &str, now: DateTime<Utc>) -> SessionStatus {
        derive_status(&self.session_activities(session_id), now, self.timing)
    }

    // ---- scenario building -------------------------------------------------

    pub fn create_user(&mut self, input: NewUser) -> User {
        let id = new_id(input.id);
        let email = input
            .email
            .unwrap_or_else(|| format!("{}@acme.dev", input.name.to_lowercase().replace(' ', ".")));
        let team_ids = input.teams.map(|teams| {
            teams
                .iter()
                .map(|t| {
                    self.team(t)
                        .map(|x| x.id.clone())
                        .unwrap_or_else(|| t.clone())
                })
                .collect()
        });
        let user = User {
            id,
            name: input.name,
            email,
            app: false,
            guest: input.guest,
            team_ids,
            created_at: Utc::now(),
        };
        self.users.push(user.clone());
        user
    }

    pub fn create_team(&mut self, input: NewTeam) -> Result<Team, SimError> {
        if input.key.is_empty() {
            return Err(SimError::Invalid("team key must not be empty".into()));
        }
        if self.team(&input.key).is_some() {
            return Err(SimError::Invalid(format!(
                "team key {} is taken",
                input.key
            )));
        }
        let now = Utc::now();
        let team = Team {
            id: new_id(input.id),
            name: if input.name.is_empty() {
                input.key.clone()
            } else {
                input.name
            },
            key: input.key,
            next_issue_number: 1,
            created_at: now,
        };
        let states: Vec<NewState> = if input.states.is_empty() {
            DEFAULT_STATES
                .iter()
                .map(|(name, ty, color)| NewState {
                    name: (*name).into(),
                    state_type: (*ty).into(),
                    color: Some((*color).into()),
                    ..NewState::default()
                })
                .collect()
        } else {
            input.states
        };
        for (i, s) in states.into_iter().enumerate() {
            self.states.push(WorkflowState {
                id: new_id(s.id),
                team_id: team.id.clone(),
                name: s.name,
                state_type: s.state_type,
                position: s.position.unwrap_or(i as f64),
                color: s.color.unwrap_or_else(|| "#bec2c8".into()),
                created_at: now,
            });
        }
        self.teams.push(team.clone());
        Ok(team)
    }

    pub fn create_label(&mut self, input: NewLabel) -> Result<Label, SimError> {
        if input.name.is_empty() {
            return Err(SimError::Invalid("label name must not be empty".into()));
        }
        if let Some(team) = &input.team_id {
            self.team(team)
                .ok_or_else(|| SimError::not_found("Team", team))?;
        }
        if let Some(parent) = &input.parent_id {
            self.label(parent)
                .ok_or_else(|| SimError::not_found("IssueLabel", parent))?;
        }
        let label = Label {
            id: new_id(input.id),
            name: input.name,
            color: input.color.unwrap_or_else(|| "#eb5757".into()),
            team_id: input.team_id,
            parent_id: input.parent_id,
            is_group: input.is_group,
            created_at: Utc::now(),
        };
        self.labels.push(label.clone());
        Ok(label)
    }

    fn project_by_name(&mut self, name: &str) -> String {
        if let Some(p) = self.projects.iter().find(|p| p.name == name) {
            return p.id.clone();
        }
        let project = Project {
            id: Uuid::new_v4().to_string(),
            name: name.into(),
            created_at: Utc::now(),
        };
        let id = project.id.clone();
        self.projects.push(project);
        id
    }

    fn check_labels(&self, ids: &[String]) -> Result<(), SimError> {
        for id in ids {
            let label = self
                .label(id)
                .ok_or_else(|| SimError::not_found("IssueLabel", id))?;
            if label.is_group {
                return Err(SimError::Invalid(format!(
                    "label group {} cannot be applied to issues",
                    label.name
                )));
            }
        }
        Ok(())
    }

    /// Creates an issue (Issue `create` webhook); a `delegate_id` equal to
    /// the agent also starts a session (`created`).
    pub fn create_issue(&mut self, input: NewIssue) -> Result<Issue, SimError> {
        let team_id = match &input.team_id {
            Some(t) => self
                .team(t)
                .ok_or_else(|| SimError::not_found("Team", t))?
                .id
                .clone(),
            None => self
                .teams
                .first()
                .ok_or_else(|| SimError::Invalid("create a team first".into()))?
                .id
                .clone(),
        };
        let state_id = match &input.state_id {
            Some(s) => {
                let state = self
                    .state(s)
                    .ok_or_else(|| SimError::not_found("WorkflowState", s))?;
                if state.team_id != team_id {
                    return Err(SimError::Invalid("state belongs to another team".into()));
                }
                state.id.clone()
            }
            None => self.default_state(&team_id)?,
        };
        self.check_labels(&input.label_ids)?;
        let parent_id = match &input.parent_id {
            Some(p) => Some(
                self.issue(p)
                    .ok_or_else(|| SimError::not_found("Issue", p))?
                    .id
                    .clone(),
            ),
            None => None,
        };
        let project_id = match (&input.project_id, &input.project_name) {
            (Some(p), _) => Some(
                self.project(p)
                    .ok_or_else(|| SimError::not_found("Project", p))?
                    .id
                    .clone(),
            ),
            (None, Some(name)) => Some(self.project_by_name(name)),
            (None, None) => None,
        };
        for user in [&input.assignee_id, &input.delegate_id, &input.creator_id]
            .into_iter()
            .flatten()
        {
            self.user(user)
                .ok_or_else(|| SimError::not_found("User", user))?;
        }
        let creator_id = input
            .creator_id
            .clone()
            .unwrap_or_else(|| self.identity.default_user_id.clone());
        let team = self
            .teams
            .iter_mut()
            .find(|t| t.id == team_id)
            .expect("team checked");
        let number = team.next_issue_number;
        team.next_issue_number += 1;
        let identifier = format!("{}-{number}", team.key);
        let now = Utc::now();
        let issue = Issue {
            id: new_id(input.id),
            team_id,
            number,
            identifier,
            title: input.title,
            description: input.description,
            priority: input.priority.unwrap_or(0),
            state_id,
            label_ids: input.label_ids,
            parent_id,
            project_id,
            assignee_id: input.assignee_id,
            delegate_id: None,
            creator_id: Some(creator_id.clone()),
            created_at: now,
            updated_at: now,
        };
        self.issues.push(issue.clone());
        for a in input.attachments {
            self.attachments.push(Attachment {
                id: Uuid::new_v4().to_string(),
                issue_id: issue.id.clone(),
                title: a.title,
                subtitle: a.subtitle,
                url: a.url,
                source_type: a.source_type,
                metadata: a.metadata.unwrap_or_else(|| json!({})),
                created_at: now,
            });
        }
        let body = self.entity_event(
            "create",
            "Issue",
            self.issue_payload(&issue),
            None,
            Some(&creator_id),
        );
        self.outbox.push(body);
        for c in input.comments {
            let author = c.user_id.unwrap_or_else(|| creator_id.clone());
            self.create_comment(&issue.id, c.body, c.parent_id, Some(author))?;
        }
        if let Some(delegate) = input.delegate_id {
            let changes = IssueChanges {
                delegate_id: Some(Some(delegate)),
                ..IssueChanges::default()
            };
            return self.update_issue(&issue.id, changes, &creator_id);
        }
        Ok(issue)
    }

    /// The state a new issue lands in: the first `backlog` (else `triage`,
    /// else `unstarted`) state by position.
    fn default_state(&self, team_id: &str) -> Result<String, SimError> {
        for ty in ["backlog", "triage", "unstarted"] {
            if let Some(s) = self
                .states
                .iter()
                .filter(|s| s.team_id == team_id && s.state_type == ty)
                .min_by(|a, b| a.position.total_cmp(&b.position))
            {
                return Ok(s.id.clone());
            }
        }
        self.states
            .iter()
            .find(|s| s.team_id == team_id)
            .map(|s| s.id.clone())
            .ok_or_else(|| SimError::Invalid("team has no workflow states".into()))
    }

    /// Applies `changes` as `actor_id`. Sends an Issue `update` webhook with
    /// `updatedFrom`; delegation to the agent starts a session; removing the
    /// agent as delegate notifies it (`issueUnassignedFromYou`).
    pub fn update_issue(
        &mut self,
        id: &str,
        changes: IssueChanges,
        actor_id: &str,
    ) -> Result<Issue, SimError> {
        let idx = self.issue_index(id)?;
        let before = self.issues[idx].clone();
        if let Some(state) = &changes.state_id {
            let s = self
                .state(state)
                .ok_or_else(|| SimError::not_found("WorkflowState", state))?;
            if s.team_id != before.team_id {
                return Err(SimError::Invalid("state belongs to another team".into()));
            }
        }
        for user in [&changes.delegate_id, &changes.assignee_id]
            .into_iter()
            .flatten()
            .flatten()
        {
            self.user(user)
                .ok_or_else(|| SimError::not_found("User", user))?;
        }
        let parent = match &changes.parent_id {
            Some(Some(p)) => {
                let parent = self
                    .issue(p)
                    .ok_or_else(|| SimError::not_found("Issue", p))?;
                if parent.id == before.id {
                    return Err(SimError::Invalid(
                        "an issue cannot be its own parent".into(),
                    ));
                }
                Some(Some(parent.id.clone()))
            }
            Some(None) => Some(None),
            None => None,
        };
        if let Some(ids) = &changes.label_ids {
            self.check_labels(ids)?;
        }
        self.check_labels(&changes.added_label_ids)?;

        let mut from = serde_json::Map::new();
        let issue = &mut self.issues[idx];
        if let Some(t) = changes.title.filter(|t| *t != issue.title) {
            from.insert("title".into(), json!(issue.title));
            issue.title = t;
        }
        if let Some(d) = changes.description.filter(|d| *d != issue.description) {
            from.insert("description".into(), json!(issue.description));
            issue.description = d;
        }
        if let Some(p) = changes.priority.filter(|p| *p != issue.priority) {
            from.insert("priority".into(), json!(issue.priority));
            issue.priority = p;
        }
        if let Some(s) = changes.state_id.filter(|s| *s != issue.state_id) {
            from.insert("stateId".into(), json!(issue.state_id));
            issue.state_id = s;
        }
        if let Some(d) = changes.delegate_id.filter(|d| *d != issue.delegate_id) {
            from.insert("delegateId".into(), json!(issue.delegate_id));
            issue.delegate_id = d;
        }
        if let Some(a) = changes.assignee_id.filter(|a| *a != issue.assignee_id) {
            from.insert("assigneeId".into(), json!(issue.assignee_id));
            issue.assignee_id = a;
        }
        if let Some(p) = parent.filter(|p| *p != issue.parent_id) {
            from.insert("parentId".into(), json!(issue.parent_id));
            issue.parent_id = p;
        }
        let mut labels = changes.label_ids.unwrap_or_else(|| issue.label_ids.clone());
        for l in changes.added_label_ids {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        labels.retain(|l| !changes.removed_label_ids.contains(l));
        if labels != issue.label_ids {
            from.insert("labelIds".into(), json!(issue.label_ids));
            issue.label_ids = labels;
        }
        if from.is_empty() {
            return Ok(issue.clone());
        }
        from.insert("updatedAt".into(), json!(issue.updated_at));
        issue.updated_at = Utc::now();
        let after = issue.clone();

        let event = self.entity_event(
            "update",
            "Issue",
            self.issue_payload(&after),
            Some(Value::Object(from)),
            Some(actor_id),
        );
        self.outbox.push(event);

        let agent = self.identity.agent_user_id.clone();
        let was = before.delegate_id.as_deref() == Some(agent.as_str());
        let is = after.delegate_id.as_deref() == Some(agent.as_str());
        if is && !was {
            self.start_session(&after.id, actor_id, None)?;
        }
        if was && !is {
            let notification = self.notification("issueUnassignedFromYou", &after, actor_id);
            self.outbox.push(notification);
        }
        Ok(after)
    }

    /// Deletes an issue (Issue `remove` webhook). Its sessions stay, so
    /// activities for them keep working as they do on Linear until archived.
    pub fn delete_issue(&mut self, id: &str, actor_id: &str) -> Result<(), SimError> {
        let idx = self.issue_index(id)?;
        let issue = self.issues.remove(idx);
        let event = self.entity_event(
            "remove",
            "Issue",
            self.issue_payload(&issue),
            None,
            Some(actor_id),
        );
        self.outbox.push(event);
        Ok(())
    }

    pub fn create_comment(
        &mut self,
        issue_id: &str,
        body: String,
        parent_id: Option<String>,
        user_id: Option<String>,
    ) -> Result<Comment, SimError> {
        let issue_id = self
            .issue(issue_id)
            .ok_or_else(|| SimError::not_found("Issue", issue_id))?
            .id
            .clone();
        if body.trim().is_empty() {
            return Err(SimError::Invalid("comment body must not be empty".into()));
        }
        if let Some(p) = &parent_id {
            let parent = self
                .comment(p)
                .ok_or_else(|| SimError::not_found("Comment", p))?;
            if parent.issue_id != issue_id {
                return Err(SimError::Invalid(
                    "parent comment is on another issue".into(),
                ));
            }
        }
        if let Some(u) = &user_id {
            self.user(u).ok_or_else(|| SimError::not_found("User", u))?;
        }
        let now = Utc::now();
        let comment = Comment {
            id: Uuid::new_v4().to_string(),
            issue_id,
            body,
            parent_id,
            user_id: user_id.clone(),
            created_at: now,
            updated_at: now,
        };
        self.comments.push(comment.clone());
        let event = self.entity_event(
            "create",
            "Comment",
            self.comment_payload(&comment),
            None,
            user_id.as_deref(),
        );
        self.outbox.push(event);
        Ok(comment)
    }

    pub fn create_relation(
        &mut self,
        issue_id: &str,
        related_issue_id: &str,
        relation_type: &str,
        id: Option<String>,
    ) -> Result<Relation, SimError> {
        let a = self
            .issue(issue_id)
            .ok_or_else(|| SimError::not_found("Issue", issue_id))?
            .id
            .clone();
        let b = self
            .issue(related_issue_id)
            .ok_or_else(|| SimError::not_found("Issue", related_issue_id))?
            .id
            .clone();
        if !["blocks", "duplicate", "related", "similar"].contains(&relation_type) {
            return Err(SimError::Invalid(format!(
                "unknown relation type {relation_type}"
            )));
        }
        if a == b {
            return Err(SimError::Invalid("an issue cannot relate to itself".into()));
        }
        let relation = Relation {
            id: new_id(id),
            issue_id: a,
            related_issue_id: b,
            relation_type: relation_type.into(),
            created_at: Utc::now(),
        };
        self.relations.push(relation.clone());
        Ok(relation)
    }

    // ---- agent sessions ------------------------------------------------------

    /// Starts a session on an issue (delegation, or an @mention when
    /// `mention_comment` is given) and queues `created`.
    pub fn start_session(
        &mut self,
        issue_id: &str,
        creator_id: &str,
        mention_comment: Option<String>,
    ) -> Result<Session, SimError> {
        let issue = self
            .issue(issue_id)
            .ok_or_else(|| SimError::not_found("Issue", issue_id))?
            .clone();
        let comment_id = match mention_comment {
            Some(c) => c,
            None => {
                // Linear's authorless root comment for a delegation.
                let now = Utc::now();
                let root = Comment {
                    id: Uuid::new_v4().to_string(),
                    issue_id: issue.id.clone(),
                    body: format!(
                        "This thread is for an agent session with {}.",
                        self.identity.agent_name
                    ),
                    parent_id: None,
                    user_id: None,
                    created_at: now,
                    updated_at: now,
                };
                let id = root.id.clone();
                self.comments.push(root);
                id
            }
        };
        let now = Utc::now();
        let session = Session {
            id: Uuid::new_v4().to_string(),
            issue_id: Some(issue.id.clone()),
            comment_id: Some(comment_id),
            creator_id: Some(creator_id.to_string()),
            external_urls: vec![],
            plan: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            first_agent_signal_at: None,
        };
        self.sessions.push(session.clone());
        let event = self.session_event("created", &session, None);
        self.outbox.push(event);
        Ok(session)
    }

    /// A user @mentions the agent in a new comment on `issue_id`.
    pub fn mention(
        &mut self,
        issue_id: &str,
        user_id: &str,
        body: String,
    ) -> Result<Session, SimError> {
        let comment = self.create_comment(issue_id, body, None, Some(user_id.to_string()))?;
        self.start_session(&comment.issue_id, user_id, Some(comment.id))
    }

    /// A user writes into the session thread (`prompted`); `stop` sends the
    /// "Send stop request" signal.
    pub fn prompt(
        &mut self,
        session_id: &str,
        user_id: &str,
        body: String,
        stop: bool,
    ) -> Result<Activity, SimError> {
        let session = self
            .session(session_id)
            .ok_or_else(|| SimError::not_found("AgentSession", session_id))?
            .clone();
        let source_comment = match (&session.issue_id, &session.comment_id) {
            (Some(issue), Some(root)) if self.issue(issue).is_some() => Some(
                self.create_comment(
                    issue,
                    body.clone(),
                    Some(root.clone()),
                    Some(user_id.to_string()),
                )?
                .id,
            ),
            _ => None,
        };
        let now = Utc::now();
        let activity = Activity {
            id: Uuid::new_v4().to_string(),
            session_id: session.id.clone(),
            content: json!({"type": "prompt", "body": body}),
            ephemeral: false,
            signal: stop.then(|| "stop".to_string()),
            signal_metadata: None,
            user_id: user_id.to_string(),
            source_comment_id: source_comment,
            superseded: false,
            created_at: now,
        };
        self.activities.push(activity.clone());
        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session.id) {
            s.updated_at = now;
        }
        let session = self.session(session_id).expect("exists").clone();
        let event = self.session_event("prompted", &session, Some(&activity));
        self.outbox.push(event);
        Ok(activity)
    }

    /// `agentActivityCreate`, validated like Linear: agents cannot write
    /// `prompt`, only `thought`/`action` may be ephemeral, `action` needs
    /// `action` and `parameter`, others a `body`.
    pub fn create_activity(
        &mut self,
        session_id: &str,
        content: Value,
        ephemeral: bool,
        signal: Option<String>,
        signal_metadata: Option<Value>,
        id: Option<String>,
    ) -> Result<Activity, SimError> {
        // A client-chosen id makes retries idempotent.
        if let Some(existing) = id.as_deref().and_then(|id| self.activity(id)) {
            return Ok(existing.clone());
        }
        let session = self
            .session(session_id)
            .ok_or_else(|| SimError::not_found("AgentSession", session_id))?
            .clone();
        let kind = content
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| SimError::Invalid("content.type is required".into()))?
            .to_string();
        if !ACTIVITY_TYPES.contains(&kind.as_str()) {
            return Err(SimError::Invalid(format!(
                "content.type {kind:?} cannot be created by an agent"
            )));
        }
        let text = |f: &str| content.get(f).and_then(Value::as_str).is_some();
        if kind == "action" {
            if !text("action") || !text("parameter") {
                return Err(SimError::Invalid(
                    "action content needs action and parameter".into(),
                ));
            }
        } else if !text("body") {
            return Err(SimError::Invalid(format!("{kind} content needs a body")));
        }
        if ephemeral && !["thought", "action"].contains(&kind.as_str()) {
            return Err(SimError::Invalid(format!(
                "{kind} activities cannot be ephemeral"
            )));
        }
        if let Some(sig) = &signal {
            if !SIGNALS.contains(&sig.as_str()) {
                return Err(SimError::Invalid(format!("unknown signal {sig}")));
            }
            if sig == "select"
                && signal_metadata
                    .as_ref()
                    .and_then(|m| m.get("options"))
                    .and_then(Value::as_array)
                    .is_none_or(|o| {
                        o.iter()
                            .any(|opt| opt.get("value").and_then(Value::as_str).is_none())
                    })
            {
                return Err(SimError::Invalid(
                    "select signal needs signalMetadata.options[].value".into(),
                ));
            }
        }
        let agent = self.identity.agent_user_id.clone();
        for a in self.activities.iter_mut() {
            if a.session_id == session.id && a.ephemeral && a.user_id == agent {
                a.superseded = true;
            }
        }
        let now = Utc::now();
        let activity = Activity {
            id: new_id(id),
            session_id: session.id.clone(),
            content: content.clone(),
            ephemeral,
            signal,
            signal_metadata,
            user_id: agent.clone(),
            source_comment_id: None,
            superseded: false,
            created_at: now,
        };
        self.activities.push(activity.clone());
        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session.id) {
            s.updated_at = now;
            s.first_agent_signal_at.get_or_insert(now);
            s.started_at.get_or_insert(now);
            if kind == "response" || kind == "error" {
                s.ended_at = Some(now);
            }
        }
        // Linear posts elicitations, responses and errors into the thread.
        if ["elicitation", "response", "error"].contains(&kind.as_str())
            && let (Some(issue), Some(root)) = (&session.issue_id, &session.comment_id)
            && self.issue(issue).is_some()
        {
            let body = content["body"].as_str().unwrap_or_default().to_string();
            self.create_comment(issue, body, Some(root.clone()), Some(agent))?;
        }
        Ok(activity)
    }

    /// `agentSessionUpdate`: `externalUrls` replaces the list (URLs must be
    /// unique) and wins over `addedExternalUrls`/`removedExternalUrls`;
    /// `plan` is stored whole.
    pub fn update_session(
        &mut self,
        id: &str,
        external_urls: Option<Vec<ExternalUrl>>,
        added: Vec<ExternalUrl>,
        removed: Vec<String>,
        plan: Option<Value>,
    ) -> Result<Session, SimError> {
        let session = self
            .sessions
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| SimError::not_found("AgentSession", id))?;
        let mut urls = match external_urls {
            Some(list) => list,
            None => {
                let mut list = session.external_urls.clone();
                list.retain(|u| !removed.contains(&u.url));
                list.extend(added);
                list
            }
        };
        let mut seen = std::collections::HashSet::new();
        urls.retain(|u| seen.insert(u.url.clone()));
        let now = Utc::now();
        if urls != session.external_urls {
            session.first_agent_signal_at.get_or_insert(now);
        }
        session.external_urls = urls;
        if let Some(plan) = plan {
            session.plan = Some(plan);
        }
        session.updated_at = now;
        Ok(session.clone())
    }
}
