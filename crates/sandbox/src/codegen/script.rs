//! How one run (or one resumed leg of a run) behaves: its outcome, duration,
//! pull requests and log volume.
//!
//! A script comes from, in priority order: a script registered for that run id
//! through the control API, the next-run script queue, a `[sim …]` marker in
//! the prompt, or the simulator defaults.
//!
//! Marker syntax (anywhere in the prompt, keys in any order, all optional):
//!
//! ```text
//! [sim outcome=FAILED duration=30s prs=1 logs=40 initial=PENDING running=in_progress never_finish]
//! ```
//!
//! - `outcome`: the final status, sent verbatim (so `completed` or `WEIRD`
//!   script lowercase and unknown statuses). Default `COMPLETE`.
//! - `duration`: simulated time until the outcome (`humantime`: `90s`, `5m`).
//! - `prs`: number of pull requests opened; `logs`: number of progress logs.
//! - `initial`: status right after create (default `ACTIVE`);
//!   `running`: status while running (default `ACTIVE`).
//! - `never_finish`: the run stays in its running status forever.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Behaviour of one run leg. Fields left `None` take the simulator defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunScript {
    /// Final status, verbatim (e.g. `COMPLETE`, `FAILED`, `PAUSED`, `completed`).
    pub outcome: Option<String>,
    /// Simulated time from start (or resume) to the outcome.
    #[serde(with = "humantime_serde_opt")]
    pub duration: Option<Duration>,
    /// Pull requests opened when the run finishes.
    pub prs: Option<u32>,
    /// Progress log entries spread over the run (besides the final entry).
    pub logs: Option<u32>,
    /// Status reported immediately after create/resume.
    pub initial_status: Option<String>,
    /// Status reported while running, after the first simulated second.
    pub running_status: Option<String>,
    /// Never reach the outcome.
    pub never_finish: bool,
    /// The run's final answer (`result`) on success, instead of the
    /// default "Finished: …" (e.g. a planning run's plan). Control API only.
    pub result: Option<String>,
}

/// A `[sim …]` marker that could not be understood. Surfaced as a 422 so a
/// typo in a test prompt fails loudly instead of running the default script.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MarkerError {
    #[error("unknown key `{0}` in [sim …] marker")]
    UnknownKey(String),
    #[error("bad value `{value}` for `{key}` in [sim …] marker")]
    BadValue { key: String, value: String },
    #[error("unterminated [sim …] marker")]
    Unterminated,
}

impl RunScript {
    /// Parses the first `[sim …]` marker in `prompt`; `Ok(None)` without one.
    pub fn from_prompt(prompt: &str) -> Result<Option<RunScript>, MarkerError> {
        let Some(start) = prompt.find("[sim") else {
            return Ok(None);
        };
        let rest = &prompt[start + 4..];
        if !(rest.starts_with(' ') || rest.starts_with(']')) {
            return Ok(None);
        }
        let end = rest.find(']').ok_or(MarkerError::Unterminated)?;
        let mut script = RunScript::default();
        for word in rest[..end].split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let bad = || MarkerError::BadValue {
                key: key.to_owned(),
                value: value.to_owned(),
            };
            let nonempty = |v: &str| {
                if v.is_empty() {
                    Err(bad())
                } else {
                    Ok(v.to_owned())
                }
            };
            match key {
                "outcome" | "status" => script.outcome = Some(nonempty(value)?),
                "duration" => {
                    script.duration = Some(humantime::parse_duration(value).map_err(|_| bad())?)
                }
                "prs" => script.prs = Some(value.parse().map_err(|_| bad())?),
                "logs" => script.logs = Some(value.parse().map_err(|_| bad())?),
                "initial" => script.initial_status = Some(nonempty(value)?),
                "running" => script.running_status = Some(nonempty(value)?),
                "never_finish" | "never-finish" if value.is_empty() || value == "true" => {
                    script.never_finish = true
                }
                "never_finish" | "never-finish" => return Err(bad()),
                other => return Err(MarkerError::UnknownKey(other.to_owned())),
            }
        }
        Ok(Some(script))
    }
}

/// Serde for `Option<Duration>` as humantime strings ("30s") or integer seconds.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Secs(s)) => Ok(Some(Duration::from_secs(s))),
            Some(Raw::Text(t)) => humantime::parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_marker() {
        let s = RunScript::from_prompt(
            "Fix it [sim outcome=FAILED duration=30s prs=1 logs=40 never_finish] please",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.outcome.as_deref(), Some("FAILED"));
        assert_eq!(s.duration, Some(Duration::from_secs(30)));
        assert_eq!(s.prs, Some(1));
        assert_eq!(s.logs, Some(40));
        assert!(s.never_finish);
    }

    #[test]
    fn no_marker_means_defaults() {
        assert_eq!(
            RunScript::from_prompt("plain [simple] prompt").unwrap(),
            None
        );
    }

    #[test]
    fn typos_are_errors() {
        assert_eq!(
            RunScript::from_prompt("[sim outcom=FAILED]"),
            Err(MarkerError::UnknownKey("outcom".into()))
        );
        assert!(matches!(
            RunScript::from_prompt("[sim prs=x]"),
            Err(MarkerError::BadValue { .. })
        ));
        assert_eq!(
            RunScript::from_prompt("[sim prs=1"),
            Err(MarkerError::Unterminated)
        );
    }

    #[test]
    fn json_accepts_seconds_or_text() {
        let a: RunScript = serde_json::from_str(r#"{"duration": 30}"#).unwrap();
        let b: RunScript = serde_json::from_str(r#"{"duration": "30s"}"#).unwrap();
        assert_eq!(a, b);
    }
}
