//! The GraphQL documents we send, one `.graphql` file per operation under
//! `crates/linear/graphql/`. Keeping them as files lets a test validate each
//! one against Linear's published SDL, so a typo fails CI instead of
//! production.

/// One GraphQL operation: its metric/log name and its document text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// Stable snake_case name used in metrics labels and logs.
    pub name: &'static str,
    pub document: &'static str,
}

macro_rules! operation {
    ($konst:ident, $name:literal) => {
        pub const $konst: Operation = Operation {
            name: $name,
            document: include_str!(concat!("../graphql/", $name, ".graphql")),
        };
    };
}

operation!(AGENT_ACTIVITY_CREATE, "agent_activity_create");
operation!(AGENT_SESSION_UPDATE, "agent_session_update");
operation!(COMMENT_CREATE, "comment_create");
operation!(ISSUE_UPDATE, "issue_update");
operation!(ISSUE_CREATE, "issue_create");
operation!(ISSUE_RELATION_CREATE, "issue_relation_create");
operation!(ISSUE_FOR_AGENT, "issue_for_agent");
operation!(ISSUE_STATUS, "issue_status");
operation!(TEAM_WORKFLOW, "team_workflow");
operation!(VIEWER, "viewer");
operation!(IDENTITY, "identity");
operation!(RATE_LIMIT_STATUS, "rate_limit_status");
operation!(USER_ACCESS, "user_access");
operation!(RECENT_ISSUES, "recent_issues");
operation!(
    AGENT_SESSION_CREATE_ON_ISSUE,
    "agent_session_create_on_issue"
);

/// Every operation, for schema validation and documentation.
pub const ALL: &[Operation] = &[
    AGENT_ACTIVITY_CREATE,
    AGENT_SESSION_UPDATE,
    COMMENT_CREATE,
    ISSUE_UPDATE,
    ISSUE_CREATE,
    ISSUE_RELATION_CREATE,
    ISSUE_FOR_AGENT,
    ISSUE_STATUS,
    TEAM_WORKFLOW,
    VIEWER,
    IDENTITY,
    RATE_LIMIT_STATUS,
    USER_ACCESS,
    RECENT_ISSUES,
    AGENT_SESSION_CREATE_ON_ISSUE,
];
