//! Linear simulator: GraphQL answers and error conventions, session status.
//! Webhooks are in `linear_webhooks.rs`, the `@linear/sdk` check in
//! `linear_sdk.rs`.

use cyrus_sandbox::linear::{
    Fault, FaultKind, LinearSim, LinearSimOptions, NewAttachment, NewComment, NewIssue, NewLabel,
    NewTeam, RateLimits,
};
use serde_json::{Value, json};

/// A GraphQL answer, with everything needed to explain a failure.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// `data`, asserting a clean 200 answer.
    #[track_caller]
    pub fn data(&self) -> &Value {
        assert!(
            self.status == 200 && self.body.get("errors").is_none(),
            "expected a clean answer, got HTTP {}: {:#}",
            self.status,
            self.body
        );
        &self.body["data"]
    }
    #[track_caller]
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in HTTP {}: {:#}", self.status, self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("missing header {name}; headers: {:?}", self.headers))
    }
}

pub async fn gql_with_key(
    sim: &LinearSim,
    key: Option<&str>,
    query: &str,
    variables: Value,
) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .post(sim.url())
        .json(&json!({"query": query, "variables": variables}));
    if let Some(key) = key {
        req = req.header("Authorization", key);
    }
    let resp = req.send().await.expect("simulator reachable");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON answer ({e}): {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn gql(sim: &LinearSim, query: &str, variables: Value) -> Answer {
    gql_with_key(sim, Some(sim.api_key()), query, variables).await
}

/// A team ENG with default states, two labels (one in a group), a parent
/// issue with an attachment and a comment, a child issue, and a blocker.
pub struct World {
    pub team_id: String,
    pub issue_id: String,
    pub parent_id: String,
    pub blocker_id: String,
    pub bug_label: String,
}

pub fn seed(sim: &LinearSim) -> World {
    let c = sim.control();
    let team = c
        .create_team(NewTeam {
            key: "ENG".into(),
            name: "Engineering".into(),
            ..NewTeam::default()
        })
        .expect("team");
    let group = c
        .create_label(NewLabel {
            name: "Area".into(),
            is_group: true,
            team_id: Some(team.id.clone()),
            ..NewLabel::default()
        })
        .expect("group");
    let bug = c
        .create_label(NewLabel {
            name: "Bug".into(),
            team_id: Some(team.id.clone()),
            ..NewLabel::default()
        })
        .expect("label");
    let backend = c
        .create_label(NewLabel {
            name: "Backend".into(),
            parent_id: Some(group.id),
            ..NewLabel::default()
        })
        .expect("label");
    let parent = c
        .create_issue(NewIssue {
            title: "Epic: auth".into(),
            project_name: Some("Auth".into()),
            ..NewIssue::default()
        })
        .expect("parent");
    let issue = c
        .create_issue(NewIssue {
            title: "Login test is flaky on CI".into(),
            description: Some("Times out 1 in 5 runs.".into()),
            priority: Some(2),
            label_ids: vec![bug.id.clone(), backend.id],
            parent_id: Some(parent.identifier.clone()),
            attachments: vec![NewAttachment {
                title: "screenshot".into(),
                url: "https://uploads.linear.app/shot.png".into(),
                ..NewAttachment::default()
            }],
            comments: vec![NewComment {
                body: "Seen again today".into(),
                ..NewComment::default()
            }],
            ..NewIssue::default()
        })
        .expect("issue");
    let blocker = c
        .create_issue(NewIssue {
            title: "Fix the fixture".into(),
            ..NewIssue::default()
        })
        .expect("blocker");
    World {
        team_id: team.id,
        issue_id: issue.id,
        parent_id: parent.id,
        blocker_id: blocker.id,
        bug_label: bug.id,
    }
}

#[tokio::test]
async fn missing_or_bad_key_is_an_authentication_error() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    for key in [None, Some("lin_api_wrong")] {
        let a = gql_with_key(&sim, key, "query { viewer { id } }", json!({})).await;
        assert_eq!(a.status, 401, "{:#}", a.body);
        assert_eq!(a.error_code(), "AUTHENTICATION_ERROR");
        assert_eq!(
            a.body["errors"][0]["extensions"]["type"],
            "authentication error"
        );
    }
    let bearer = format!("Bearer {}", sim.api_key());
    let a = gql_with_key(
        &sim,
        Some(&bearer),
        "query Me { viewer { id app organization { id urlKey } } }",
        json!({}),
    )
    .await;
    assert_eq!(a.data()["viewer"]["id"], sim.agent_user_id());
    assert_eq!(a.data()["viewer"]["app"], true);
    assert_eq!(
        a.data()["viewer"]["organization"]["id"],
        sim.organization_id()
    );
    assert!(a.header("content-type").starts_with("application/json"));
    sim.shutdown().await;
}

