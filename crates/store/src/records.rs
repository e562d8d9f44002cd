//! Plain data returned by and passed into the store. All times are UTC unix
//! milliseconds ([`UnixMillis`]): identical on both backends, trivially
//! comparable in SQL, and supplied by the caller so tests need no sleeping.

use cyrus_core::lifecycle::{TaskState, WaitReason};
use cyrus_core::{MicroDollars, TaskType};
use secrecy::SecretString;
use serde_json::Value;

/// UTC milliseconds since the unix epoch.
pub type UnixMillis = i64;

/// A `run_at` far in the future: a parked task (e.g. blocked by another
/// issue) that only [`crate::Store::wake_task`] makes due again.
pub const PARKED: UnixMillis = i64::MAX / 2;

/// The state string [`crate::Store::dead_letter`] writes. The other state
/// names belong to the core state machine; the store treats them as text.
pub const DEAD_LETTER_STATE: &str = "dead_letter";

/// Converts a chrono time to [`UnixMillis`].
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> UnixMillis {
    t.timestamp_millis()
}

// ---------------------------------------------------------------- deliveries

/// Result of a write that is idempotent on a unique key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The row was new and is now durable.
    Inserted,
    /// A row with the same key already existed; nothing was written.
    Duplicate,
}

/// A webhook delivery as received (stored before answering HTTP 200).
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    /// The `Linear-Delivery` header: the dedupe key.
    pub delivery_id: String,
    pub organization_id: String,
    /// Linear's `type`; unknown types are stored too.
    pub event_type: String,
    pub action: Option<String>,
    /// The body as received: the text of a JSON object (the webhook
    /// verifier has checked it). Stored as is, not re-serialised.
    pub body: String,
    pub received_at: UnixMillis,
    /// Who processes it.
    pub arrival: Arrival,
}

/// Who processes a new delivery, as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Any processor claims it from the store.
    Unclaimed,
    /// Stored already leased (its first claim): the receiving process
    /// processes it from memory, and other claimers leave it alone until
    /// the lease expires (a crash before it is processed).
    Leased(DeliveryLease),
    /// Stored already processed, with this outcome: the receiver knew from
    /// the delivery alone that processing it would change nothing. The row
    /// still answers its copies as duplicates and keeps the body.
    Settled { outcome: String },
}

impl Arrival {
    /// The lease it is stored with, if any.
    pub fn lease(&self) -> Option<&DeliveryLease> {
        match self {
            Arrival::Leased(lease) => Some(lease),
            Arrival::Unclaimed | Arrival::Settled { .. } => None,
        }
    }

    /// The outcome it is stored processed with, if any.
    pub(crate) fn outcome(&self) -> Option<&str> {
        match self {
            Arrival::Settled { outcome } => Some(outcome),
            Arrival::Unclaimed | Arrival::Leased(_) => None,
        }
    }
}

/// A lease written with a new delivery (see [`Arrival::Leased`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryLease {
    pub owner: String,
    pub expires_at: UnixMillis,
}

/// A stored delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub delivery_id: String,
    pub organization_id: String,
    pub event_type: String,
    pub action: Option<String>,
    pub payload: Value,
    pub received_at: UnixMillis,
    /// How many times it has been claimed (including the current claim).
    pub attempts: i64,
    pub processed_at: Option<UnixMillis>,
    /// Free text the worker wrote when processing finished (e.g. `ok`,
    /// `ignored: self-authored`, `error: …`).
    pub outcome: Option<String>,
}

// --------------------------------------------------------------------- tasks

/// What the intake writes to create a task for a new agent session.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    pub agent_session_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    pub organization_id: String,
    /// Initial state (core's state machine).
    pub state: TaskState,
    /// Linear priority: 1 urgent … 4 low, 0 none (scheduled last).
    pub priority: i64,
    pub created_at: UnixMillis,
    /// When the task first becomes due (usually `created_at`).
    pub run_at: UnixMillis,
    pub max_attempts: i64,
    pub data: Value,
}

