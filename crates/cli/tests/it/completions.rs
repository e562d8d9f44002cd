use crate::support::cyrus;

#[test]
fn bash_completions_mention_commands() {
    let home = tempfile::tempdir().unwrap();
    cyrus(home.path(), &["completions", "bash"], &[])
        .assert_code(0)
        .assert_stdout_contains("complete -F")
        .assert_stdout_contains("check");
}

#[test]
fn help_lists_only_working_commands() {
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
    assert_eq!(commands, vec!["config", "completions", "sandbox", "help"], "{out}");
}
