//! Root query and mutation fields: the operations Cyrus and the official
//! SDK use. Everything below a root field is answered by [`super::exec`].

use std::collections::BTreeSet;

use apollo_compiler::ast;
use serde_json::{Map, Value, json};

use super::exec::{Kind, Obj, Request, Selector, Val, arguments};
use super::inputs::{IssueChanges, NewIssue, NewLabel};
use super::model::ExternalUrl;
use super::world::{SimError, World};

pub const QUERIES: &[&str] = &[
    "issue",
    "issues",
    "team",
    "teams",
    "viewer",
    "user",
    "users",
    "organization",
    "workflowState",
    "workflowStates",
    "issueLabel",
    "issueLabels",
    "comment",
    "comments",
    "agentSession",
    "agentSessions",
    "agentActivity",
    "agentActivities",
    "project",
    "rateLimitStatus",
];
pub const MUTATIONS: &[&str] = &[
    "agentActivityCreate",
    "agentSessionUpdate",
    "agentSessionCreateOnIssue",
    "commentCreate",
    "issueUpdate",
    "issueCreate",
    "issueRelationCreate",
    "issueAddLabel",
    "issueRemoveLabel",
    "issueLabelCreate",
    "issueDelete",
];

/// The result of running one operation.
pub struct Executed {
    /// `{data, errors?}`.
    pub body: Value,
    /// Sessions the request touched (directly, or through their issue):
    /// feeds the per-session request counts.
    pub sessions: BTreeSet<String>,
}

/// Names of root fields the simulator does not answer (a validation error,
/// as Linear would give for a field its schema lacks).
pub fn unknown_root_fields(op: &ast::OperationDefinition) -> Vec<String> {
    let known = match op.operation_type {
        ast::OperationType::Mutation => MUTATIONS,
        _ => QUERIES,
    };
    op.selection_set
        .iter()
        .filter_map(|s| match s {
            ast::Selection::Field(f)
                if f.name != "__typename" && !known.contains(&f.name.as_str()) =>
            {
                Some(f.name.to_string())
            }
            _ => None,
        })
        .collect()
}

/// The `INPUT_ERROR` shape of `linear-agent-api.md` §10.
pub fn input_error(err: &SimError, path: &str) -> Value {
    let user_message = match err {
        SimError::NotFound { entity, .. } => format!("Could not find referenced {entity}."),
        SimError::Invalid(m) => m.clone(),
    };
    json!({
        "message": err.to_string(),
        "path": [path],
        "extensions": {
            "type": "invalid input",
            "code": "INPUT_ERROR",
            "statusCode": 400,
            "userError": true,
            "userPresentableMessage": user_message,
        }
    })
}

pub fn execute(world: &mut World, req: &Request, op: &ast::OperationDefinition) -> Executed {
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut sessions = BTreeSet::new();
    let mut failed = 0;
    let mut fields = 0;
    for sel in &op.selection_set {
        let ast::Selection::Field(field) = sel else {
            continue;
        };
        let key = field.alias.as_ref().unwrap_or(&field.name).to_string();
        if field.name == "__typename" {
            let tn = if op.operation_type == ast::OperationType::Mutation {
                "Mutation"
            } else {
                "Query"
            };
            data.insert(key, json!(tn));
            continue;
        }
        fields += 1;
        let args = arguments(field, &req.variables, op);
        let resolved = resolve_root(world, field.name.as_str(), &args, &mut sessions);
        match resolved {
            Ok(val) => {
                let selector = Selector {
                    resolver: &*world,
                    op,
                    variables: &req.variables,
                    fragments: req.fragments(),
                };
                data.insert(key, selector.select(&val, &args, &field.selection_set));
            }
            Err(e) => {
                failed += 1;
                errors.push(input_error(&e, field.name.as_str()));
                data.insert(key, Value::Null);
            }
        }
    }
    let mut body = Map::new();
    if !errors.is_empty() {
        body.insert("errors".into(), Value::Array(errors));
    }
    let all_failed = fields > 0 && failed == fields;
    body.insert(
        "data".into(),
        if all_failed {
            Value::Null
        } else {
            Value::Object(data)
        },
    );
    Executed {
        body: Value::Object(body),
        sessions,
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, SimError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SimError::Invalid(format!("argument {name} is required")))
}

