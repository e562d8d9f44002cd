//! Routing: from an issue and the configuration to a task type, a model and a
//! repository, each with a human-readable reason that Cyrus shows in Linear
//! so people can see (and correct) why it chose what it did.

mod tags;

pub use tags::{RepoTag, find_tag, parse_repo_tag};

use crate::TaskType;
use crate::config::{Config, RepositoryConfig};

/// What routing needs to know about an issue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueView {
    /// e.g. `ENG-12`; its prefix counts as a team key.
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    /// Label names as shown in Linear.
    pub labels: Vec<String>,
    pub team_key: Option<String>,
    pub project_name: Option<String>,
    pub has_parent: bool,
    /// Who created the issue. No rule uses it yet; it is part of the view so
    /// callers fill it once and future rules need no signature change.
    pub creator: Option<String>,
    /// Linear organization the issue belongs to. When set, only repositories
    /// of that workspace are considered.
    pub organization_id: Option<String>,
    /// Images that will be sent with the run (`codegen.modelForImages`).
    pub images: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingDecision {
    pub task_type: TaskType,
    /// e.g. "Entering 'debugger' mode because of the 'Bug' label".
    pub task_type_reason: String,
    /// `None`: Codegen's organization default.
    pub model: Option<String>,
    pub model_reason: String,
    /// Which rule chose the model: an experiment may replace any but an
    /// explicit choice.
    pub model_source: ModelSource,
    pub repository: RepositoryDecision,
}

/// The rule that chose a task's model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A `[model=…]` tag in the description.
    Tag,
    /// A label naming a model.
    Label,
    /// `codegen.modelForImages`.
    Images,
    /// `codegen.modelByTaskType`.
    TaskType,
    /// `codegen.defaultModel`.
    Default,
    /// Codegen's organization default (no model sent).
    Codegen,
}

