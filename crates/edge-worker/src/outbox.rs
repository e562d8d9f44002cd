//! The durable outbox of writes to Linear.
//!
//! Every activity, session update and issue update is first stored (with an
//! idempotency key, so a retried step never posts twice) and then delivered
//! by [`run_sender`]. A Linear rate limit pauses delivery until its reset; a
//! transient error retries with backoff; a permanent error gives up — the rule
//! is `cyrus_linear::outbox_policy::decide`.

use crate::context::Ctx;
use chrono::{DateTime, Utc};
use cyrus_linear::client::{ExternalUrl, IssueUpdate, PlanStep, SessionUpdate};
use cyrus_linear::outbox_policy::{self, OutboxDecision, OutboxItemKind, OutboxItemView};
use cyrus_linear::{ActivityContent, ActivitySignal, LinearError, NewActivity, SelectOption};
use cyrus_store::{Activity, Insert};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long an outbox item may wait for its session's task to appear: the
/// task is created right after the acknowledgement is stored, or by the
/// delivery processor's retries if that failed (ten attempts, 30 s leases).
const TASK_APPEARS_WITHIN_MS: i64 = 10 * 60_000;

/// What an activity says to the people in the session; stored as its
/// snake_case name, which is Linear's activity `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Thought,
    Elicitation,
    Response,
    Error,
}

impl ActivityKind {
    fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Thought => "thought",
            ActivityKind::Elicitation => "elicitation",
            ActivityKind::Response => "response",
            ActivityKind::Error => "error",
        }
    }
}

/// One write to Linear, as stored in the outbox's `body`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OutboxOp {
    Activity {
        kind: ActivityKind,
        body: String,
        #[serde(default)]
        ephemeral: bool,
        /// `select` options, for elicitations.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
        /// Client-chosen activity id: fixed at enqueue time, so a delivery
        /// retried after a crash cannot create a second activity.
        id: String,
    },
    SessionUrls {
        urls: Vec<(String, String)>,
    },
    IssueState {
        issue_id: String,
        state_id: String,
    },
    /// Delegates an issue (an orchestration handing a sub-issue to the
    /// agent: Linear opens the child's session). Delegating again to the
    /// same delegate changes nothing, so a retried delivery is harmless.
    IssueDelegate {
        issue_id: String,
        delegate_id: String,
    },
    /// Opens a new agent session on an issue (an orchestration retrying a
    /// sub-issue whose task ended).
    CreateSession {
        issue_id: String,
    },
    /// Replaces the session's agent plan and external links in one
    /// request (an orchestration's progress).
    SessionPlan {
        plan: Vec<(String, String)>,
        urls: Vec<(String, String)>,
    },
}