fn input(args: &Map<String, Value>) -> Result<&Map<String, Value>, SimError> {
    args.get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| SimError::Invalid("argument input is required".into()))
}

fn opt_str(m: &Map<String, Value>, name: &str) -> Option<String> {
    m.get(name).and_then(Value::as_str).map(str::to_string)
}

/// `Some(None)` when the key is present and null (clears the field).
fn nullable_str(m: &Map<String, Value>, name: &str) -> Option<Option<String>> {
    m.get(name).map(|v| v.as_str().map(str::to_string))
}

fn str_list(m: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    m.get(name).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

fn urls(m: &Map<String, Value>, name: &str) -> Result<Option<Vec<ExternalUrl>>, SimError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| SimError::Invalid(format!("{name}: {e}"))),
    }
}

fn payload(entity_field: &'static str, entity: Val) -> Val {
    Val::Obj(
        Obj::new("Payload")
            .with("success", Val::leaf(true))
            .with("lastSyncId", Val::leaf(1))
            .with(entity_field, entity),
    )
}

fn all(kind: Kind, ids: impl Iterator<Item = String>) -> Val {
    Val::Conn(ids.map(|id| Val::Ref(kind, id)).collect())
}

fn touch_issue(world: &World, issue: &str, sessions: &mut BTreeSet<String>) {
    if let Some(s) = world.latest_session_for_issue(issue) {
        sessions.insert(s.id.clone());
    }
}