impl ModelSource {
    /// A person chose the model for this issue.
    pub fn is_explicit(self) -> bool {
        matches!(self, ModelSource::Tag | ModelSource::Label)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepositoryDecision {
    Chosen {
        repository_id: String,
        /// From a `[repo=…#branch]` tag.
        branch: Option<String>,
        reason: String,
    },
    /// Cyrus must ask which repository to use. Candidates are repository ids,
    /// in configuration order.
    NeedsSelection {
        candidates: Vec<String>,
        reason: String,
    },
}

impl RepositoryDecision {
    pub fn chosen_id(&self) -> Option<&str> {
        match self {
            RepositoryDecision::Chosen { repository_id, .. } => Some(repository_id),
            RepositoryDecision::NeedsSelection { .. } => None,
        }
    }
}

/// Routes `issue`. Pure; the rules are listed in `docs/configuration.md`.
pub fn route(issue: &IssueView, config: &Config) -> RoutingDecision {
    let repos: Vec<&RepositoryConfig> = config
        .repositories
        .iter()
        .filter(|r| {
            issue
                .organization_id
                .as_deref()
                .is_none_or(|org| r.serves_workspace(org))
        })
        .collect();
    let repository = choose_repository(issue, &repos);
    let chosen = repository
        .chosen_id()
        .and_then(|id| repos.iter().copied().find(|r| r.id == id));
    let label_scope: Vec<&RepositoryConfig> = match chosen {
        Some(repo) => vec![repo],
        None => repos.clone(),
    };
    let (task_type, task_type_reason) = choose_task_type(issue, &label_scope);
    let (model, model_reason, model_source) = choose_model(issue, task_type, config);
    RoutingDecision {
        task_type,
        task_type_reason,
        model,
        model_reason,
        model_source,
        repository,
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn entering(task_type: TaskType, because: String) -> (TaskType, String) {
    (
        task_type,
        format!("Entering '{task_type}' mode because {because}"),
    )
}

fn choose_task_type(issue: &IssueView, repos: &[&RepositoryConfig]) -> (TaskType, String) {
    if let Some(label) = issue.labels.iter().find(|l| same(l, "orchestrator")) {
        return entering(TaskType::Orchestrator, format!("of the '{label}' label"));
    }
    // Explicit labelPrompts, in a fixed order so overlapping configs are
    // deterministic: debugger, builder, scoper, orchestrator.
    for task_type in [
        TaskType::Debugger,
        TaskType::Builder,
        TaskType::Scoper,
        TaskType::Orchestrator,
    ] {
        for repo in repos {
            let Some(configured) = repo.label_prompts.get(&task_type) else {
                continue;
            };
            if let Some(label) = issue
                .labels
                .iter()
                .find(|l| configured.iter().any(|c| same(c, l)))
            {
                return entering(task_type, format!("of the '{label}' label"));
            }
        }
    }
    let builtin = [
        ("bug", TaskType::Debugger),
        ("debugger", TaskType::Debugger),
        ("feature", TaskType::Builder),
        ("builder", TaskType::Builder),
        ("scoper", TaskType::Scoper),
    ];
    for (name, task_type) in builtin {
        if let Some(label) = issue.labels.iter().find(|l| same(l, name)) {
            return entering(task_type, format!("of the '{label}' label"));
        }
    }
    if issue.has_parent {
        return entering(TaskType::Builder, "the issue is a sub-issue".to_owned());
    }
    entering(
        TaskType::Orchestrator,
        "no label selects a mode and the issue has no parent".to_owned(),
    )
}

fn choose_model(
    issue: &IssueView,
    task_type: TaskType,
    config: &Config,
) -> (Option<String>, String, ModelSource) {
    if let Some(model) = issue
        .description
        .as_deref()
        .and_then(|d| find_tag(d, "model"))
    {
        return (
            Some(model.to_owned()),
            format!("Using model '{model}' requested by a [model=…] tag"),
            ModelSource::Tag,
        );
    }
    let known = config.known_models();
    for label in &issue.labels {
        if let Some(model) = known.iter().find(|m| same(m, label)) {
            return (
                Some((*model).to_owned()),
                format!("Using model '{model}' because of the '{label}' label"),
                ModelSource::Label,
            );
        }
    }
    if issue.images > 0
        && let Some(model) = &config.codegen.model_for_images
    {
        let n = issue.images;
        let what = if n == 1 { "an image" } else { "images" };
        return (
            Some(model.clone()),
            format!("Using model '{model}' because the issue has {what}"),
            ModelSource::Images,
        );
    }
    if let Some(model) = config.codegen.model_by_task_type.get(&task_type) {
        return (
            Some(model.clone()),
            format!("Using model '{model}' configured for {task_type} tasks"),
            ModelSource::TaskType,
        );
    }
    if let Some(model) = &config.codegen.default_model {
        return (
            Some(model.clone()),
            format!("Using the default model '{model}'"),
            ModelSource::Default,
        );
    }
    (
        None,
        "Using Codegen's organization default model".to_owned(),
        ModelSource::Codegen,
    )
}

/// Picks among `matching` at one rule level: one match wins, several need a
/// person, none falls through to the next rule.
fn settle(
    matching: Vec<&RepositoryConfig>,
    why: impl Fn(&RepositoryConfig) -> String,
) -> Option<RepositoryDecision> {
    match matching.as_slice() {
        [] => None,
        [one] => Some(RepositoryDecision::Chosen {
            repository_id: one.id.clone(),
            branch: None,
            reason: why(one),
        }),
        several => Some(RepositoryDecision::NeedsSelection {
            candidates: several.iter().map(|r| r.id.clone()).collect(),
            reason: format!(
                "{} repositories match equally ({})",
                several.len(),
                several
                    .iter()
                    .map(|r| why(r))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

fn choose_repository(issue: &IssueView, repos: &[&RepositoryConfig]) -> RepositoryDecision {
    let all = || repos.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    if let Some(value) = issue
        .description
        .as_deref()
        .and_then(|d| find_tag(d, "repo"))
    {
        let tag = parse_repo_tag(value);
        let found = repos.iter().find(|r| {
            [tag.full, tag.short]
                .iter()
                .any(|t| same(t, &r.name) || same(t, &r.id))
        });
        return match found {
            Some(repo) => RepositoryDecision::Chosen {
                repository_id: repo.id.clone(),
                branch: tag.branch.map(str::to_owned),
                reason: match tag.branch {
                    Some(b) => format!(
                        "Using repository '{}' on branch '{b}' requested by [repo={value}]",
                        repo.name
                    ),
                    None => format!(
                        "Using repository '{}' requested by [repo={value}]",
                        repo.name
                    ),
                },
            },
            None => RepositoryDecision::NeedsSelection {
                candidates: all(),
                reason: format!("[repo={value}] names no configured repository"),
            },
        };
    }

    let by_label: Vec<_> = repos
        .iter()
        .copied()
        .filter(|r| {
            r.routing_labels
                .iter()
                .any(|rl| issue.labels.iter().any(|l| same(l, rl)))
        })
        .collect();
    let label_of = |r: &RepositoryConfig| {
        let label = issue
            .labels
            .iter()
            .find(|l| r.routing_labels.iter().any(|rl| same(l, rl)))
            .map(String::as_str)
            .unwrap_or_default();
        format!(
            "Using repository '{}' because of the '{label}' label",
            r.name
        )
    };
    if let Some(decision) = settle(by_label, label_of) {
        return decision;
    }

    if let Some(project) = &issue.project_name {
        let by_project: Vec<_> = repos
            .iter()
            .copied()
            .filter(|r| r.project_keys.iter().any(|p| same(p, project)))
            .collect();
        let why =
            |r: &RepositoryConfig| format!("Using repository '{}' for project '{project}'", r.name);
        if let Some(decision) = settle(by_project, why) {
            return decision;
        }
    }

    let prefix = issue.identifier.split_once('-').map(|(p, _)| p);
    let team = issue.team_key.as_deref().or(prefix);
    if let Some(team) = team {
        let by_team: Vec<_> = repos
            .iter()
            .copied()
            .filter(|r| r.team_keys.iter().any(|k| same(k, team)))
            .collect();
        let why = |r: &RepositoryConfig| format!("Using repository '{}' for team '{team}'", r.name);
        if let Some(decision) = settle(by_team, why) {
            return decision;
        }
    }

    let catch_all: Vec<_> = repos
        .iter()
        .copied()
        .filter(|r| r.has_no_routing_keys())
        .collect();
    if let [only] = catch_all.as_slice() {
        return RepositoryDecision::Chosen {
            repository_id: only.id.clone(),
            branch: None,
            reason: format!(
                "Using repository '{}', the only one without routing keys",
                only.name
            ),
        };
    }
    RepositoryDecision::NeedsSelection {
        candidates: all(),
        reason: "no tag, label, project or team selects a repository".to_owned(),
    }
}

#[cfg(test)]
mod tests;