/// One task per Linear agent session. Read it, change fields, then write it
/// back with [`crate::Store::update_task`] while holding its lease.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub agent_session_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    pub organization_id: String,
    pub state: TaskState,
    /// Why the task is parked within its state, when it is.
    pub step: Option<WaitReason>,
    /// Human-readable detail for status output.
    pub detail: Option<String>,
    pub priority: i64,
    pub created_at: UnixMillis,
    pub run_at: UnixMillis,
    pub attempts: i64,
    pub max_attempts: i64,
    /// Set by claims; not written by `update_task`.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<UnixMillis>,
    pub codegen_run_id: Option<i64>,
    pub repository_id: Option<i64>,
    pub task_type: Option<TaskType>,
    pub model: Option<String>,
    pub estimated_cost: Option<MicroDollars>,
    pub last_error: Option<String>,
    pub started_at: Option<UnixMillis>,
    /// A task is *active* exactly while this is `None`; setting it makes the
    /// task terminal (never claimed again).
    pub finished_at: Option<UnixMillis>,
    pub outcome: Option<String>,
    /// Set by [`crate::Store::request_cancel`] from any replica, without the lease.
    pub cancel_requested_at: Option<UnixMillis>,
    /// Linear + Codegen API calls made for this task (see `add_api_calls`).
    pub api_calls: i64,
    /// Everything else: routing result, prompt, PR urls, log cursor, …
    pub data: Value,
    /// Optimistic-concurrency counter, bumped by every update.
    pub version: i64,
}

impl Task {
    /// True while the task is not terminal.
    pub fn is_active(&self) -> bool {
        self.finished_at.is_none()
    }
}

/// Filter for [`crate::Store::list_tasks`]; every `None` means "any".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub state: Option<TaskState>,
    pub issue_id: Option<String>,
    pub outcome: Option<String>,
    /// Only tasks with `finished_at IS NULL`.
    pub active_only: bool,
    /// `created_at >= created_from`.
    pub created_from: Option<UnixMillis>,
    /// `created_at < created_to`.
    pub created_to: Option<UnixMillis>,
    /// At most this many rows, newest first; `None` = 1000.
    pub limit: Option<i64>,
}

// ---------------------------------------------------------------------- runs

/// Outcome of [`crate::Store::record_run_intent`].
#[derive(Clone, Debug, PartialEq)]
pub enum RunSlot {
    /// The intent is recorded (or already was, for this task and attempt):
    /// the caller may create the Codegen run now.
    Recorded(RunIntent),
    /// `max_active` runs are already active across all replicas.
    AtCapacity { active: i64 },
}

/// A Codegen run Cyrus intends to create or has created. Recorded *before*
/// the create call, so a crash in between is recoverable by searching
/// Codegen's runs for `marker` in their metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct RunIntent {
    pub id: i64,
    pub task_id: String,
    pub attempt: i64,
    /// Unique correlation id, also sent as Codegen `metadata`.
    pub marker: String,
    pub codegen_run_id: Option<i64>,
    /// Codegen status text (`ACTIVE`, `COMPLETE`, …) or `intent` before create.
    pub status: String,
    pub created_at: UnixMillis,
    /// Set when the run is over; while `None` the run counts as active.
    pub finished_at: Option<UnixMillis>,
    pub pr_urls: Vec<String>,
}

// ------------------------------------------------------------------ activities

/// An activity to post to a Linear agent session.
#[derive(Clone, Debug, PartialEq)]
pub struct NewActivity {
    pub session_id: String,
    /// `thought`, `action`, `response`, `error`, `elicitation`, …
    pub kind: String,
    pub body: Value,
    pub ephemeral: bool,
    /// Idempotency key, unique across the outbox, e.g. `final:<session>`.
    pub dedupe_key: String,
    pub not_before: UnixMillis,
    /// Set when the write already reached Linear outside the outbox (the
    /// webhook handler's acknowledgement): the row is stored delivered, as
    /// the record of what was posted, and never sent again.
    pub delivered_at: Option<UnixMillis>,
}

/// A row of the activities outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub id: i64,
    pub session_id: String,
    pub kind: String,
    pub body: Value,
    pub ephemeral: bool,
    pub dedupe_key: String,
    pub not_before: UnixMillis,
    /// Delivery attempts so far (including the current claim).
    pub attempts: i64,
    /// `pending`, `delivered` or `gave_up`.
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
    pub delivered_at: Option<UnixMillis>,
}

/// Outbox counts for one session (Linear request budget per session).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub pending: i64,
    pub delivered: i64,
    pub gave_up: i64,
}

// -------------------------------------------------------------------- costs