impl OutboxOp {
    pub fn activity(kind: ActivityKind, body: impl Into<String>) -> OutboxOp {
        OutboxOp::Activity {
            kind,
            body: body.into(),
            ephemeral: false,
            options: Vec::new(),
            id: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn ephemeral_thought(body: impl Into<String>) -> OutboxOp {
        OutboxOp::activity(ActivityKind::Thought, body).ephemeral(true)
    }

    /// Marks an activity ephemeral (Linear hides it when the next one
    /// arrives); other writes are unchanged.
    pub fn ephemeral(mut self, value: bool) -> OutboxOp {
        if let OutboxOp::Activity { ephemeral, .. } = &mut self {
            *ephemeral = value;
        }
        self
    }

    /// Fixes an activity's client-chosen id (other writes are unchanged).
    pub fn with_id(mut self, value: String) -> OutboxOp {
        if let OutboxOp::Activity { id, .. } = &mut self {
            *id = value;
        }
        self
    }

    pub fn select(body: impl Into<String>, options: Vec<String>) -> OutboxOp {
        OutboxOp::Activity {
            kind: ActivityKind::Elicitation,
            body: body.into(),
            ephemeral: false,
            options,
            id: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn kind_label(&self) -> &'static str {
        match self {
            OutboxOp::Activity { kind, .. } => kind.as_str(),
            OutboxOp::SessionUrls { .. } => "session_update",
            OutboxOp::IssueState { .. } | OutboxOp::IssueDelegate { .. } => "issue_update",
            OutboxOp::CreateSession { .. } => "session_create",
            OutboxOp::SessionPlan { .. } => "session_update",
        }
    }

    /// How long and how hard delivery is attempted (see the policy's expiry).
    fn item_kind(&self) -> OutboxItemKind {
        match self {
            OutboxOp::Activity {
                kind: ActivityKind::Response | ActivityKind::Error,
                ..
            } => OutboxItemKind::Final,
            OutboxOp::Activity {
                kind: ActivityKind::Thought,
                ephemeral: true,
                ..
            } => OutboxItemKind::Routine,
            _ => OutboxItemKind::Important,
        }
    }
}

impl Ctx {
    /// Stores a write for the session; idempotent on `dedupe_key`. Wakes the
    /// sender so the write usually leaves within milliseconds.
    pub async fn enqueue(
        &self,
        session_id: &str,
        dedupe_key: String,
        op: OutboxOp,
    ) -> Result<Insert, cyrus_store::StoreError> {
        self.record_write(session_id, dedupe_key, op, None).await
    }

    /// Stores a write; with `delivered_at` it already reached Linear (sent
    /// directly) and is kept only as the record, never sent again.
    pub async fn record_write(
        &self,
        session_id: &str,
        dedupe_key: String,
        op: OutboxOp,
        delivered_at: Option<i64>,
    ) -> Result<Insert, cyrus_store::StoreError> {
        let new = outbox_row(session_id, dedupe_key, &op, delivered_at, self.now_ms());
        let inserted = self.store.enqueue_activity(&new, new.not_before).await?;
        if delivered_at.is_none() {
            self.wake.outbox.notify_one();
        }
        Ok(inserted)
    }
}

/// The outbox row of a write for `session_id`, due at once (`now`); with
/// `delivered_at` it is stored as already delivered.
pub(crate) fn outbox_row(
    session_id: &str,
    dedupe_key: String,
    op: &OutboxOp,
    delivered_at: Option<i64>,
    now: i64,
) -> cyrus_store::NewActivity {
    cyrus_store::NewActivity {
        session_id: session_id.to_string(),
        kind: op.kind_label().to_string(),
        body: serde_json::to_value(op).expect("outbox ops serialize"),
        ephemeral: matches!(
            op,
            OutboxOp::Activity {
                ephemeral: true,
                ..
            }
        ),
        dedupe_key,
        not_before: now,
        delivered_at,
    }
}

/// Delivers due outbox items until shutdown.
pub async fn run_sender(ctx: Ctx) {
    let owner = ctx.outbox_owner();
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let now = ctx.now_ms();
        let batch = match ctx
            .store
            .claim_due_activities(&owner, Duration::from_secs(60), now, 32)
            .await
        {
            Ok(batch) => batch,
            Err(err) => {
                tracing::error!(error = %err, "outbox: claiming failed");
                Vec::new()
            }
        };
        let busy = !batch.is_empty();
        // Items of one session go in order; sessions proceed concurrently.
        let mut by_session: std::collections::BTreeMap<String, Vec<Activity>> = Default::default();
        for item in batch {
            by_session
                .entry(item.session_id.clone())
                .or_default()
                .push(item);
        }
        let mut set = tokio::task::JoinSet::new();
        for (_, items) in by_session {
            let ctx = ctx.clone();
            set.spawn(async move {
                for item in items {
                    deliver(&ctx, item).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        if !busy {
            tokio::select! {
                _ = ctx.wake.outbox.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = ctx.shutdown.cancelled() => return,
            }
        }
    }
}

async fn deliver(ctx: &Ctx, item: Activity) {
    let op: OutboxOp = match serde_json::from_value(item.body.clone()) {
        Ok(op) => op,
        Err(err) => {
            let _ = ctx
                .store
                .give_up_activity(item.id, &format!("unreadable outbox item: {err}"))
                .await;
            return;
        }
    };
    let Some(task) = ctx
        .store
        .get_task_by_session(&item.session_id)
        .await
        .ok()
        .flatten()
    else {
        // An acknowledgement is stored a moment before its task; an item
        // that has waited longer than any retry of the task's creation
        // never gets one.
        let now = ctx.now_ms();
        let _ = if now - item.created_at < TASK_APPEARS_WITHIN_MS {
            ctx.store
                .reschedule_activity(item.id, now + 1_000, "waiting for the session's task")
                .await
        } else {
            ctx.store
                .give_up_activity(item.id, "no task for this session")
                .await
        };
        return;
    };
    let Some(linear) = ctx
        .linear
        .client_or_sync(&ctx.store, &task.organization_id)
        .await
    else {
        // With an OAuth app, the workspace may be connected soon (its tasks
        // wait too); with static tokens only, nothing will deliver this.
        let _ = if ctx.config.linear.oauth.is_some() {
            ctx.store
                .reschedule_activity(
                    item.id,
                    ctx.now_ms() + 30_000,
                    "the Linear workspace is not connected",
                )
                .await
        } else {
            ctx.store
                .give_up_activity(
                    item.id,
                    "no Linear workspace configured for this organization",
                )
                .await
        };
        return;
    };
    let result = send(&linear, &item.session_id, &op).await;
    let _ = ctx.store.add_api_calls(&task.id, 1).await;
    let now = ctx.now_ms();
    match result {
        Ok(()) => {
            if let Err(err) = ctx.store.mark_activity_delivered(item.id, now).await {
                tracing::error!(error = %err, "outbox: marking delivered failed");
            }
            metrics::counter!("cyrus_outbox_delivered_total", "kind" => op.kind_label().to_string())
                .increment(1);
            if item.dedupe_key.starts_with("ack:") {
                let secs = (now - task.created_at).max(0) as f64 / 1000.0;
                metrics::histogram!("cyrus_time_to_ack_seconds").record(secs);
            }
        }
        Err(err) => {
            let view = OutboxItemView {
                kind: op.item_kind(),
                attempts: item.attempts.max(1) as u32,
                created_at: to_utc(item.created_at),
                last_attempt_at: Some(to_utc(now)),
                last_error: Some(err.class()),
            };
            let decision = outbox_policy::decide(&view, to_utc(now));
            tracing::warn!(session = %item.session_id, error = %err, ?decision, "outbox: delivery failed");
            let outcome = match decision {
                OutboxDecision::DeliverNow => {
                    ctx.store
                        .reschedule_activity(item.id, now, &err.to_string())
                        .await
                }
                OutboxDecision::RetryAt(at) | OutboxDecision::WaitUntil(at) => {
                    ctx.store
                        .reschedule_activity(item.id, at.timestamp_millis(), &err.to_string())
                        .await
                }
                OutboxDecision::GiveUp(reason) => {
                    metrics::counter!("cyrus_outbox_gave_up_total").increment(1);
                    ctx.store
                        .give_up_activity(item.id, &format!("{reason:?}: {err}"))
                        .await
                }
            };
            if let Err(err) = outcome {
                tracing::error!(error = %err, "outbox: recording the failure failed");
            }
        }
    }
}

/// Posts one write to Linear now (outside the outbox's queue); an activity
/// whose client-chosen id Linear already has counts as posted.
pub async fn send(
    linear: &cyrus_linear::LinearClient,
    session_id: &str,
    op: &OutboxOp,
) -> Result<(), LinearError> {
    match op {
        OutboxOp::Activity {
            kind,
            body,
            ephemeral,
            options,
            id,
        } => {
            let body = body.clone();
            let content = match kind {
                ActivityKind::Thought => ActivityContent::Thought { body },
                ActivityKind::Elicitation => ActivityContent::Elicitation { body },
                ActivityKind::Response => ActivityContent::Response { body },
                ActivityKind::Error => ActivityContent::Error { body },
            };
            let mut activity = NewActivity::new(session_id, content).with_id(id.clone());
            if *ephemeral {
                activity = activity.ephemeral();
            }
            if !options.is_empty() {
                activity = activity.with_signal(ActivitySignal::Select {
                    options: options
                        .iter()
                        .map(|o| SelectOption {
                            value: o.clone(),
                            label: None,
                        })
                        .collect(),
                });
            }
            match linear.create_activity(&activity).await {
                Ok(_) => Ok(()),
                // The id was fixed at enqueue time: "already exists" means an
                // earlier attempt landed before a crash.
                Err(LinearError::Permanent { message, .. })
                    if message.to_ascii_lowercase().contains("already exists") =>
                {
                    Ok(())
                }
                Err(err) => Err(err),
            }
        }
        OutboxOp::SessionUrls { urls } => {
            let update = SessionUpdate {
                external_urls: Some(external_urls(urls)),
                plan: None,
            };
            linear.update_session(session_id, &update).await
        }
        OutboxOp::IssueState { issue_id, state_id } => {
            let update = IssueUpdate {
                state_id: Some(state_id.clone()),
                ..Default::default()
            };
            linear.update_issue(issue_id, &update).await
        }
        OutboxOp::IssueDelegate {
            issue_id,
            delegate_id,
        } => {
            let update = IssueUpdate {
                delegate_id: Some(Some(delegate_id.clone())),
                ..Default::default()
            };
            linear.update_issue(issue_id, &update).await
        }
        OutboxOp::CreateSession { issue_id } => {
            linear.create_session_on_issue(issue_id).await.map(|_| ())
        }
        OutboxOp::SessionPlan { plan, urls } => {
            let update = SessionUpdate {
                external_urls: Some(external_urls(urls)),
                plan: Some(
                    plan.iter()
                        .map(|(content, status)| PlanStep {
                            content: content.clone(),
                            status: status.clone(),
                        })
                        .collect(),
                ),
            };
            linear.update_session(session_id, &update).await
        }
    }
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A session's external links as Linear takes them (label, url).
fn external_urls(urls: &[(String, String)]) -> Vec<ExternalUrl> {
    urls.iter()
        .map(|(label, url)| ExternalUrl {
            label: label.clone(),
            url: url.clone(),
        })
        .collect()
}
