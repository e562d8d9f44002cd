use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn comment(author: &str, day: u32, body: &str) -> Comment {
    Comment {
        author: author.to_owned(),
        created_at: at(day, 9),
        body: body.to_owned(),
    }
}

fn full_input(task_type: TaskType) -> PromptInput {
    PromptInput {
        task_type,
        issue: IssueContext {
            identifier: "ENG-142".to_owned(),
            title: "Login test is flaky on CI".to_owned(),
            description: Some("`auth/login.spec.ts` times out in about 1 of 5 CI runs.\n\nSeen since the session refactor.".to_owned()),
            labels: vec!["Bug".to_owned(), "backend".to_owned()],
            state: Some("In Progress".to_owned()),
            parent: Some(IssueRef {
                identifier: "ENG-100".to_owned(),
                title: "Stabilise CI".to_owned(),
                state: Some("Todo".to_owned()),
            }),
            sub_issues: vec![IssueRef {
                identifier: "ENG-143".to_owned(),
                title: "Add retry logging".to_owned(),
                state: None,
            }],
            // Out of order on purpose: the prompt shows them oldest first.
            comments: vec![
                comment("Bo", 3, "It also fails locally with `--runInBand`."),
                comment("Ada", 2, "First seen on build #881."),
            ],
            attachments: vec![Attachment {
                title: "CI log".to_owned(),
                url: "https://ci.example.com/builds/881".to_owned(),
            }],
            prompt_context: Some("<issue identifier=\"ENG-142\"><title>Login test is flaky on CI</title></issue>".to_owned()),
            guidance: vec!["Open pull requests against `main` and run `cargo test` first.".to_owned()],
        },
        repository: RepositoryContext {
            name: "api".to_owned(),
            branch: Some("release-2".to_owned()),
            allowed_tools: vec!["Read(**)".to_owned(), "Bash(git:*)".to_owned()],
            mcp_servers: vec!["linear".to_owned()],
        },
        follow_up: None,
        previous_run: None,
    }
}

#[test]
fn snapshot_debugger() {
    let p = build_prompt(&full_input(TaskType::Debugger), 12_000);
    assert_eq!(p.truncation, Truncation::default());
    insta::assert_snapshot!(p.text);
}

#[test]
fn snapshot_builder() {
    insta::assert_snapshot!(build_prompt(&full_input(TaskType::Builder), 12_000).text);
}

#[test]
fn snapshot_scoper() {
    insta::assert_snapshot!(build_prompt(&full_input(TaskType::Scoper), 12_000).text);
}

#[test]
fn snapshot_orchestrator() {
    insta::assert_snapshot!(build_prompt(&full_input(TaskType::Orchestrator), 12_000).text);
}

#[test]
fn snapshot_follow_up_with_previous_run() {
    let mut input = full_input(TaskType::Builder);
    input.follow_up = Some("Please also cover the logout path.".to_owned());
    input.previous_run = Some(PreviousRun {
        status: Some("COMPLETE".to_owned()),
        summary: Some("Added a retry around the session fetch.".to_owned()),
        pr_url: Some("https://github.com/acme/api/pull/7".to_owned()),
    });
    insta::assert_snapshot!(build_prompt(&input, 12_000).text);
}

#[test]
fn minimal_issue_renders_without_empty_sections() {
    let input = PromptInput {
        task_type: TaskType::Orchestrator,
        issue: IssueContext {
            identifier: "ENG-1".to_owned(),
            title: "Do it".to_owned(),
            ..IssueContext::default()
        },
        repository: RepositoryContext {
            name: "api".to_owned(),
            ..RepositoryContext::default()
        },
        follow_up: Some("   ".to_owned()),
        previous_run: None,
    };
    let text = build_prompt(&input, 12_000).text;
    assert!(text.contains("(no description)"), "{text}");
    for absent in [
        "## Comments",
        "## Guidance",
        "## Context from Linear",
        "## Previous run",
        "## New message",
        "\n\n\n",
    ] {
        assert!(!text.contains(absent), "unexpected {absent:?} in\n{text}");
    }
}

#[test]
fn approx_tokens_is_chars_over_four_rounded_up() {
    assert_eq!(approx_tokens(""), 0);
    assert_eq!(approx_tokens("abcd"), 1);
    assert_eq!(approx_tokens("abcde"), 2);
    assert_eq!(approx_tokens("日本語"), 1);
    let p = build_prompt(&full_input(TaskType::Builder), 12_000);
    assert_eq!(p.approx_tokens, p.text.chars().count().div_ceil(4));
}

fn with_many_comments(n: u32, body_len: usize) -> PromptInput {
    let mut input = full_input(TaskType::Builder);
    input.issue.comments = (1..=n)
        .map(|i| Comment {
            author: format!("user{i}"),
            created_at: at(1, 0) + chrono::Duration::minutes(i64::from(i)),
            body: format!("comment number {i} ") + &"x".repeat(body_len),
        })
        .collect();
    input
}

#[test]
fn oldest_comments_go_first() {
    let input = with_many_comments(40, 400);
    let untruncated = build_prompt(&input, 1_000_000);
    assert_eq!(untruncated.truncation, Truncation::default());
    let budget = untruncated.approx_tokens - 1_000;
    let p = build_prompt(&input, budget);
    assert!(p.approx_tokens <= budget, "{} > {budget}", p.approx_tokens);
    let dropped = p.truncation.comments_dropped;
    assert!(dropped > 0 && dropped < 40, "{:?}", p.truncation);
    assert_eq!(p.truncation.description_chars_cut, 0);
    assert!(
        !p.text.contains(&format!("comment number {dropped} ")),
        "dropped comment still present"
    );
    assert!(p.text.contains(&format!("comment number {} ", dropped + 1)));
    assert!(p.text.contains("comment number 40 "));
    assert!(
        p.text
            .contains(&format!("[… truncated {dropped} older comments (")),
        "{}",
        p.text
    );
}

