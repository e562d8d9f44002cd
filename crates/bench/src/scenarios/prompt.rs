//! Prompt size over a fixed corpus of realistic issues
//! (`crates/bench/data/prompt-corpus.json`, with the `promptContext` Linear
//! sends): tokens per task type with Linear's context sent verbatim (before)
//! and condensed (after, the default), and which sections the tokens go to.
//! Deterministic: no network, no clock.

use crate::report::{Figure, Goal};
use cyrus_core::TaskType;
use cyrus_core::prompt::{
    self, Comment, IssueContext, IssueRef, PromptInput, PromptOptions, RepositoryContext,
};
use serde::Deserialize;

const CORPUS: &str = include_str!("../../data/prompt-corpus.json");

#[derive(Debug, Deserialize)]
struct Corpus {
    issues: Vec<CorpusIssue>,
}

/// One issue of the corpus, with the facts a prompt must still carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorpusIssue {
    pub task_type: TaskType,
    pub identifier: String,
    pub title: String,
    pub description: String,
    pub labels: Vec<String>,
    pub state: String,
    pub parent: Option<CorpusRef>,
    pub comments: Vec<CorpusComment>,
    pub guidance: Vec<String>,
    pub prompt_context: String,
    /// Texts that are each said somewhere in the issue or its context.
    pub facts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CorpusRef {
    pub identifier: String,
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorpusComment {
    pub author: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub body: String,
}

pub fn corpus() -> Vec<CorpusIssue> {
    serde_json::from_str::<Corpus>(CORPUS)
        .expect("the corpus parses")
        .issues
}

/// The prompt input the worker would build for a corpus issue.
pub fn input(issue: &CorpusIssue) -> PromptInput {
    PromptInput {
        task_type: issue.task_type,
        issue: IssueContext {
            identifier: issue.identifier.clone(),
            title: issue.title.clone(),
            description: Some(issue.description.clone()),
            labels: issue.labels.clone(),
            state: Some(issue.state.clone()),
            parent: issue.parent.as_ref().map(|p| IssueRef {
                identifier: p.identifier.clone(),
                title: p.title.clone(),
                state: None,
            }),
            sub_issues: Vec::new(),
            comments: issue
                .comments
                .iter()
                .map(|c| Comment {
                    author: c.author.clone(),
                    created_at: c.created_at,
                    body: c.body.clone(),
                })
                .collect(),
            attachments: Vec::new(),
            prompt_context: Some(issue.prompt_context.clone()),
            guidance: issue.guidance.clone(),
        },
        repository: RepositoryContext {
            name: "web".into(),
            branch: None,
            allowed_tools: vec!["Read(**)".into(), "Edit(**)".into()],
            mcp_servers: Vec::new(),
        },
        follow_up: None,
        previous_run: None,
    }
}

/// A budget no corpus prompt reaches, so cuts do not blur the comparison.
const BUDGET: usize = 100_000;

pub fn run() -> Vec<Figure> {
    let issues = corpus();
    let mut figures = Vec::new();
    let mut all_before = 0usize;
    let mut all_after = 0usize;
    for task_type in TaskType::ALL {
        let mine: Vec<&CorpusIssue> = issues.iter().filter(|i| i.task_type == task_type).collect();
        if mine.is_empty() {
            continue;
        }
        let (mut before, mut after, mut linear_before, mut linear_after) = (0, 0, 0, 0);
        for issue in &mine {
            let input = input(issue);
            let verbatim = prompt::build_prompt_with(
                &input,
                BUDGET,
                PromptOptions {
                    condense_linear_context: false,
                },
            );
            let condensed = prompt::build_prompt(&input, BUDGET);
            before += verbatim.approx_tokens;
            after += condensed.approx_tokens;
            let linear = |p: &prompt::Prompt| {
                p.sections
                    .iter()
                    .find(|(n, _)| *n == "linear_context")
                    .map(|(_, t)| *t)
                    .unwrap_or(0)
            };
            linear_before += linear(&verbatim);
            linear_after += linear(&condensed);
        }
        all_before += before;
        all_after += after;
        let n = mine.len() as f64;
        let name = format!("{task_type} ({} issues)", mine.len());
        figures.push(Figure::new(
            "prompt tokens",
            &format!("{name}: before, mean"),
            Some((before as f64 / n).round()),
            "tokens",
        ));
        figures.push(Figure::new(
            "prompt tokens",
            &format!("{name}: after, mean"),
            Some((after as f64 / n).round()),
            "tokens",
        ));
        figures.push(
            Figure::new(
                "prompt tokens",
                &format!("{name}: fewer"),
                Some(percent(before, after)),
                "%",
            )
            .goal(Goal::AtLeast(25.0))
            .note(format!(
                "Linear context section {:.0} → {:.0} tokens per issue",
                linear_before as f64 / n,
                linear_after as f64 / n
            )),
        );
    }
    figures.push(
        Figure::new(
            "prompt tokens",
            "all issues: fewer",
            Some(percent(all_before, all_after)),
            "%",
        )
        .goal(Goal::AtLeast(25.0)),
    );
    figures
}

fn percent(before: usize, after: usize) -> f64 {
    if before == 0 {
        return 0.0;
    }
    ((before - after.min(before)) as f64 * 1000.0 / before as f64).round() / 10.0
}
