//! Linear's object types as [`Obj`] field tables.
//!
//! Field names are Linear's (checked against the published SDL). Non-null
//! scalars the simulator does not model get plausible constants, because
//! the official SDK selects nearly every field of a type in its fragments.

use chrono::Utc;
use serde_json::{Value, json};

use super::exec::{Kind, Obj, ResolveRef, Val};
use super::model::*;
use super::status::is_unresponsive;
use super::world::World;

fn t<T: serde::Serialize>(v: T) -> Val {
    Val::Leaf(serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Fields every `Node` with timestamps has.
fn base(typename: &'static str, id: &str, created: Val, updated: Val) -> Obj {
    Obj::new(typename)
        .with("id", Val::leaf(id))
        .with("createdAt", created)
        .with("updatedAt", updated)
        .with("archivedAt", Val::Null)
}

impl ResolveRef for World {
    fn resolve_ref(&self, kind: Kind, id: &str) -> Option<Obj> {
        match kind {
            Kind::User => self.user(id).map(|u| self.user_obj(u)),
            Kind::Team => self.team(id).map(|x| self.team_obj(x)),
            Kind::State => self.state(id).map(|s| self.state_obj(s)),
            Kind::Label => self.label(id).map(|l| self.label_obj(l)),
            Kind::Project => self.project(id).map(|p| self.project_obj(p)),
            Kind::Issue => self.issue(id).map(|i| self.issue_obj(i)),
            Kind::Attachment => self
                .attachments
                .iter()
                .find(|a| a.id == id)
                .map(attachment_obj),
            Kind::Comment => self.comment(id).map(|c| self.comment_obj(c)),
            Kind::Relation => self.relations.iter().find(|r| r.id == id).map(relation_obj),
            Kind::Session => self.session(id).map(|s| self.session_obj(s)),
            Kind::Activity => self.activity(id).map(|a| self.activity_obj(a)),
            Kind::Organization => Some(self.organization_obj()),
        }
    }
}

impl World {
    pub(crate) fn organization_obj(&self) -> Obj {
        let id = &self.identity;
        Obj::new("Organization")
            .with("id", Val::leaf(id.organization_id.clone()))
            .with("name", Val::leaf(id.organization_name.clone()))
            .with("urlKey", Val::leaf(id.url_key.clone()))
            .with("createdAt", t(Utc::now()))
            .with("updatedAt", t(Utc::now()))
            .with("archivedAt", Val::Null)
            .with("userCount", Val::leaf(self.users.len()))
            .with("createdIssueCount", Val::leaf(self.issues.len()))
            .with("customerCount", Val::leaf(0))
            .with("allowedAuthServices", t(["email"]))
            .with("gitBranchFormat", Val::Null)
            .with("logoUrl", Val::Null)
            .with("periodUploadVolume", Val::leaf(0))
            .with("roadmapEnabled", Val::leaf(false))
            .with("samlEnabled", Val::leaf(false))
            .with("scimEnabled", Val::leaf(false))
            .with("releaseChannel", Val::leaf("public"))
            .with("projectStatuses", Val::List(vec![]))
            .with(
                "teams",
                Val::Conn(
                    self.teams
                        .iter()
                        .map(|x| Val::Ref(Kind::Team, x.id.clone()))
                        .collect(),
                ),
            )
            .with(
                "users",
                Val::Conn(
                    self.users
                        .iter()
                        .map(|u| Val::Ref(Kind::User, u.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn user_obj(&self, u: &User) -> Obj {
        let initials: String = u
            .name
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect();
        base("User", &u.id, t(u.created_at), t(u.created_at))
            .with("name", Val::leaf(u.name.clone()))
            .with(
                "displayName",
                Val::leaf(u.name.to_lowercase().replace(' ', "")),
            )
            .with("email", Val::leaf(u.email.clone()))
            .with("app", Val::leaf(u.app))
            .with("active", Val::leaf(true))
            .with("admin", Val::leaf(false))
            .with("owner", Val::leaf(false))
            .with("guest", Val::leaf(u.guest))
            .with("isMe", Val::leaf(u.id == self.identity.agent_user_id))
            .with("isAssignable", Val::leaf(true))
            .with("isMentionable", Val::leaf(true))
            .with("supportsAgentSessions", Val::leaf(u.app))
            .with("canAccessAnyPublicTeam", Val::leaf(true))
            .with("hasGitHubCodeAccess", Val::leaf(false))
            .with("avatarBackgroundColor", Val::leaf("#5e6ad2"))
            .with("avatarUrl", Val::Null)
            .with("initials", Val::leaf(initials))
            .with("inviteHash", Val::leaf(format!("invite-{}", &u.id)))
            .with(
                "createdIssueCount",
                Val::leaf(
                    self.issues
                        .iter()
                        .filter(|i| i.creator_id.as_deref() == Some(u.id.as_str()))
                        .count(),
                ),
            )
            .with("url", Val::leaf(self.user_url(u)))
            .with("timezone", Val::leaf("UTC"))
            .with("description", Val::Null)
            .with("statusEmoji", Val::Null)
            .with("statusLabel", Val::Null)
            .with("statusUntilAt", Val::Null)
            .with("disableReason", Val::Null)
            .with("lastSeen", Val::Null)
            .with("calendarHash", Val::Null)
            .with("gitHubUserId", Val::Null)
            .with("organization", Val::Ref(Kind::Organization, String::new()))
            .with(
                "assignedIssues",
                Val::Conn(
                    self.issues
                        .iter()
                        .filter(|i| i.assignee_id.as_deref() == Some(u.id.as_str()))
                        .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
                        .collect(),
                ),
            )
            .with(
                "delegatedIssues",
                Val::Conn(
                    self.issues
                        .iter()
                        .filter(|i| i.delegate_id.as_deref() == Some(u.id.as_str()))
                        .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
                        .collect(),
                ),
            )
            .with(
                "teams",
                Val::Conn(
                    self.teams
                        .iter()
                        .filter(|x| u.team_ids.as_ref().is_none_or(|ids| ids.contains(&x.id)))
                        .map(|x| Val::Ref(Kind::Team, x.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn team_obj(&self, team: &Team) -> Obj {
        let states: Vec<Val> = {
            let mut s: Vec<&WorkflowState> = self
                .states
                .iter()
                .filter(|s| s.team_id == team.id)
                .collect();
            s.sort_by(|a, b| a.position.total_cmp(&b.position));
            s.into_iter()
                .map(|s| Val::Ref(Kind::State, s.id.clone()))
                .collect()
        };
        let labels = self
            .labels
            .iter()
            .filter(|l| l.team_id.as_deref() == Some(team.id.as_str()))
            .map(|l| Val::Ref(Kind::Label, l.id.clone()))
            .collect();
        let issues = self
            .issues
            .iter()
            .filter(|i| i.team_id == team.id)
            .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
            .collect();
        base("Team", &team.id, t(team.created_at), t(team.created_at))
            .with("key", Val::leaf(team.key.clone()))
            .with("name", Val::leaf(team.name.clone()))
            .with("displayName", Val::leaf(team.name.clone()))
            .with("description", Val::Null)
            .with("icon", Val::Null)
            .with("color", Val::leaf("#5e6ad2"))
            .with("private", Val::leaf(false))
            .with("timezone", Val::leaf("UTC"))
            .with(
                "triageEnabled",
                Val::leaf(
                    self.states
                        .iter()
                        .any(|s| s.team_id == team.id && s.state_type == "triage"),
                ),
            )
            .with("cyclesEnabled", Val::leaf(false))
            .with(
                "issueCount",
                Val::leaf(self.issues.iter().filter(|i| i.team_id == team.id).count()),
            )
            .with("inviteHash", Val::leaf(format!("team-{}", team.id)))
            .with("cycleDuration", Val::leaf(1))
            .with("cycleCooldownTime", Val::leaf(0))
            .with("cycleStartDay", Val::leaf(1))
            .with("upcomingCycleCount", Val::leaf(0))
            .with("autoArchivePeriod", Val::leaf(6))
            .with("defaultIssueEstimate", Val::leaf(0))
            .with("issueEstimationType", Val::leaf("notUsed"))
            .with("issueEstimationAllowZero", Val::leaf(false))
            .with("issueEstimationExtended", Val::leaf(false))
            .with("inheritIssueEstimation", Val::leaf(false))
            .with("inheritWorkflowStatuses", Val::leaf(false))
            .with("groupIssueHistory", Val::leaf(false))
            .with("setIssueSortOrderOnStateChange", Val::leaf("none"))
            .with("requirePriorityToLeaveTriage", Val::leaf(false))
            .with("scimManaged", Val::leaf(false))
            .with("cycleCalenderUrl", Val::leaf(""))
            .with("currentProgress", t(json!({})))
            .with("progressHistory", t(json!({})))
            .with("securitySettings", t(json!({})))
            .with("organization", Val::Ref(Kind::Organization, String::new()))
            .with("states", Val::Conn(states))
            .with("labels", Val::Conn(labels))
            .with("issues", Val::Conn(issues))
            .with(
                "members",
                Val::Conn(
                    self.users
                        .iter()
                        .map(|u| Val::Ref(Kind::User, u.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn state_obj(&self, s: &WorkflowState) -> Obj {
        base("WorkflowState", &s.id, t(s.created_at), t(s.created_at))
            .with("name", Val::leaf(s.name.clone()))
            .with("type", Val::leaf(s.state_type.clone()))
            .with("position", Val::leaf(s.position))
            .with("color", Val::leaf(s.color.clone()))
            .with("description", Val::Null)
            .with("team", Val::Ref(Kind::Team, s.team_id.clone()))
            .with(
                "issues",
                Val::Conn(
                    self.issues
                        .iter()
                        .filter(|i| i.state_id == s.id)
                        .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn label_obj(&self, l: &Label) -> Obj {
        base("IssueLabel", &l.id, t(l.created_at), t(l.created_at))
            .with("name", Val::leaf(l.name.clone()))
            .with("color", Val::leaf(l.color.clone()))
            .with("description", Val::Null)
            .with("isGroup", Val::leaf(l.is_group))
            .with("lastAppliedAt", Val::Null)
            .with("retiredAt", Val::Null)
            .with("parent", Val::opt_ref(Kind::Label, l.parent_id.as_ref()))
            .with("team", Val::opt_ref(Kind::Team, l.team_id.as_ref()))
            .with("organization", Val::Ref(Kind::Organization, String::new()))
            .with(
                "children",
                Val::Conn(
                    self.labels
                        .iter()
                        .filter(|c| c.parent_id.as_deref() == Some(l.id.as_str()))
                        .map(|c| Val::Ref(Kind::Label, c.id.clone()))
                        .collect(),
                ),
            )
            .with(
                "issues",
                Val::Conn(
                    self.issues
                        .iter()
                        .filter(|i| i.label_ids.contains(&l.id))
                        .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn project_obj(&self, p: &Project) -> Obj {
        base("Project", &p.id, t(p.created_at), t(p.created_at))
            .with("name", Val::leaf(p.name.clone()))
            .with("description", Val::leaf(""))
            .with("color", Val::leaf("#5e6ad2"))
            .with("state", Val::leaf("started"))
            .with("priority", Val::leaf(0))
            .with("priorityLabel", Val::leaf("No priority"))
            .with("progress", Val::leaf(0))
            .with("scope", Val::leaf(0))
            .with(
                "slugId",
                Val::leaf(p.id.chars().take(12).collect::<String>()),
            )
            .with(
                "url",
                Val::leaf(format!(
                    "https://linear.app/{}/project/{}",
                    self.identity.url_key, p.id
                )),
            )
            .with(
                "issues",
                Val::Conn(
                    self.issues
                        .iter()
                        .filter(|i| i.project_id.as_deref() == Some(p.id.as_str()))
                        .map(|i| Val::Ref(Kind::Issue, i.id.clone()))
                        .collect(),
                ),
            )
    }

    pub(crate) fn issue_obj(&self, i: &Issue) -> Obj {
        let refs = |kind: Kind, ids: Vec<&String>| -> Val {
            Val::Conn(
                ids.into_iter()
                    .map(|id| Val::Ref(kind, id.clone()))
                    .collect(),
            )
        };
        let state = self.state(&i.state_id);
        let state_type = state.map(|s| s.state_type.as_str());
        let at = |ty: &str| {
            if state_type == Some(ty) {
                t(i.updated_at)
            } else {
                Val::Null
            }
        };
        base("Issue", &i.id, t(i.created_at), t(i.updated_at))
            .with("identifier", Val::leaf(i.identifier.clone()))
            .with("number", Val::leaf(i.number))
            .with("title", Val::leaf(i.title.clone()))
            .with("description", Val::opt_leaf(i.description.as_ref()))
            .with("url", Val::leaf(self.issue_url(i)))
            .with(
                "branchName",
                Val::leaf(format!(
                    "{}/{}",
                    i.identifier.to_lowercase(),
                    i.title
                        .to_lowercase()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join("-")
                )),
            )
            .with("priority", Val::leaf(i.priority))
            .with(
                "priorityLabel",
                Val::leaf(match i.priority {
                    1 => "Urgent",
                    2 => "High",
                    3 => "Medium",
                    4 => "Low",
                    _ => "No priority",
                }),
            )
            .with("prioritySortOrder", Val::leaf(0))
            .with("sortOrder", Val::leaf(0))
            .with("boardOrder", Val::leaf(0))
            .with("estimate", Val::Null)
            .with("dueDate", Val::Null)
            .with("trashed", Val::leaf(false))
            .with("customerTicketCount", Val::leaf(0))
            .with("inheritsSharedAccess", Val::leaf(false))
            .with("labelIds", t(&i.label_ids))
            .with("previousIdentifiers", t(Vec::<String>::new()))
            .with("reactionData", t(json!([])))
            .with("startedAt", at("started"))
            .with("completedAt", at("completed"))
            .with("canceledAt", at("canceled"))
            .with("autoClosedAt", Val::Null)
            .with("autoArchivedAt", Val::Null)
            .with("snoozedUntilAt", Val::Null)
            .with("startedTriageAt", Val::Null)
            .with("triagedAt", Val::Null)
            .with("addedToTeamAt", t(i.created_at))
            .with("state", Val::Ref(Kind::State, i.state_id.clone()))
            .with("team", Val::Ref(Kind::Team, i.team_id.clone()))
            .with(
                "project",
                Val::opt_ref(Kind::Project, i.project_id.as_ref()),
            )
            .with("assignee", Val::opt_ref(Kind::User, i.assignee_id.as_ref()))
            .with("delegate", Val::opt_ref(Kind::User, i.delegate_id.as_ref()))
            .with("creator", Val::opt_ref(Kind::User, i.creator_id.as_ref()))
            .with("parent", Val::opt_ref(Kind::Issue, i.parent_id.as_ref()))
            .with(
                "children",
                refs(
                    Kind::Issue,
                    self.issues
                        .iter()
                        .filter(|c| c.parent_id.as_deref() == Some(i.id.as_str()))
                        .map(|c| &c.id)
                        .collect(),
                ),
            )
            .with("labels", refs(Kind::Label, i.label_ids.iter().collect()))
            .with(
                "attachments",
                refs(
                    Kind::Attachment,
                    self.attachments
                        .iter()
                        .filter(|a| a.issue_id == i.id)
                        .map(|a| &a.id)
                        .collect(),
                ),
            )
            .with(
                "comments",
                refs(
                    Kind::Comment,
                    self.comments
                        .iter()
                        .filter(|c| c.issue_id == i.id)
                        .map(|c| &c.id)
                        .collect(),
                ),
            )
            .with(
                "relations",
                refs(
                    Kind::Relation,
                    self.relations
                        .iter()
                        .filter(|r| r.issue_id == i.id)
                        .map(|r| &r.id)
                        .collect(),
                ),
            )
            .with(
                "inverseRelations",
                refs(
                    Kind::Relation,
                    self.relations
                        .iter()
                        .filter(|r| r.related_issue_id == i.id)
                        .map(|r| &r.id)
                        .collect(),
                ),
            )
            .with(
                "subscribers",
                refs(Kind::User, i.creator_id.iter().collect()),
            )
            .with("reactions", Val::List(vec![]))
            .with(
                "sharedAccess",
                Val::Obj(
                    Obj::new("IssueSharedAccess")
                        .with("isShared", Val::leaf(false))
                        .with("sharedWithCount", Val::leaf(0))
                        .with("viewerHasOnlySharedAccess", Val::leaf(false))
                        .with("disallowedIssueFields", t(Vec::<String>::new()))
                        .with("sharedWithUsers", Val::List(vec![])),
                ),
            )
    }

    pub(crate) fn comment_obj(&self, c: &Comment) -> Obj {
        let issue_url = self
            .issue(&c.issue_id)
            .map(|i| self.issue_url(i))
            .unwrap_or_default();
        let is_root = self
            .sessions
            .iter()
            .any(|s| s.comment_id.as_deref() == Some(c.id.as_str()) && c.user_id.is_none());
        base("Comment", &c.id, t(c.created_at), t(c.updated_at))
            .with("body", Val::leaf(c.body.clone()))
            .with(
                "bodyData",
                Val::leaf(json!({"type": "doc", "content": []}).to_string()),
            )
            .with(
                "url",
                Val::leaf(format!(
                    "{issue_url}#comment-{}",
                    &c.id[..8.min(c.id.len())]
                )),
            )
            .with("parentId", Val::opt_leaf(c.parent_id.as_ref()))
            .with("issueId", Val::leaf(c.issue_id.clone()))
            .with("userId", Val::opt_leaf(c.user_id.as_ref()))
            .with("editedAt", Val::Null)
            .with("resolvedAt", Val::Null)
            .with("quotedText", Val::Null)
            .with("hideInLinear", Val::leaf(false))
            .with("isArtificialAgentSessionRoot", Val::leaf(is_root))
            .with("reactionData", t(json!([])))
            .with("botActor", Val::Null)
            .with("reactions", Val::List(vec![]))
            .with("user", Val::opt_ref(Kind::User, c.user_id.as_ref()))
            .with("issue", Val::Ref(Kind::Issue, c.issue_id.clone()))
            .with("parent", Val::opt_ref(Kind::Comment, c.parent_id.as_ref()))
            .with(
                "children",
                Val::Conn(
                    self.comments
                        .iter()
                        .filter(|x| x.parent_id.as_deref() == Some(c.id.as_str()))
                        .map(|x| Val::Ref(Kind::Comment, x.id.clone()))
                        .collect(),
                ),
            )
            .with(
                "agentSession",
                self.sessions
                    .iter()
                    .find(|s| s.comment_id.as_deref() == Some(c.id.as_str()))
                    .map_or(Val::Null, |s| Val::Ref(Kind::Session, s.id.clone())),
            )
    }

    pub(crate) fn session_obj(&self, s: &Session) -> Obj {
        let now = Utc::now();
        let activities = self
            .activities
            .iter()
            .filter(|a| a.session_id == s.id && !a.superseded)
            .map(|a| Val::Ref(Kind::Activity, a.id.clone()))
            .collect();
        let links = s
            .external_urls
            .iter()
            .map(|u| {
                Val::Obj(
                    Obj::new("AgentSessionExternalLink")
                        .with("label", Val::leaf(u.label.clone()))
                        .with("url", Val::leaf(u.url.clone())),
                )
            })
            .collect();
        base("AgentSession", &s.id, t(s.created_at), t(s.updated_at))
            .with(
                "status",
                Val::leaf(self.session_status(&s.id, now).as_str()),
            )
            .with("type", Val::leaf("commentThread"))
            .with("url", Val::Null)
            .with(
                "slugId",
                Val::leaf(s.id.chars().take(12).collect::<String>()),
            )
            .with("summary", Val::Null)
            .with("plan", Val::opt_leaf(s.plan.as_ref()))
            .with("context", t(json!({})))
            .with("sourceMetadata", Val::Null)
            .with(
                "externalLink",
                Val::opt_leaf(s.external_urls.first().map(|u| &u.url)),
            )
            .with("externalUrls", t(&s.external_urls))
            .with("externalLinks", Val::List(links))
            .with("startedAt", t(s.started_at))
            .with("endedAt", t(s.ended_at))
            .with("dismissedAt", Val::Null)
            // Not in Linear's SDL: lets tests read the "Did not respond" flag.
            .with(
                "unresponsive",
                Val::leaf(is_unresponsive(s, now, self.timing)),
            )
            .with(
                "appUser",
                Val::Ref(Kind::User, self.identity.agent_user_id.clone()),
            )
            .with("creator", Val::opt_ref(Kind::User, s.creator_id.as_ref()))
            .with("issue", Val::opt_ref(Kind::Issue, s.issue_id.as_ref()))
            .with(
                "comment",
                Val::opt_ref(Kind::Comment, s.comment_id.as_ref()),
            )
            .with("sourceComment", Val::Null)
            .with("activities", Val::Conn(activities))
    }

    pub(crate) fn activity_obj(&self, a: &Activity) -> Obj {
        let c = &a.content;
        let s = |f: &str| {
            c.get(f)
                .and_then(Value::as_str)
                .map_or(Val::Null, Val::leaf)
        };
        let kind = a.kind();
        let typename = match kind {
            "thought" => "AgentActivityThoughtContent",
            "action" => "AgentActivityActionContent",
            "elicitation" => "AgentActivityElicitationContent",
            "response" => "AgentActivityResponseContent",
            "error" => "AgentActivityErrorContent",
            _ => "AgentActivityPromptContent",
        };
        let mut content = Obj::new(typename).with("type", Val::leaf(kind.to_string()));
        if kind == "action" {
            content = content
                .with("action", s("action"))
                .with("parameter", s("parameter"))
                .with("result", s("result"))
                .with("resultData", Val::Null);
        } else {
            content = content
                .with("body", s("body"))
                .with("bodyData", t(json!({"type": "doc", "content": []})))
                .with("reasonCode", s("reasonCode"))
                .with("title", s("title"));
        }
        base("AgentActivity", &a.id, t(a.created_at), t(a.created_at))
            .with("content", Val::Obj(content))
            .with("ephemeral", Val::leaf(a.ephemeral))
            .with("queued", Val::leaf(false))
            .with("sentAt", t(a.created_at))
            .with("signal", Val::opt_leaf(a.signal.as_ref()))
            .with("signalMetadata", Val::opt_leaf(a.signal_metadata.as_ref()))
            .with("contextualMetadata", Val::Null)
            .with("sourceMetadata", Val::Null)
            .with(
                "agentSession",
                Val::Ref(Kind::Session, a.session_id.clone()),
            )
            .with("user", Val::Ref(Kind::User, a.user_id.clone()))
            .with(
                "sourceComment",
                Val::opt_ref(Kind::Comment, a.source_comment_id.as_ref()),
            )
    }
}

fn attachment_obj(a: &Attachment) -> Obj {
    base("Attachment", &a.id, t(a.created_at), t(a.created_at))
        .with("title", Val::leaf(a.title.clone()))
        .with("subtitle", Val::opt_leaf(a.subtitle.as_ref()))
        .with("url", Val::leaf(a.url.clone()))
        .with("sourceType", Val::opt_leaf(a.source_type.as_ref()))
        .with("metadata", Val::Leaf(a.metadata.clone()))
        .with("groupBySource", Val::leaf(false))
        .with("source", Val::Null)
        .with("issue", Val::Ref(Kind::Issue, a.issue_id.clone()))
}

fn relation_obj(r: &Relation) -> Obj {
    base("IssueRelation", &r.id, t(r.created_at), t(r.created_at))
        .with("type", Val::leaf(r.relation_type.clone()))
        .with("issue", Val::Ref(Kind::Issue, r.issue_id.clone()))
        .with(
            "relatedIssue",
            Val::Ref(Kind::Issue, r.related_issue_id.clone()),
        )
}
