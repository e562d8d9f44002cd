use crate::support::cyrus;

#[test]
fn bash_completions_mention_commands() {
    let home = tempfile::tempdir().unwrap();
    cyrus(home.path(), &["completions", "bash"], &[])
        .assert_code(0)
        .assert_stdout_contains("complete -F")
        .assert_stdout_contains("check");
}

/// Every listed command must at least parse and describe itself; commands
/// are added by several people, so this checks the list's health rather than
/// pinning it.
#[test]
fn help_lists_commands_that_answer_help() {
    let home = tempfile::tempdir().unwrap();
    let out = cyrus(home.path(), &["--help"], &[]);
    out.assert_code(0);
    let commands: Vec<&str> = out
        .stdout
        .split("Commands:")
        .nth(1)
        .unwrap_or_default()
        .split("Options:")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for expected in ["config", "completions"] {
        assert!(
            commands.contains(&expected),
            "{expected} missing from {commands:?}\n{out}"
        );
    }
    for command in commands.iter().filter(|c| **c != "help") {
        cyrus(home.path(), &[command, "--help"], &[]).assert_code(0);
    }
}
