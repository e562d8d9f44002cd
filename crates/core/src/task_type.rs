//! The four kinds of work Cyrus routes an issue to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    Orchestrator,
    Builder,
    Debugger,
    Scoper,
}

impl TaskType {
    pub const ALL: [TaskType; 4] = [
        TaskType::Orchestrator,
        TaskType::Builder,
        TaskType::Debugger,
        TaskType::Scoper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Orchestrator => "orchestrator",
            TaskType::Builder => "builder",
            TaskType::Debugger => "debugger",
            TaskType::Scoper => "scoper",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown task type `{s}` (expected orchestrator, builder, debugger or scoper)"
                )
            })
    }
}
