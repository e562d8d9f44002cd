//! The typed view of a task's `data` column: everything about a task that is
//! not a first-class store column. Unknown keys are kept as they are, so an
//! older worker reading a newer row loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskData {
    // From the `created` webhook.
    pub prompt_context: Option<String>,
    pub guidance: Vec<String>,
    pub mention: Option<String>,
    pub app_user_id: Option<String>,
    /// Another task was already working on the issue when this session was
    /// created; its message went there as a follow-up.
    pub merged_into: Option<String>,
    /// Who delegated or @mentioned (the session's creator): the person the
    /// access policy decides on.
    pub requested_by: Option<String>,
    pub requested_by_email: Option<String>,
    /// Set when proactive triage opened the session (the rule's name); the
    /// policy's person checks do not apply, the rule's bounds did.
    pub triage_rule: Option<String>,

    /// The Linear issue's web address (from the issue fetch), for links on
    /// the dashboard.
    pub issue_url: Option<String>,

    // Routing.
    /// The configured repository's id.
    pub repository: Option<String>,
    pub repository_name: Option<String>,
    pub branch: Option<String>,
    /// Repository ids offered in a `select` elicitation.
    pub selection_candidates: Vec<String>,
    /// The model experiment the task matched, and its arm (`None` with an
    /// experiment: outside it, the model was chosen explicitly).
    pub experiment: Option<String>,
    pub experiment_arm: Option<String>,

    // Prompt.
    pub prompt: Option<String>,
    pub prompt_tokens: Option<usize>,
    /// Characters the token budget cut from the prompt.
    pub prompt_cut_chars: usize,
    /// Approximate tokens per prompt section, as built.
    pub prompt_sections: Vec<(String, usize)>,
    pub images: Vec<String>,

    // The run.
    /// 1 for the first run of the task; a new run (not a resume) increments.
    pub run_attempt: i64,
    pub web_url: Option<String>,
    pub log_cursor: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Sequence of cost-ledger entries written for the task.
    pub cost_seq: i64,
    pub pr_urls: Vec<String>,
    pub resumes: i64,
    /// Follow-ups already handed to a run, stored with the state change
    /// that handed them over: marking them delivered comes after, so a
    /// crash between the two must not deliver them again.
    pub delivered_followups: Vec<i64>,
    /// Follow-ups of a resume sent to Codegen whose answer is not recorded
    /// yet; a later attempt first checks whether the run is going again.
    pub resume_sent: Vec<i64>,
    pub last_status: Option<String>,

    // Budget.
    /// The UTC day for which the user was told the task waits for budget.
    pub budget_notice_day: Option<String>,

    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl TaskData {
    pub fn from_value(value: &Value) -> TaskData {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("task data serializes")
    }
}