/// One cost observation. Idempotent on `(task_id, seq)`: re-recording the
/// same poll after a crash adds nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct CostEntry {
    pub task_id: String,
    /// Caller-chosen sequence number per task (e.g. poll counter).
    pub seq: i64,
    pub repository: String,
    pub model: String,
    pub task_type: Option<TaskType>,
    pub day: chrono::NaiveDate,
    pub amount: MicroDollars,
    pub recorded_at: UnixMillis,
}

/// What to group a cost breakdown by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostDimension {
    Repository,
    Model,
    TaskType,
    Day,
}

/// One group of a cost breakdown.
#[derive(Clone, Debug, PartialEq)]
pub struct CostBucket {
    /// The repository, model, task type (`none` when unknown) or `YYYY-MM-DD`.
    pub key: String,
    pub total: MicroDollars,
    pub entries: i64,
}

/// Outcome of [`crate::Store::try_reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The amount is held for the task (or already was).
    Reserved,
    /// Holding it would exceed the limit: recorded spend and other holds.
    WouldExceed {
        spent: MicroDollars,
        reserved: MicroDollars,
    },
}

/// A raised alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub key: String,
    pub message: String,
    pub raised_at: UnixMillis,
}

// --------------------------------------------------------------- rate limits

/// Outcome of [`crate::Store::take_rate_token`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// A token was taken.
    Granted,
    /// No token: try again after this many milliseconds.
    WaitMs(u64),
}

// ---------------------------------------------------------------- follow-ups

/// What a [`FollowUp`] asks of the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowUpKind {
    /// Text from the user for the run.
    Prompt,
    /// A stop request; the body is the reason told to the user.
    Stop,
}

impl FollowUpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpKind::Prompt => "prompt",
            FollowUpKind::Stop => "stop",
        }
    }
}

/// Something sent into a session for its task to act on, in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowUp {
    pub id: i64,
    pub task_id: String,
    /// Linear `agentActivity.id` (or the caller's key): the dedupe key.
    pub activity_id: String,
    pub kind: FollowUpKind,
    /// The prompt, or the stop's reason.
    pub body: String,
    pub received_at: UnixMillis,
    pub delivered_at: Option<UnixMillis>,
}

// --------------------------------------------------------------------- stats

/// Timing of one task, for latency and duration statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskTiming {
    pub task_id: String,
    pub issue_identifier: String,
    pub outcome: Option<String>,
    pub task_type: Option<TaskType>,
    pub created_at: UnixMillis,
    pub started_at: Option<UnixMillis>,
    pub finished_at: Option<UnixMillis>,
    pub api_calls: i64,
}

impl TaskTiming {
    /// Milliseconds from creation to the Codegen run starting.
    pub fn start_latency_ms(&self) -> Option<i64> {
        self.started_at.map(|s| s - self.created_at)
    }
    /// Milliseconds from run start to finish.
    pub fn run_duration_ms(&self) -> Option<i64> {
        Some(self.finished_at? - self.started_at?)
    }
}

// ------------------------------------------------------------ installations

/// Where an installation stands. Stored as text; typed everywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstallationStatus {
    /// Tokens work (or can be refreshed): the workspace's tasks run.
    Active,
    /// The refresh token is dead (`invalid_grant`): a person must run
    /// `cyrus linear connect` again; the workspace's tasks wait.
    NeedsReconnect,
    /// The app was uninstalled from the workspace (`OAuthApp` `revoked`).
    Revoked,
}

impl InstallationStatus {
    /// The stored name: `active`, `needs_reconnect` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationStatus::Active => "active",
            InstallationStatus::NeedsReconnect => "needs_reconnect",
            InstallationStatus::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for InstallationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InstallationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(InstallationStatus::Active),
            "needs_reconnect" => Ok(InstallationStatus::NeedsReconnect),
            "revoked" => Ok(InstallationStatus::Revoked),
            other => Err(format!("unknown installation status `{other}`")),
        }
    }
}

/// How the installation's tokens were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantKind {
    /// The OAuth install flow: a 24 h access token and a rotating refresh token.
    AuthorizationCode,
    /// The app's own credentials for a single workspace: a 30-day access
    /// token, no refresh token, requested again before it expires.
    ClientCredentials,
}

impl GrantKind {
    /// The stored name: `authorization_code` or `client_credentials`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::ClientCredentials => "client_credentials",
        }
    }
}