fn resolve_root(
    world: &mut World,
    name: &str,
    args: &Map<String, Value>,
    sessions: &mut BTreeSet<String>,
) -> Result<Val, SimError> {
    let agent = world.identity.agent_user_id.clone();
    match name {
        // ---- queries ----
        "viewer" => Ok(Val::Ref(Kind::User, agent)),
        "organization" => Ok(Val::Ref(Kind::Organization, String::new())),
        "issue" => {
            let id = str_arg(args, "id")?;
            touch_issue(world, id, sessions);
            let issue = world
                .issue(id)
                .ok_or_else(|| SimError::not_found("Issue", id))?;
            Ok(Val::Ref(Kind::Issue, issue.id.clone()))
        }
        "issues" => Ok(all(Kind::Issue, world.issues.iter().map(|i| i.id.clone()))),
        "team" => {
            let id = str_arg(args, "id")?;
            let team = world
                .team(id)
                .ok_or_else(|| SimError::not_found("Team", id))?;
            Ok(Val::Ref(Kind::Team, team.id.clone()))
        }
        "teams" => Ok(all(Kind::Team, world.teams.iter().map(|x| x.id.clone()))),
        "user" => {
            let id = str_arg(args, "id")?;
            world
                .user(id)
                .ok_or_else(|| SimError::not_found("User", id))?;
            Ok(Val::Ref(Kind::User, id.to_string()))
        }
        "users" => Ok(all(Kind::User, world.users.iter().map(|u| u.id.clone()))),
        "workflowState" => {
            let id = str_arg(args, "id")?;
            world
                .state(id)
                .ok_or_else(|| SimError::not_found("WorkflowState", id))?;
            Ok(Val::Ref(Kind::State, id.to_string()))
        }
        "workflowStates" => Ok(all(Kind::State, world.states.iter().map(|s| s.id.clone()))),
        "issueLabel" => {
            let id = str_arg(args, "id")?;
            world
                .label(id)
                .ok_or_else(|| SimError::not_found("IssueLabel", id))?;
            Ok(Val::Ref(Kind::Label, id.to_string()))
        }
        "issueLabels" => Ok(all(Kind::Label, world.labels.iter().map(|l| l.id.clone()))),
        "project" => {
            let id = str_arg(args, "id")?;
            world
                .project(id)
                .ok_or_else(|| SimError::not_found("Project", id))?;
            Ok(Val::Ref(Kind::Project, id.to_string()))
        }
        "comment" => {
            let id = str_arg(args, "id")?;
            world
                .comment(id)
                .ok_or_else(|| SimError::not_found("Comment", id))?;
            Ok(Val::Ref(Kind::Comment, id.to_string()))
        }
        "comments" => Ok(all(
            Kind::Comment,
            world.comments.iter().map(|c| c.id.clone()),
        )),
        "agentSession" => {
            let id = str_arg(args, "id")?;
            world
                .session(id)
                .ok_or_else(|| SimError::not_found("AgentSession", id))?;
            sessions.insert(id.to_string());
            Ok(Val::Ref(Kind::Session, id.to_string()))
        }
        "agentSessions" => Ok(all(
            Kind::Session,
            world.sessions.iter().map(|s| s.id.clone()),
        )),
        "agentActivity" => {
            let id = str_arg(args, "id")?;
            let a = world
                .activity(id)
                .ok_or_else(|| SimError::not_found("AgentActivity", id))?;
            sessions.insert(a.session_id.clone());
            Ok(Val::Ref(Kind::Activity, id.to_string()))
        }
        "agentActivities" => Ok(all(
            Kind::Activity,
            world
                .activities
                .iter()
                .filter(|a| !a.superseded)
                .map(|a| a.id.clone()),
        )),
        "rateLimitStatus" => Ok(Val::Leaf(Value::Null)),

        // ---- mutations ----
        "agentActivityCreate" => {
            let input = input(args)?;
            let session = str_arg(input, "agentSessionId")?;
            sessions.insert(session.to_string());
            let content = input
                .get("content")
                .filter(|c| c.is_object())
                .cloned()
                .ok_or_else(|| SimError::Invalid("content must be an object".into()))?;
            let activity = world.create_activity(
                session,
                content,
                input
                    .get("ephemeral")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                opt_str(input, "signal"),
                input
                    .get("signalMetadata")
                    .filter(|v| !v.is_null())
                    .cloned(),
                opt_str(input, "id"),
            )?;
            Ok(payload(
                "agentActivity",
                Val::Ref(Kind::Activity, activity.id),
            ))
        }
        "agentSessionUpdate" => {
            let id = str_arg(args, "id")?;
            sessions.insert(id.to_string());
            let input = input(args)?;
            let session = world.update_session(
                id,
                urls(input, "externalUrls")?,
                urls(input, "addedExternalUrls")?.unwrap_or_default(),
                str_list(input, "removedExternalUrls").unwrap_or_default(),
                input.get("plan").filter(|v| !v.is_null()).cloned(),
            )?;
            Ok(payload("agentSession", Val::Ref(Kind::Session, session.id)))
        }
        "agentSessionCreateOnIssue" => {
            let input = input(args)?;
            let issue = str_arg(input, "issueId")?;
            let session = world.start_session(issue, &agent, None)?;
            sessions.insert(session.id.clone());
            if let Some(list) = urls(input, "externalUrls")? {
                world.update_session(&session.id, Some(list), vec![], vec![], None)?;
            }
            Ok(payload("agentSession", Val::Ref(Kind::Session, session.id)))
        }
        "commentCreate" => {
            let input = input(args)?;
            let issue = str_arg(input, "issueId")?;
            touch_issue(world, issue, sessions);
            let body = str_arg(input, "body")?.to_string();
            let comment =
                world.create_comment(issue, body, opt_str(input, "parentId"), Some(agent))?;
            Ok(payload("comment", Val::Ref(Kind::Comment, comment.id)))
        }
        "issueUpdate" => {
            let id = str_arg(args, "id")?;
            touch_issue(world, id, sessions);
            let input = input(args)?;
            let changes = IssueChanges {
                title: opt_str(input, "title"),
                description: nullable_str(input, "description"),
                priority: input
                    .get("priority")
                    .and_then(Value::as_u64)
                    .map(|p| p.min(4) as u8),
                state_id: opt_str(input, "stateId"),
                delegate_id: nullable_str(input, "delegateId"),
                assignee_id: nullable_str(input, "assigneeId"),
                parent_id: nullable_str(input, "parentId"),
                label_ids: str_list(input, "labelIds"),
                added_label_ids: str_list(input, "addedLabelIds").unwrap_or_default(),
                removed_label_ids: str_list(input, "removedLabelIds").unwrap_or_default(),
            };
            let issue = world.update_issue(id, changes, &agent)?;
            Ok(payload("issue", Val::Ref(Kind::Issue, issue.id)))
        }
        "issueAddLabel" | "issueRemoveLabel" => {
            let id = str_arg(args, "id")?;
            touch_issue(world, id, sessions);
            let label = str_arg(args, "labelId")?.to_string();
            let mut changes = IssueChanges::default();
            if name == "issueAddLabel" {
                changes.added_label_ids = vec![label];
            } else {
                changes.removed_label_ids = vec![label];
            }
            let issue = world.update_issue(id, changes, &agent)?;
            Ok(payload("issue", Val::Ref(Kind::Issue, issue.id)))
        }
        "issueCreate" => {
            let input = input(args)?;
            let team = str_arg(input, "teamId")?.to_string();
            let new = NewIssue {
                id: opt_str(input, "id"),
                team_id: Some(team),
                title: opt_str(input, "title").unwrap_or_default(),
                description: opt_str(input, "description"),
                priority: input
                    .get("priority")
                    .and_then(Value::as_u64)
                    .map(|p| p.min(4) as u8),
                state_id: opt_str(input, "stateId"),
                label_ids: str_list(input, "labelIds").unwrap_or_default(),
                parent_id: opt_str(input, "parentId"),
                project_id: opt_str(input, "projectId"),
                assignee_id: opt_str(input, "assigneeId"),
                delegate_id: opt_str(input, "delegateId"),
                creator_id: Some(agent),
                ..NewIssue::default()
            };
            if let Some(parent) = &new.parent_id {
                touch_issue(world, parent, sessions);
            }
            let issue = world.create_issue(new)?;
            Ok(payload("issue", Val::Ref(Kind::Issue, issue.id)))
        }
        "issueDelete" => {
            let id = str_arg(args, "id")?;
            touch_issue(world, id, sessions);
            world.delete_issue(id, &agent)?;
            Ok(Val::Obj(
                Obj::new("Payload")
                    .with("success", Val::leaf(true))
                    .with("lastSyncId", Val::leaf(1)),
            ))
        }
        "issueRelationCreate" => {
            let input = input(args)?;
            let a = str_arg(input, "issueId")?;
            let b = str_arg(input, "relatedIssueId")?;
            let ty = str_arg(input, "type")?;
            touch_issue(world, a, sessions);
            let relation = world.create_relation(a, b, ty, opt_str(input, "id"))?;
            Ok(payload(
                "issueRelation",
                Val::Ref(Kind::Relation, relation.id),
            ))
        }
        "issueLabelCreate" => {
            let input = input(args)?;
            let label = world.create_label(NewLabel {
                id: opt_str(input, "id"),
                name: str_arg(input, "name")?.to_string(),
                color: opt_str(input, "color"),
                team_id: opt_str(input, "teamId"),
                parent_id: opt_str(input, "parentId"),
                is_group: input
                    .get("isGroup")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })?;
            Ok(payload("issueLabel", Val::Ref(Kind::Label, label.id)))
        }
        other => Err(SimError::Invalid(format!("Cannot query field \"{other}\""))),
    }
}
