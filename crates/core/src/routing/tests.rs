//! Table tests: each row is an issue and the expected decision.

use super::*;
use crate::config::{Config, parse};
use std::collections::BTreeMap;

/// Three repositories: routed by label, by project, by team; plus settings
/// for models.
fn config(repositories: serde_json::Value) -> Config {
    let text = serde_json::json!({
        "repositories": repositories,
        "codegen": {
            "orgId": 1, "apiToken": "t",
            "defaultModel": "sonnet",
            "modelByTaskType": {"debugger": "opus"},
            "pricing": {"haiku": {"inputPerMTok": 1.0, "outputPerMTok": 5.0}}
        },
        "linear": {"webhookSecret": "s"}
    });
    parse(&text.to_string(), &BTreeMap::new())
        .unwrap_or_else(|e| panic!("test config must be valid: {e}"))
        .config
}

fn repo(id: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut r = serde_json::json!({
        "id": id, "name": id, "linearWorkspaceId": "org-1", "linearToken": "lt"
    });
    r.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    r
}

fn three_repos() -> Config {
    config(serde_json::json!([
        repo(
            "api",
            serde_json::json!({"teamKeys": ["ENG"], "routingLabels": ["backend"],
            "labelPrompts": {"debugger": ["Defect"], "scoper": ["PRD"]}})
        ),
        repo(
            "web",
            serde_json::json!({"teamKeys": ["WEB"], "projectKeys": ["Website"], "routingLabels": ["frontend"]})
        ),
        repo(
            "ops",
            serde_json::json!({"teamKeys": ["OPS"], "routingLabels": ["infra", "backend-ops"]})
        ),
    ]))
}