impl std::fmt::Display for GrantKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GrantKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "authorization_code" => Ok(GrantKind::AuthorizationCode),
            "client_credentials" => Ok(GrantKind::ClientCredentials),
            other => Err(format!("unknown OAuth grant kind `{other}`")),
        }
    }
}

/// An access token, the refresh token that comes with it (none for
/// `client_credentials`) and when the access token expires.
#[derive(Clone, Debug)]
pub struct OAuthTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: UnixMillis,
}

/// What `cyrus linear connect` learned: written by
/// [`crate::Store::connect_installation`].
#[derive(Clone, Debug)]
pub struct NewInstallation {
    /// Linear's organization id (webhooks' `organizationId`).
    pub workspace_id: String,
    pub workspace_name: String,
    pub url_key: String,
    /// The app user (`viewer`) the installation acts as.
    pub app_user_id: String,
    pub app_user_name: String,
    pub oauth_client_id: String,
    pub scopes: Vec<String>,
    pub grant: GrantKind,
    pub tokens: OAuthTokens,
}

/// An installation without its tokens: what status output, `doctor` and the
/// dashboard show (readable without the secret key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationInfo {
    pub workspace_id: String,
    pub workspace_name: String,
    pub url_key: String,
    pub app_user_id: String,
    pub app_user_name: String,
    pub oauth_client_id: String,
    pub scopes: Vec<String>,
    pub grant: GrantKind,
    pub status: InstallationStatus,
    /// Why the status is what it is (e.g. Linear's `invalid_grant` text).
    pub status_reason: Option<String>,
    pub status_changed_at: UnixMillis,
    pub access_expires_at: UnixMillis,
    pub installed_at: UnixMillis,
    pub refreshed_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
    /// Who holds the refresh lease, and until when (single-flight refresh).
    pub refresh_lease_owner: Option<String>,
    pub refresh_lease_until: Option<UnixMillis>,
    /// Bumped on every change of tokens (connect, refresh): a replica that
    /// sees a newer version than the one it used reloads instead of refreshing.
    pub token_version: i64,
}

/// An installation with its tokens decrypted.
#[derive(Clone, Debug)]
pub struct Installation {
    pub info: InstallationInfo,
    pub tokens: OAuthTokens,
}

/// An installation's current tokens and their version (see
/// [`crate::Store::installation_tokens`]).
#[derive(Clone, Debug)]
pub struct CurrentTokens {
    pub tokens: OAuthTokens,
    pub token_version: i64,
    pub status: InstallationStatus,
}

/// Outcome of [`crate::Store::begin_refresh`].
#[derive(Clone, Debug)]
pub enum RefreshLease {
    /// The caller holds the refresh lease until `until`; `installation`
    /// carries the refresh token as stored at the moment the lease was
    /// taken (possibly already refreshed by another replica: compare
    /// `token_version` with the one that failed before refreshing again).
    Held {
        installation: Box<Installation>,
        until: UnixMillis,
    },
    /// Another replica is refreshing; reload its tokens after `until` (or
    /// as soon as `token_version` changes).
    HeldElsewhere { owner: String, until: UnixMillis },
    /// The installation is not `active`: there is nothing to refresh.
    NotActive(InstallationStatus),
}

/// A `PermissionChange` webhook (`teamAccessChanged`): which teams the app
/// gained or lost, kept to be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionChange {
    /// Idempotency key (the webhook delivery id): recording the same
    /// delivery twice keeps one row.
    pub dedupe_key: String,
    pub workspace_id: String,
    pub changed_at: UnixMillis,
    pub added_team_ids: Vec<String>,
    pub removed_team_ids: Vec<String>,
}

// ------------------------------------------------------ pending authorizations