#[test]
fn description_tail_is_cut_after_all_comments() {
    let mut input = with_many_comments(5, 100);
    input.issue.description = Some(format!("START {} END", "y".repeat(20_000)));
    let budget = 2_000;
    let p = build_prompt(&input, budget);
    assert!(p.approx_tokens <= budget, "{} > {budget}", p.approx_tokens);
    assert_eq!(p.truncation.comments_dropped, 5);
    assert!(p.truncation.description_chars_cut > 0);
    assert!(p.text.contains("START "));
    assert!(!p.text.contains(" END"));
    let marker = truncation_marker(p.truncation.description_chars_cut);
    assert!(p.text.contains(&marker), "no {marker:?} in prompt");
    assert!(!p.truncation.over_budget);
}

#[test]
fn reports_over_budget_when_fixed_parts_do_not_fit() {
    let mut input = full_input(TaskType::Scoper);
    input.issue.sub_issues = (0..500)
        .map(|i| IssueRef {
            identifier: format!("ENG-{i}"),
            title: "a sub-issue with a fairly long title".to_owned(),
            state: None,
        })
        .collect();
    let p = build_prompt(&input, 1_000);
    assert!(p.truncation.over_budget);
    assert!(p.approx_tokens > 1_000);
}

proptest! {
    #[test]
    fn truncation_keeps_valid_utf8_and_the_budget(
        description in "\\PC{0,3000}",
        comments in proptest::collection::vec("\\PC{0,400}", 0..12),
        budget in 1_000usize..2_500,
    ) {
        let mut input = full_input(TaskType::Debugger);
        input.issue.description = Some(description.clone());
        input.issue.comments = comments
            .iter()
            .enumerate()
            .map(|(i, body)| Comment {
                author: "a".to_owned(),
                created_at: at(1, 0) + chrono::Duration::minutes(i as i64),
                body: body.clone(),
            })
            .collect();
        let p = build_prompt(&input, budget);
        // A String is always valid UTF-8; a cut inside a char would have
        // panicked. Check the kept description is a true prefix.
        if p.truncation.description_chars_cut > 0 {
            let kept = description.chars().count() - p.truncation.description_chars_cut;
            let prefix: String = description.chars().take(kept).collect();
            prop_assert!(p.text.contains(prefix.trim_end()));
        }
        if !p.truncation.over_budget {
            prop_assert!(p.approx_tokens <= budget);
        }
        prop_assert_eq!(p.approx_tokens, approx_tokens(&p.text));
    }
}

#[test]
fn repository_context_from_config() {
    let repo = crate::config::RepositoryConfig {
        id: "r".to_owned(),
        name: "api".to_owned(),
        repository_path: None,
        linear_token: None,
        linear_workspace_id: Some("org".to_owned()),
        codegen_repo_id: None,
        team_keys: vec![],
        project_keys: vec![],
        routing_labels: vec![],
        label_prompts: Default::default(),
        allowed_tools: vec!["Read(**)".to_owned()],
        mcp_servers: vec!["linear".to_owned()],
    };
    let ctx = RepositoryContext::from_config(&repo, Some("dev".to_owned()));
    assert_eq!(ctx.name, "api");
    assert_eq!(ctx.branch.as_deref(), Some("dev"));
    assert_eq!(ctx.allowed_tools, vec!["Read(**)"]);
    assert_eq!(ctx.mcp_servers, vec!["linear"]);
}

#[test]
fn follow_up_prompt_for_a_resume_carries_the_message_and_the_pr_branch() {
    let previous = PreviousRun {
        status: Some("COMPLETE".to_owned()),
        summary: None,
        pr_url: Some("https://github.com/acme/app/pull/7".to_owned()),
    };
    let p = follow_up_prompt("Please also cover logout.", Some(&previous), None, 1_000);
    assert!(p.text.starts_with("## Previous run\n"), "{}", p.text);
    assert!(
        p.text
            .contains("https://github.com/acme/app/pull/7 (push to this pull request's branch"),
        "{}",
        p.text
    );
    assert!(
        p.text
            .ends_with("## New message from the requester\nAct on this message first:\n\nPlease also cover logout.\n"),
        "{}",
        p.text
    );
    assert_eq!(p.truncation, Truncation::default());
}

#[test]
fn follow_up_prompt_for_a_new_run_keeps_the_base_and_cuts_the_message_to_the_budget() {
    let base = "# Fix the login bug\n\nAll the original context.";
    let message = "x".repeat(4_000);
    let p = follow_up_prompt(&message, None, Some(base), 300);
    assert!(p.text.starts_with(base), "{}", p.text);
    assert!(p.text.contains("[… truncated"), "{}", p.text);
    assert!(p.truncation.follow_up_chars_cut > 2_500);
    assert!(!p.truncation.over_budget);
    assert!(p.approx_tokens <= 300, "{} tokens", p.approx_tokens);
}

#[test]
fn follow_up_prompt_cuts_the_earlier_prompt_before_the_new_message() {
    let base = format!("# Fix the login bug\n\n{}", "old context ".repeat(500));
    let message = "Please also cover the logout path.";
    let p = follow_up_prompt(message, None, Some(&base), 300);
    assert!(p.text.starts_with("# Fix the login bug"), "{}", p.text);
    assert!(p.text.contains(message), "the message is whole: {}", p.text);
    assert!(p.truncation.base_chars_cut > 4_000, "{:?}", p.truncation);
    assert_eq!(p.truncation.follow_up_chars_cut, 0);
    assert!(!p.truncation.over_budget);
    assert!(p.approx_tokens <= 300, "{} tokens", p.approx_tokens);
}
