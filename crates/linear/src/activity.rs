//! Agent activities we emit into a Linear agent session.

use serde_json::{Value, json};

/// The content of an activity (`content.type`). Agents cannot emit `prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityContent {
    Thought {
        body: String,
    },
    Action {
        action: String,
        parameter: String,
        result: Option<String>,
    },
    Elicitation {
        body: String,
    },
    Response {
        body: String,
    },
    Error {
        body: String,
    },
}

impl ActivityContent {
    /// Linear's `content.type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Thought { .. } => "thought",
            Self::Action { .. } => "action",
            Self::Elicitation { .. } => "elicitation",
            Self::Response { .. } => "response",
            Self::Error { .. } => "error",
        }
    }

    /// Whether Linear allows `ephemeral: true` on this type.
    pub fn may_be_ephemeral(&self) -> bool {
        matches!(self, Self::Thought { .. } | Self::Action { .. })
    }

    /// `response` and `error` end the session's turn; they must always arrive.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Response { .. } | Self::Error { .. })
    }

    /// The main text, for empty-body checks.
    pub fn text(&self) -> &str {
        match self {
            Self::Thought { body }
            | Self::Elicitation { body }
            | Self::Response { body }
            | Self::Error { body } => body,
            Self::Action { action, .. } => action,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Action {
                action,
                parameter,
                result,
            } => {
                let mut v = json!({"type": "action", "action": action, "parameter": parameter});
                if let Some(result) = result {
                    v["result"] = json!(result);
                }
                v
            }
            other => json!({"type": other.kind(), "body": other.text()}),
        }
    }
}

/// One choice of a `select` elicitation. Values are plain repo URLs or names,
/// never credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectOption {
    pub value: String,
    pub label: Option<String>,
}

/// Signals an agent may attach (`stop` is the human's; `continue` is
/// undocumented and never sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivitySignal {
    /// On an elicitation: offer a choice list.
    Select { options: Vec<SelectOption> },
    /// On an elicitation: ask the user to link an account.
    Auth {
        url: String,
        user_id: Option<String>,
        provider_name: Option<String>,
    },
}

/// An activity ready to send with `agentActivityCreate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    pub session_id: String,
    pub content: ActivityContent,
    pub ephemeral: bool,
    pub signal: Option<ActivitySignal>,
    /// Client-chosen UUID v4 that makes retries idempotent. Store it with the
    /// outbox item so every retry sends the same id.
    pub id: Option<String>,
}

impl NewActivity {
    pub fn new(session_id: impl Into<String>, content: ActivityContent) -> Self {
        Self {
            session_id: session_id.into(),
            content,
            ephemeral: false,
            signal: None,
            id: None,
        }
    }

    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    pub fn with_signal(mut self, signal: ActivitySignal) -> Self {
        self.signal = Some(signal);
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The `AgentActivityCreateInput` JSON. `ephemeral` is dropped for types
    /// that do not allow it rather than letting Linear reject the activity.
    pub fn to_input(&self) -> Value {
        let mut input = json!({
            "agentSessionId": self.session_id,
            "content": self.content.to_json(),
        });
        if self.ephemeral && self.content.may_be_ephemeral() {
            input["ephemeral"] = json!(true);
        }
        if let Some(id) = &self.id {
            input["id"] = json!(id);
        }
        match &self.signal {
            None => {}
            Some(ActivitySignal::Select { options }) => {
                let options: Vec<Value> = options
                    .iter()
                    .map(|o| match &o.label {
                        Some(label) => json!({"value": o.value, "label": label}),
                        None => json!({"value": o.value}),
                    })
                    .collect();
                input["signal"] = json!("select");
                input["signalMetadata"] = json!({"options": options});
            }
            Some(ActivitySignal::Auth {
                url,
                user_id,
                provider_name,
            }) => {
                let mut meta = json!({"url": url});
                if let Some(u) = user_id {
                    meta["userId"] = json!(u);
                }
                if let Some(p) = provider_name {
                    meta["providerName"] = json!(p);
                }
                input["signal"] = json!("auth");
                input["signalMetadata"] = meta;
            }
        }
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_elicitation_input_matches_the_documented_shape() {
        let a = NewActivity::new(
            "s-1",
            ActivityContent::Elicitation {
                body: "Which repository?".into(),
            },
        )
        .with_signal(ActivitySignal::Select {
            options: vec![
                SelectOption {
                    value: "https://github.com/acme/web".into(),
                    label: None,
                },
                SelectOption {
                    value: "https://github.com/acme/api".into(),
                    label: Some("API".into()),
                },
            ],
        });
        assert_eq!(
            a.to_input(),
            json!({"agentSessionId": "s-1",
                   "content": {"type": "elicitation", "body": "Which repository?"},
                   "signal": "select",
                   "signalMetadata": {"options": [{"value": "https://github.com/acme/web"},
                                                  {"value": "https://github.com/acme/api", "label": "API"}]}})
        );
    }

    #[test]
    fn ephemeral_only_where_allowed_and_id_is_forwarded() {
        let thought = NewActivity::new("s", ActivityContent::Thought { body: "x".into() })
            .ephemeral()
            .with_id("11111111-1111-4111-8111-111111111111");
        assert_eq!(thought.to_input()["ephemeral"], json!(true));
        assert_eq!(
            thought.to_input()["id"],
            json!("11111111-1111-4111-8111-111111111111")
        );
        let response = NewActivity::new(
            "s",
            ActivityContent::Response {
                body: "done".into(),
            },
        )
        .ephemeral();
        assert!(response.to_input().get("ephemeral").is_none());
        let action = NewActivity::new(
            "s",
            ActivityContent::Action {
                action: "Ran".into(),
                parameter: "cargo test".into(),
                result: Some("ok".into()),
            },
        );
        assert_eq!(
            action.to_input()["content"],
            json!({"type": "action", "action": "Ran", "parameter": "cargo test", "result": "ok"})
        );
    }
}
