//! Where the configuration file is looked for. Pure: the caller passes the
//! flag, the environment and the home directory, and checks existence itself.

use super::env;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files to try, in order; the first that exists is used.
///
/// `--config PATH` alone if given; else `CYRUS_CONFIG` alone if set; else
/// `$XDG_CONFIG_HOME/cyrus/config.json` (XDG's default `~/.config` when the
/// variable is unset) followed by `~/.cyrus/config.json`. An explicit choice
/// is never silently replaced by another file. When none exists, report the
/// whole list.
pub fn config_candidates(
    flag: Option<&Path>,
    env: &BTreeMap<String, String>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(path) = flag {
        return vec![path.to_path_buf()];
    }
    if let Some(path) = env.get(env::CONFIG).filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(path)];
    }
    let mut out = Vec::new();
    let xdg = env
        .get("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")));
    if let Some(xdg) = xdg {
        out.push(xdg.join("cyrus").join("config.json"));
    }
    if let Some(home) = home {
        out.push(home.join(".cyrus").join("config.json"));
    }
    out
}

/// Replaces a leading `~` (alone or followed by `/`) with `home`, also after
/// a `sqlite://` scheme, as in the default store URL.
pub fn expand_tilde(text: &str, home: &Path) -> String {
    let (scheme, rest) = match text.strip_prefix("sqlite://") {
        Some(rest) => ("sqlite://", rest),
        None => ("", text),
    };
    let home = home.to_string_lossy();
    if rest == "~" {
        format!("{scheme}{home}")
    } else if let Some(tail) = rest.strip_prefix("~/") {
        format!("{scheme}{}/{tail}", home.trim_end_matches('/'))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flag_wins_over_everything() {
        let got = config_candidates(
            Some(Path::new("/x/c.json")),
            &env(&[("CYRUS_CONFIG", "/y.json"), ("XDG_CONFIG_HOME", "/xdg")]),
            Some(Path::new("/home/u")),
        );
        assert_eq!(got, vec![PathBuf::from("/x/c.json")]);
    }

    #[test]
    fn env_var_wins_over_defaults() {
        let got = config_candidates(
            None,
            &env(&[("CYRUS_CONFIG", "/y.json")]),
            Some(Path::new("/h")),
        );
        assert_eq!(got, vec![PathBuf::from("/y.json")]);
    }

    #[test]
    fn defaults_are_xdg_then_dot_cyrus() {
        let got = config_candidates(
            None,
            &env(&[("XDG_CONFIG_HOME", "/xdg")]),
            Some(Path::new("/h")),
        );
        assert_eq!(
            got,
            vec![
                PathBuf::from("/xdg/cyrus/config.json"),
                PathBuf::from("/h/.cyrus/config.json")
            ]
        );
        let got = config_candidates(None, &env(&[("CYRUS_CONFIG", "")]), Some(Path::new("/h")));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/h/.config/cyrus/config.json"),
                PathBuf::from("/h/.cyrus/config.json")
            ]
        );
        assert!(config_candidates(None, &env(&[]), None).is_empty());
    }

    #[test]
    fn tilde_expansion() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_tilde("sqlite://~/.cyrus/cyrus.db", home),
            "sqlite:///home/u/.cyrus/cyrus.db"
        );
        assert_eq!(expand_tilde("~/a", home), "/home/u/a");
        assert_eq!(expand_tilde("~", home), "/home/u");
        assert_eq!(expand_tilde("~bob/a", home), "~bob/a");
        assert_eq!(expand_tilde("postgres://u@h/db", home), "postgres://u@h/db");
    }
}