fn issue(identifier: &str, labels: &[&str]) -> IssueView {
    IssueView {
        identifier: identifier.to_owned(),
        title: "Something".to_owned(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        ..IssueView::default()
    }
}

#[test]
fn task_type_table() {
    let config = three_repos();
    let parent = |mut i: IssueView| {
        i.has_parent = true;
        i
    };
    let rows: Vec<(IssueView, TaskType, &str)> = vec![
        (
            issue("ENG-1", &["Bug"]),
            TaskType::Debugger,
            "Entering 'debugger' mode because of the 'Bug' label",
        ),
        (
            issue("ENG-1", &["bug"]),
            TaskType::Debugger,
            "of the 'bug' label",
        ),
        (
            issue("ENG-1", &["Feature"]),
            TaskType::Builder,
            "of the 'Feature' label",
        ),
        (
            issue("ENG-1", &["Defect"]),
            TaskType::Debugger,
            "of the 'Defect' label",
        ),
        (
            issue("ENG-1", &["prd"]),
            TaskType::Scoper,
            "of the 'prd' label",
        ),
        // Explicit labelPrompts beat built-in labels...
        (
            issue("ENG-1", &["Bug", "PRD"]),
            TaskType::Scoper,
            "of the 'PRD' label",
        ),
        // ...and among themselves go debugger, builder, scoper, orchestrator.
        (
            issue("ENG-1", &["PRD", "Defect"]),
            TaskType::Debugger,
            "of the 'Defect' label",
        ),
        (
            issue("ENG-1", &["Bug", "Orchestrator"]),
            TaskType::Orchestrator,
            "of the 'Orchestrator' label",
        ),
        (
            parent(issue("ENG-1", &[])),
            TaskType::Builder,
            "the issue is a sub-issue",
        ),
        (
            parent(issue("ENG-1", &["Bug"])),
            TaskType::Debugger,
            "of the 'Bug' label",
        ),
        (
            issue("ENG-1", &[]),
            TaskType::Orchestrator,
            "no label selects a mode",
        ),
        // labelPrompts of the chosen repository only: 'web' has none, so
        // 'Defect' means nothing there.
        (
            issue("WEB-1", &["Defect"]),
            TaskType::Orchestrator,
            "no label selects a mode",
        ),
        // PRD without labelPrompts is not a scoper.
        (
            issue("WEB-1", &["PRD"]),
            TaskType::Orchestrator,
            "no label selects a mode",
        ),
        (
            issue("WEB-1", &["Scoper"]),
            TaskType::Scoper,
            "of the 'Scoper' label",
        ),
    ];
    for (i, (issue, want, reason)) in rows.into_iter().enumerate() {
        let got = route(&issue, &config);
        assert_eq!(got.task_type, want, "row {i}: {issue:?} → {got:#?}");
        assert!(
            got.task_type_reason.contains(reason),
            "row {i}: reason {:?} lacks {reason:?}",
            got.task_type_reason
        );
    }
}

#[test]
fn model_table() {
    let config = three_repos();
    let described = |labels: &[&str], d: &str| IssueView {
        description: Some(d.to_owned()),
        ..issue("ENG-1", labels)
    };
    let rows: Vec<(IssueView, Option<&str>, &str)> = vec![
        (
            described(&["Bug", "haiku"], "please [model=gpt-5]"),
            Some("gpt-5"),
            "[model=…] tag",
        ),
        (
            issue("ENG-1", &["Bug", "HAIKU"]),
            Some("haiku"),
            "'HAIKU' label",
        ),
        (
            issue("ENG-1", &["Bug"]),
            Some("opus"),
            "configured for debugger tasks",
        ),
        (
            issue("ENG-1", &["Feature"]),
            Some("sonnet"),
            "default model",
        ),
    ];
    for (i, (issue, want, reason)) in rows.into_iter().enumerate() {
        let got = route(&issue, &config);
        assert_eq!(got.model.as_deref(), want, "row {i}: {got:#?}");
        assert!(
            got.model_reason.contains(reason),
            "row {i}: {:?} lacks {reason:?}",
            got.model_reason
        );
    }

    let bare = config_without_models();
    let got = route(&issue("ENG-1", &["Bug"]), &bare);
    assert_eq!(got.model, None);
    assert_eq!(
        got.model_reason,
        "Using Codegen's organization default model"
    );
}

#[test]
fn images_pick_their_model_below_explicit_choices() {
    let mut config = three_repos();
    config.codegen.model_for_images = Some("gemini".into());
    let with_images = |labels: &[&str], d: &str| IssueView {
        description: Some(d.to_owned()),
        images: 2,
        ..issue("ENG-1", labels)
    };
    let got = route(&with_images(&["Bug"], ""), &config);
    assert_eq!(got.model.as_deref(), Some("gemini"));
    assert_eq!(
        got.model_reason,
        "Using model 'gemini' because the issue has images"
    );
    let tagged = route(&with_images(&["Bug"], "[model=gpt-5]"), &config);
    assert_eq!(tagged.model.as_deref(), Some("gpt-5"));
    let labelled = route(&with_images(&["haiku"], ""), &config);
    assert_eq!(labelled.model.as_deref(), Some("haiku"));
    let none = route(&issue("ENG-1", &["Bug"]), &config);
    assert_eq!(none.model.as_deref(), Some("opus"));
}

fn config_without_models() -> Config {
    let text = serde_json::json!({
        "repositories": [repo("api", serde_json::json!({}))],
        "codegen": {"orgId": 1, "apiToken": "t"},
        "linear": {"webhookSecret": "s"}
    });
    parse(&text.to_string(), &BTreeMap::new()).unwrap().config
}

/// `Some((repository id, branch))` when a repository is chosen.
type Expected = Option<(String, Option<String>)>;

fn chosen(id: &str, branch: Option<&str>) -> Expected {
    Some((id.to_owned(), branch.map(str::to_owned)))
}

#[test]
fn repository_table() {
    let config = three_repos();
    let with = |f: &dyn Fn(&mut IssueView), base: IssueView| {
        let mut i = base;
        f(&mut i);
        i
    };
    let desc = |d: &'static str| move |i: &mut IssueView| i.description = Some(d.to_owned());
    let project = |p: &'static str| move |i: &mut IssueView| i.project_name = Some(p.to_owned());
    let team = |t: &'static str| move |i: &mut IssueView| i.team_key = Some(t.to_owned());
    let rows: Vec<(IssueView, Expected, &str)> = vec![
        // Tag beats everything, with a branch override.
        (
            with(
                &desc("do it [repo=acme/web#release-2]"),
                issue("ENG-1", &["backend"]),
            ),
            chosen("web", Some("release-2")),
            "branch 'release-2'",
        ),
        (
            with(&desc("[repo=OPS]"), issue("ENG-1", &[])),
            chosen("ops", None),
            "requested by [repo=OPS]",
        ),
        (
            with(&desc("[repo=nope]"), issue("ENG-1", &[])),
            None,
            "names no configured repository",
        ),
        // Routing label beats project and team.
        (
            with(&project("Website"), issue("ENG-1", &["Backend"])),
            chosen("api", None),
            "'Backend' label",
        ),
        (
            issue("ENG-1", &["backend", "infra"]),
            None,
            "2 repositories match equally",
        ),
        // Project beats team.
        (
            with(&project("website"), issue("ENG-1", &[])),
            chosen("web", None),
            "project 'website'",
        ),
        // Team key, from the field or the identifier prefix.
        (
            with(&team("OPS"), issue("ENG-1", &[])),
            chosen("ops", None),
            "team 'OPS'",
        ),
        (issue("eng-7", &[]), chosen("api", None), "team 'eng'"),
        (issue("DATA-7", &[]), None, "no tag, label, project or team"),
    ];
    for (i, (issue, want, reason)) in rows.into_iter().enumerate() {
        let got = route(&issue, &config).repository;
        let (got_pair, got_reason) = match &got {
            RepositoryDecision::Chosen {
                repository_id,
                branch,
                reason,
            } => (Some((repository_id.clone(), branch.clone())), reason),
            RepositoryDecision::NeedsSelection { reason, .. } => (None, reason),
        };
        assert_eq!(got_pair, want, "row {i}: {issue:?} → {got:#?}");
        assert!(
            got_reason.contains(reason),
            "row {i}: {got_reason:?} lacks {reason:?}"
        );
    }
}

#[test]
fn needs_selection_lists_candidates() {
    let config = three_repos();
    match route(&issue("ENG-1", &["backend", "infra"]), &config).repository {
        RepositoryDecision::NeedsSelection { candidates, .. } => {
            assert_eq!(candidates, vec!["api", "ops"])
        }
        other => panic!("{other:?}"),
    }
    match route(&issue("DATA-1", &[]), &config).repository {
        RepositoryDecision::NeedsSelection { candidates, .. } => {
            assert_eq!(candidates, vec!["api", "web", "ops"])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn single_repository_without_keys_is_the_catch_all() {
    let config = config(serde_json::json!([
        repo("api", serde_json::json!({"teamKeys": ["ENG"]})),
        repo("misc", serde_json::json!({})),
    ]));
    let got = route(&issue("DATA-1", &[]), &config).repository;
    assert_eq!(got.chosen_id(), Some("misc"), "{got:?}");
    assert_eq!(
        route(&issue("ENG-1", &[]), &config).repository.chosen_id(),
        Some("api")
    );
}

#[test]
fn organization_limits_candidates() {
    let config = config(serde_json::json!([
        repo("api", serde_json::json!({})),
        {"id": "other", "name": "other", "linearWorkspaceId": "org-2", "linearToken": "x"},
    ]));
    let mut i = issue("X-1", &[]);
    i.organization_id = Some("org-2".to_owned());
    assert_eq!(route(&i, &config).repository.chosen_id(), Some("other"));
    i.organization_id = None;
    // Both repositories lack routing keys: nobody is the single catch-all.
    assert_eq!(route(&i, &config).repository.chosen_id(), None);
}

#[test]
fn a_repository_without_a_workspace_serves_every_workspace() {
    let config = config(serde_json::json!([
        {"id": "shared", "name": "shared", "teamKeys": ["ENG"]},
        {"id": "other", "name": "other", "linearWorkspaceId": "org-2", "linearToken": "x", "teamKeys": ["OPS"]},
    ]));
    let mut i = issue("ENG-1", &[]);
    for org in ["org-1", "org-2", "org-3"] {
        i.organization_id = Some(org.to_owned());
        assert_eq!(
            route(&i, &config).repository.chosen_id(),
            Some("shared"),
            "{org}"
        );
    }
    // A repository pinned to org-2 is not offered to org-1's issues.
    let mut ops = issue("OPS-1", &[]);
    ops.organization_id = Some("org-1".to_owned());
    assert_ne!(route(&ops, &config).repository.chosen_id(), Some("other"));
    ops.organization_id = Some("org-2".to_owned());
    assert_eq!(route(&ops, &config).repository.chosen_id(), Some("other"));
}
