//! `[key=value]` tags that people write in an issue description to steer
//! Cyrus, e.g. `[repo=acme/api#release-1.2]` or `[model=claude-3-5-sonnet]`.

/// The value of the first `[key=value]` tag for `key` (case-insensitive key,
/// value trimmed). Empty values are ignored.
pub fn find_tag<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inside = &after[..close];
        if let Some((k, v)) = inside.split_once('=')
            && k.trim().eq_ignore_ascii_case(key)
            && !v.trim().is_empty()
        {
            return Some(v.trim());
        }
        rest = &after[close + 1..];
    }
    None
}

/// A parsed `[repo=…]` value: `name`, `org/name`, optionally `#branch`.
#[derive(Debug, PartialEq, Eq)]
pub struct RepoTag<'a> {
    pub full: &'a str,
    /// The part after the last `/` (or all of it).
    pub short: &'a str,
    pub branch: Option<&'a str>,
}

pub fn parse_repo_tag(value: &str) -> RepoTag<'_> {
    let (full, branch) = match value.split_once('#') {
        Some((full, branch)) if !branch.trim().is_empty() => (full.trim(), Some(branch.trim())),
        Some((full, _)) => (full.trim(), None),
        None => (value.trim(), None),
    };
    let short = full.rsplit('/').next().unwrap_or(full);
    RepoTag {
        full,
        short,
        branch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tags() {
        let text = "Fix it [see docs] then [Repo = acme/api#fix-1] and [model=gpt-x]";
        assert_eq!(find_tag(text, "repo"), Some("acme/api#fix-1"));
        assert_eq!(find_tag(text, "model"), Some("gpt-x"));
        assert_eq!(find_tag(text, "branch"), None);
        assert_eq!(find_tag("[repo=]", "repo"), None);
        assert_eq!(find_tag("[repo=api", "repo"), None);
        assert_eq!(find_tag("ünï [repo=café]", "repo"), Some("café"));
    }

    #[test]
    fn parses_repo_tags() {
        assert_eq!(
            parse_repo_tag("acme/api#release"),
            RepoTag {
                full: "acme/api",
                short: "api",
                branch: Some("release")
            }
        );
        assert_eq!(
            parse_repo_tag("api"),
            RepoTag {
                full: "api",
                short: "api",
                branch: None
            }
        );
        assert_eq!(
            parse_repo_tag("api#"),
            RepoTag {
                full: "api",
                short: "api",
                branch: None
            }
        );
    }
}