/// An OAuth authorization the CLI started and waits to complete: written
/// when the authorize URL is printed, taken once by the callback.
#[derive(Clone, Debug)]
pub struct NewPendingAuthorization {
    /// The CSRF `state` sent in the authorize URL (stored hashed).
    pub state: SecretString,
    /// The PKCE `code_verifier` (stored encrypted).
    pub code_verifier: SecretString,
    pub redirect_uri: String,
    /// A further workspace (`prompt=consent` was sent).
    pub additional_workspace: bool,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// A pending authorization taken by its `state`.
#[derive(Clone, Debug)]
pub struct PendingAuthorization {
    pub code_verifier: SecretString,
    pub redirect_uri: String,
    pub additional_workspace: bool,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// Outcome of [`crate::Store::take_pending_authorization`]: each failure is
/// distinct so the CLI can say what happened and what to do.
#[derive(Clone, Debug)]
pub enum TakeAuthorization {
    /// The state was valid; it cannot be taken again.
    Taken(PendingAuthorization),
    /// The state was issued but expired at `expired_at`: start again.
    Expired { expired_at: UnixMillis },
    /// The state was already used (a replayed or double-submitted callback).
    AlreadyUsed { used_at: UnixMillis },
    /// No such state was issued here (forged, or from another database).
    Unknown,
}

// ----------------------------------------------------------------- audit log

/// What kind of decision an [`AuditEntry`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A delegation or mention the access policy allowed.
    AccessAllowed,
    /// A delegation or mention the access policy refused (no run).
    AccessRefused,
    /// A follow-up prompt from someone the policy does not allow.
    PromptRefused,
    /// Proactive triage started a session.
    TriageStarted,
    /// Proactive triage would have started one (dry run), or a bound
    /// (daily cap, budget) kept it from starting.
    TriageSkipped,
    /// Task type, repository and model chosen.
    Routed,
    /// Budget held for a run.
    BudgetHeld,
    /// The run waits for budget (the day's limit).
    BudgetWait,
    /// A run stopped for exceeding its per-task limit.
    BudgetRefused,
    /// A task stopped, and by whom.
    Stopped,
    /// A workspace needs reconnecting, or was reconnected.
    Reconnect,
}

impl AuditKind {
    pub const ALL: [AuditKind; 11] = [
        AuditKind::AccessAllowed,
        AuditKind::AccessRefused,
        AuditKind::PromptRefused,
        AuditKind::TriageStarted,
        AuditKind::TriageSkipped,
        AuditKind::Routed,
        AuditKind::BudgetHeld,
        AuditKind::BudgetWait,
        AuditKind::BudgetRefused,
        AuditKind::Stopped,
        AuditKind::Reconnect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::AccessAllowed => "access_allowed",
            AuditKind::AccessRefused => "access_refused",
            AuditKind::PromptRefused => "prompt_refused",
            AuditKind::TriageStarted => "triage_started",
            AuditKind::TriageSkipped => "triage_skipped",
            AuditKind::Routed => "routed",
            AuditKind::BudgetHeld => "budget_held",
            AuditKind::BudgetWait => "budget_wait",
            AuditKind::BudgetRefused => "budget_refused",
            AuditKind::Stopped => "stopped",
            AuditKind::Reconnect => "reconnect",
        }
    }

    pub fn parse(text: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision with who and why.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Recording the same decision twice (a retried step) keeps one row.
    pub dedupe_key: String,
    pub at: UnixMillis,
    pub kind: AuditKind,
    pub organization_id: Option<String>,
    pub issue_id: Option<String>,
    pub issue_identifier: Option<String>,
    pub task_id: Option<String>,
    /// Who the decision is about or by: a Linear user (id or email), a
    /// triage rule, `cyrus` for the worker's own.
    pub actor: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// Structured particulars (model, repository, amounts…).
    pub detail: Option<serde_json::Value>,
}

/// Which audit rows to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub since: Option<UnixMillis>,
    /// An issue identifier (`ENG-12`) or id.
    pub issue: Option<String>,
    pub kind: Option<AuditKind>,
    pub limit: Option<i64>,
}

// -------------------------------------------------------------------- triage

/// Why a triage start was not claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriageClaim {
    /// Claimed: go ahead and open the session.
    Claimed,
    /// Triage already started (or tried) on this issue.
    AlreadyStarted,
    /// The day's `maxPerDay` is used up.
    DailyCapReached,
}

// --------------------------------------------------------------- experiments

/// A task's place in a model experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentAssignment {
    pub task_id: String,
    pub experiment: String,
    pub arm: String,
    pub model: String,
    pub issue_id: String,
    pub assigned_at: UnixMillis,
}

/// An experiment's task with what the store knows of its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct ExperimentTaskRecord {
    pub assignment: ExperimentAssignment,
    /// When its issue reached a completed state (first time), and when it
    /// was reopened after that.
    pub completed_at: Option<UnixMillis>,
    pub reopened_at: Option<UnixMillis>,
    /// The task (absent only if it was deleted by hand).
    pub task: Option<Task>,
    /// Follow-up prompts the session received.
    pub follow_ups: i64,
}
