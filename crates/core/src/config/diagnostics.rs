//! Problems (the configuration is unusable) and warnings (it works, but
//! something looks off), each tied to the JSON path it concerns so the person
//! fixing the file knows exactly where to look.

use serde::Serialize;
use std::fmt;

/// One reason the configuration cannot be used, e.g.
/// `codegen.maxCostPerTask: must be greater than 0 (got -1)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path in dotted form (`repositories[0].teamKeys`).
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Something that does not stop Cyrus but is probably a mistake (an unknown
/// key is usually a typo of a real one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every problem and warning found in one pass, so a user fixes a
/// broken file in one edit instead of one error per run.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

impl Diagnostics {
    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.into(),
            message: message.into(),
        });
    }
}