const ISSUE_QUERY: &str = r#"
query IssueForAgent($id: String!) {
  issue(id: $id) {
    id identifier title description url priority branchName
    state { id name type position }
    team { id key name }
    project { id name }
    delegate { id }
    parent { id identifier title state { type } }
    children(first: 50) { nodes { id identifier } pageInfo { hasNextPage endCursor } }
    labels(first: 50) { nodes { id name color parent { id name } } }
    attachments(first: 50) { nodes { id title url metadata } }
    comments(first: 50) { nodes { id body parentId user { id name } } pageInfo { hasNextPage } }
    relations(first: 50) { nodes { id type relatedIssue { id identifier state { type } } } }
    inverseRelations(first: 50) { nodes { id type issue { id identifier state { type } } } }
  }
}"#;

#[tokio::test]
async fn issue_query_answers_the_agent_shapes() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let rel = gql(
        &sim,
        "mutation Relate($input: IssueRelationCreateInput!) { issueRelationCreate(input: $input) { success issueRelation { id type issue { id } relatedIssue { id } } } }",
        json!({"input": {"issueId": w.blocker_id, "relatedIssueId": w.issue_id, "type": "blocks"}}),
    )
    .await;
    assert_eq!(
        rel.data()["issueRelationCreate"]["issueRelation"]["relatedIssue"]["id"],
        w.issue_id
    );

    // By identifier, like Linear.
    let a = gql(&sim, ISSUE_QUERY, json!({"id": "ENG-2"})).await;
    let issue = &a.data()["issue"];
    assert_eq!(issue["id"], w.issue_id);
    assert_eq!(issue["identifier"], "ENG-2");
    assert_eq!(issue["priority"], 2);
    assert_eq!(issue["state"]["type"], "backlog");
    assert_eq!(issue["team"]["key"], "ENG");
    assert_eq!(issue["project"], Value::Null);
    assert_eq!(issue["delegate"], Value::Null);
    assert_eq!(issue["parent"]["id"], w.parent_id);
    let labels: Vec<&str> = issue["labels"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Bug", "Backend"]);
    assert_eq!(issue["labels"]["nodes"][1]["parent"]["name"], "Area");
    assert_eq!(
        issue["attachments"]["nodes"][0]["url"],
        "https://uploads.linear.app/shot.png"
    );
    assert_eq!(issue["comments"]["nodes"][0]["body"], "Seen again today");
    assert_eq!(issue["comments"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(issue["inverseRelations"]["nodes"][0]["type"], "blocks");
    assert_eq!(
        issue["inverseRelations"]["nodes"][0]["issue"]["id"],
        w.blocker_id
    );
    assert_eq!(issue["relations"]["nodes"], json!([]));

    let parent = gql(&sim, ISSUE_QUERY, json!({"id": w.parent_id})).await;
    assert_eq!(
        parent.data()["issue"]["children"]["nodes"][0]["id"],
        w.issue_id
    );
    assert_eq!(parent.data()["issue"]["project"]["name"], "Auth");
    let blocker = gql(&sim, ISSUE_QUERY, json!({"id": w.blocker_id})).await;
    assert_eq!(
        blocker.data()["issue"]["relations"]["nodes"][0]["relatedIssue"]["identifier"],
        "ENG-2"
    );

    let missing = gql(&sim, ISSUE_QUERY, json!({"id": "ENG-999"})).await;
    assert_eq!(missing.error_code(), "INPUT_ERROR");
    assert_eq!(missing.body["data"], Value::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn workflow_states_by_team_and_filter() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let a = gql(
        &sim,
        r#"query StartedStates($teamId: String!) { team(id: $teamId) { key states(filter: { type: { eq: "started" } }) { nodes { id name position } } } }"#,
        json!({"teamId": w.team_id}),
    )
    .await;
    let names: Vec<&str> = a.data()["team"]["states"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["In Progress", "In Review"]);

    let all = gql(
        &sim,
        "query($teamId: ID!) { workflowStates(filter: { team: { id: { eq: $teamId } } }) { nodes { name type } } }",
        json!({"teamId": w.team_id}),
    )
    .await;
    assert_eq!(
        all.data()["workflowStates"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let none = gql(
        &sim,
        "query { workflowStates(filter: { team: { id: { eq: \"other\" } } }) { nodes { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(none.data()["workflowStates"]["nodes"], json!([]));
    let labels = gql(
        &sim,
        "query($name: String!) { issueLabels(filter: { name: { eqIgnoreCase: $name } }) { nodes { id } } }",
        json!({"name": "bug"}),
    )
    .await;
    assert_eq!(
        labels.data()["issueLabels"]["nodes"],
        json!([{"id": w.bug_label}])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn issue_update_create_and_comments() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let c = sim.control();
    let started = c
        .team_states(&w.team_id)
        .into_iter()
        .find(|s| s.state_type == "started")
        .unwrap();
    let a = gql(
        &sim,
        "mutation UpdateIssue($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input) { success issue { id state { id type } labels { nodes { name } } } } }",
        json!({"id": "ENG-2", "input": {"stateId": started.id, "labelIds": [w.bug_label]}}),
    )
    .await;
    assert_eq!(a.data()["issueUpdate"]["success"], true);
    assert_eq!(a.data()["issueUpdate"]["issue"]["state"]["type"], "started");
    assert_eq!(
        a.data()["issueUpdate"]["issue"]["labels"]["nodes"],
        json!([{"name": "Bug"}])
    );
    assert_eq!(c.issue(&w.issue_id).unwrap().state.id, started.id);

    let bad = gql(
        &sim,
        "mutation($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input) { success } }",
        json!({"id": w.issue_id, "input": {"stateId": "no-such-state"}}),
    )
    .await;
    assert_eq!(bad.error_code(), "INPUT_ERROR");

    let root = c.comments(&w.issue_id)[0].id.clone();
    let reply = gql(
        &sim,
        "mutation Reply($input: CommentCreateInput!) { commentCreate(input: $input) { success comment { id parentId user { id } } } }",
        json!({"input": {"issueId": "ENG-2", "body": "On it", "parentId": root}}),
    )
    .await;
    assert_eq!(reply.data()["commentCreate"]["comment"]["parentId"], root);
    assert_eq!(
        reply.data()["commentCreate"]["comment"]["user"]["id"],
        sim.agent_user_id()
    );
    assert_eq!(c.comments(&w.issue_id).last().unwrap().body, "On it");

    let sub = gql(
        &sim,
        "mutation CreateSubIssue($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id identifier parent { id } state { type } } } }",
        json!({"input": {"teamId": w.team_id, "title": "Split out fixture", "parentId": "ENG-2"}}),
    )
    .await;
    let issue = &sub.data()["issueCreate"]["issue"];
    assert_eq!(issue["parent"]["id"], w.issue_id);
    assert_eq!(issue["identifier"], "ENG-4");
    assert_eq!(issue["state"]["type"], "backlog");
    assert!(c.sessions().is_empty(), "no delegate, no session");

    let delegated = gql(
        &sim,
        "mutation($input: IssueCreateInput!) { issueCreate(input: $input) { issue { delegate { id } } } }",
        json!({"input": {"teamId": w.team_id, "title": "Do it", "delegateId": sim.agent_user_id()}}),
    )
    .await;
    assert_eq!(
        delegated.data()["issueCreate"]["issue"]["delegate"]["id"],
        sim.agent_user_id()
    );
    assert_eq!(
        c.sessions().len(),
        1,
        "delegation on create starts a session"
    );
    sim.shutdown().await;
}

const ACTIVITY: &str = "mutation EmitActivity($input: AgentActivityCreateInput!) { agentActivityCreate(input: $input) { success agentActivity { id } } }";

const SESSION_QUERY: &str = r#"
query SessionActivities($id: String!) {
  agentSession(id: $id) {
    id status plan externalLinks { label url }
    issue { id identifier }
    comment { id body }
    activities(first: 100) {
      nodes {
        id ephemeral signal signalMetadata
        content {
          __typename
          ... on AgentActivityThoughtContent { body }
          ... on AgentActivityActionContent { action parameter result }
          ... on AgentActivityElicitationContent { body }
          ... on AgentActivityResponseContent { body }
          ... on AgentActivityErrorContent { body }
          ... on AgentActivityPromptContent { body }
        }
      }
    }
  }
}"#;

async fn emit(sim: &LinearSim, session: &str, content: Value, extra: Value) -> Answer {
    let mut input = json!({"agentSessionId": session, "content": content});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    gql(sim, ACTIVITY, json!({"input": input})).await
}

async fn status_of(sim: &LinearSim, session: &str) -> String {
    let a = gql(sim, SESSION_QUERY, json!({"id": session})).await;
    a.data()["agentSession"]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn activities_drive_the_session_status() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let c = sim.control();
    let session = c.delegate(&w.issue_id, None).unwrap();
    assert_eq!(status_of(&sim, &session).await, "pending");

    let a = emit(
        &sim,
        &session,
        json!({"type": "thought", "body": "Reading"}),
        json!({"ephemeral": true}),
    )
    .await;
    assert_eq!(a.data()["agentActivityCreate"]["success"], true);
    assert_eq!(status_of(&sim, &session).await, "active");
    emit(
        &sim,
        &session,
        json!({"type": "action", "action": "Running", "parameter": "cargo test"}),
        json!({}),
    )
    .await
    .data();
    emit(
        &sim,
        &session,
        json!({"type": "elicitation", "body": "Which repository?"}),
        json!({"signal": "select", "signalMetadata": {"options": [{"value": "https://github.com/acme/web"}, {"value": "https://github.com/acme/api", "label": "API"}]}}),
    )
    .await
    .data();
    assert_eq!(status_of(&sim, &session).await, "awaitingInput");
    c.prompt(&session, "the api one", false).unwrap();
    assert_eq!(
        status_of(&sim, &session).await,
        "awaitingInput",
        "a user prompt leaves status unchanged"
    );
    emit(
        &sim,
        &session,
        json!({"type": "response", "body": "Done: PR #1"}),
        json!({}),
    )
    .await
    .data();
    assert_eq!(status_of(&sim, &session).await, "complete");
    emit(
        &sim,
        &session,
        json!({"type": "error", "body": "CI failed"}),
        json!({}),
    )
    .await
    .data();
    assert_eq!(status_of(&sim, &session).await, "error");

    let q = gql(&sim, SESSION_QUERY, json!({"id": session})).await;
    let s = &q.data()["agentSession"];
    assert_eq!(s["issue"]["id"], w.issue_id);
    assert!(
        s["comment"]["body"]
            .as_str()
            .unwrap()
            .starts_with("This thread is for an agent session with")
    );
    let nodes = s["activities"]["nodes"].as_array().unwrap();
    let types: Vec<&str> = nodes
        .iter()
        .map(|n| n["content"]["__typename"].as_str().unwrap())
        .collect();
    // The ephemeral thought vanished when the next activity arrived.
    assert_eq!(
        types,
        [
            "AgentActivityActionContent",
            "AgentActivityElicitationContent",
            "AgentActivityPromptContent",
            "AgentActivityResponseContent",
            "AgentActivityErrorContent"
        ]
    );
    assert_eq!(nodes[0]["content"]["parameter"], "cargo test");
    assert_eq!(nodes[1]["signal"], "select");
    assert_eq!(nodes[1]["signalMetadata"]["options"][1]["label"], "API");
    assert_eq!(nodes[2]["content"]["body"], "the api one");

    // Linear posts elicitation / response / error into the thread.
    let bodies: Vec<String> = c
        .comments(&w.issue_id)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert!(bodies.contains(&"Done: PR #1".to_string()), "{bodies:?}");
    let view = c.session(&session).unwrap();
    assert_eq!(view.activities.len(), 6);
    assert!(!view.unresponsive);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_activities_are_input_errors() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let session = sim.control().delegate(&w.issue_id, None).unwrap();
    let cases = [
        (
            "unknown-session",
            json!({"type": "thought", "body": "x"}),
            json!({}),
        ),
        (
            session.as_str(),
            json!({"type": "prompt", "body": "agents cannot"}),
            json!({}),
        ),
        (
            session.as_str(),
            json!({"type": "response", "body": "x"}),
            json!({"ephemeral": true}),
        ),
        (
            session.as_str(),
            json!({"type": "action", "action": "Run"}),
            json!({}),
        ),
        (
            session.as_str(),
            json!({"type": "elicitation", "body": "x"}),
            json!({"signal": "select"}),
        ),
    ];
    for (sid, content, extra) in cases {
        let a = emit(&sim, sid, content.clone(), extra.clone()).await;
        assert_eq!(
            a.error_code(),
            "INPUT_ERROR",
            "{content} {extra}: {:#}",
            a.body
        );
        assert_eq!(a.body["errors"][0]["path"], json!(["agentActivityCreate"]));
        assert_eq!(a.body["errors"][0]["extensions"]["userError"], true);
    }
    let a = emit(
        &sim,
        "unknown-session",
        json!({"type": "thought", "body": "x"}),
        json!({}),
    )
    .await;
    assert_eq!(
        a.body["errors"][0]["message"],
        "Entity not found: AgentSession"
    );
    assert!(
        sim.control()
            .session(&session)
            .unwrap()
            .activities
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn session_update_sets_links_and_plan() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let session = sim.control().delegate(&w.issue_id, None).unwrap();
    let update = "mutation UpdateSession($id: String!, $input: AgentSessionUpdateInput!) { agentSessionUpdate(id: $id, input: $input) { success agentSession { id status } } }";
    let a = gql(
        &sim,
        update,
        json!({"id": session, "input": {"externalUrls": [{"label": "Codegen run", "url": "https://codegen.com/agent/trace/1001"}],
               "plan": [{"content": "Reproduce", "status": "inProgress"}]}}),
    )
    .await;
    assert_eq!(a.data()["agentSessionUpdate"]["success"], true);
    gql(&sim, update, json!({"id": session, "input": {"addedExternalUrls": [{"label": "PR", "url": "https://github.com/acme/web/pull/7"}]}})).await.data();
    let q = gql(&sim, SESSION_QUERY, json!({"id": session})).await;
    let s = &q.data()["agentSession"];
    assert_eq!(
        s["externalLinks"],
        json!([{"label": "Codegen run", "url": "https://codegen.com/agent/trace/1001"}, {"label": "PR", "url": "https://github.com/acme/web/pull/7"}])
    );
    assert_eq!(s["plan"][0]["status"], "inProgress");
    let view = sim.control().session(&session).unwrap();
    assert!(!view.unresponsive, "a URL update counts as an answer");
    let missing = gql(&sim, update, json!({"id": "nope", "input": {"plan": {}}})).await;
    assert_eq!(missing.error_code(), "INPUT_ERROR");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_headers_and_the_ratelimited_shape() {
    let opts = LinearSimOptions {
        rate_limits: RateLimits {
            requests_per_window: 2,
            ..RateLimits::default()
        },
        ..LinearSimOptions::default()
    };
    let sim = LinearSim::start(opts).await.unwrap();
    let first = gql(&sim, "query { viewer { id } }", json!({})).await;
    first.data();
    assert_eq!(first.header("x-ratelimit-requests-limit"), "2");
    assert_eq!(first.header("x-ratelimit-requests-remaining"), "1");
    let reset: i64 = first.header("x-ratelimit-requests-reset").parse().unwrap();
    assert!(
        reset > chrono::Utc::now().timestamp_millis(),
        "reset is a future epoch in ms"
    );
    assert!(first.header("x-complexity").parse::<u64>().unwrap() >= 1);
    first.header("x-ratelimit-complexity-remaining");
    gql(&sim, "query { viewer { id } }", json!({})).await.data();
    let limited = gql(&sim, "query { viewer { id } }", json!({})).await;
    assert_eq!(limited.status, 400, "Linear answers 400, not 429");
    assert_eq!(limited.error_code(), "RATELIMITED");
    assert_eq!(
        limited.body["errors"][0]["extensions"]["type"],
        "ratelimited"
    );
    assert_eq!(
        limited.body["errors"][0]["extensions"]["meta"]["rateLimitResult"]["limit"],
        2
    );
    assert_eq!(limited.header("x-ratelimit-requests-remaining"), "0");
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_faults_and_request_counts() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let w = seed(&sim);
    let c = sim.control();
    let session = c.delegate(&w.issue_id, None).unwrap();
    c.inject_fault(Fault::new(FaultKind::ServerError { status: 503 }).on("EmitActivity"));
    c.inject_fault(Fault::new(FaultKind::RateLimited).on("Me"));
    c.inject_fault(Fault::new(FaultKind::AuthError).on("Me"));

    let down = emit(
        &sim,
        &session,
        json!({"type": "thought", "body": "x"}),
        json!({}),
    )
    .await;
    assert_eq!(down.status, 503, "{:#}", down.body);
    emit(
        &sim,
        &session,
        json!({"type": "thought", "body": "x"}),
        json!({}),
    )
    .await
    .data();
    let limited = gql(&sim, "query Me { viewer { id } }", json!({})).await;
    assert_eq!((limited.status, limited.error_code()), (400, "RATELIMITED"));
    let denied = gql(&sim, "query Me { viewer { id } }", json!({})).await;
    assert_eq!(
        (denied.status, denied.error_code()),
        (401, "AUTHENTICATION_ERROR")
    );
    gql(&sim, "query Me { viewer { id } }", json!({}))
        .await
        .data();
    gql(&sim, ISSUE_QUERY, json!({"id": "ENG-2"})).await.data();

    let stats = c.request_stats();
    assert_eq!(stats.total, 6, "{stats:?}");
    assert_eq!(stats.by_operation["EmitActivity"], 2);
    assert_eq!(stats.by_operation["Me"], 3);
    // The 503'd request never ran; the good emit and the issue read count.
    assert_eq!(stats.by_session[&session], 2, "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_queries_are_graphql_errors() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let parse = gql(&sim, "query { viewer { id ", json!({})).await;
    assert_eq!(
        (parse.status, parse.error_code()),
        (400, "GRAPHQL_PARSE_FAILED")
    );
    let unknown = gql(&sim, "query { launchRockets { id } }", json!({})).await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );
    sim.shutdown().await;
}
