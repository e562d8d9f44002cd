-- Cyrus durable state (SQLite). Times are UTC unix milliseconds.

CREATE TABLE deliveries (
    delivery_id      TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    action           TEXT,
    payload          TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    processed_at     INTEGER,
    outcome          TEXT
);
CREATE INDEX deliveries_unprocessed ON deliveries (received_at) WHERE processed_at IS NULL;

CREATE TABLE tasks (
    id                  TEXT PRIMARY KEY NOT NULL,
    agent_session_id    TEXT NOT NULL UNIQUE,
    issue_id            TEXT NOT NULL,
    issue_identifier    TEXT NOT NULL,
    organization_id     TEXT NOT NULL,
    state               TEXT NOT NULL,
    step                TEXT,
    detail              TEXT,
    priority            INTEGER NOT NULL,
    -- 1 urgent .. 4 low, then 0 (none) as 5: the claim order key.
    priority_rank       INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    run_at              INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at    INTEGER,
    codegen_run_id      INTEGER,
    repository_id       INTEGER,
    task_type           TEXT,
    model               TEXT,
    estimated_cost_micros INTEGER,
    last_error          TEXT,
    started_at          INTEGER,
    finished_at         INTEGER,
    outcome             TEXT,
    cancel_requested_at INTEGER,
    api_calls           INTEGER NOT NULL DEFAULT 0,
    data                TEXT NOT NULL,
    version             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_due ON tasks (priority_rank, created_at) WHERE finished_at IS NULL;
CREATE INDEX tasks_issue ON tasks (issue_id, created_at);
CREATE INDEX tasks_lease_owner ON tasks (lease_owner);
CREATE INDEX tasks_created ON tasks (created_at);

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    attempt        INTEGER NOT NULL,
    marker         TEXT NOT NULL UNIQUE,
    codegen_run_id INTEGER,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    pr_urls        TEXT NOT NULL DEFAULT '[]',
    UNIQUE (task_id, attempt)
);
CREATE INDEX runs_active ON runs (finished_at) WHERE finished_at IS NULL;

CREATE TABLE activities (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    ephemeral        BOOLEAN NOT NULL,
    dedupe_key       TEXT NOT NULL UNIQUE,
    not_before       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'pending',
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX activities_due ON activities (not_before, id) WHERE status = 'pending';
CREATE INDEX activities_session ON activities (session_id);

CREATE TABLE cost_entries (
    task_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    repository  TEXT NOT NULL,
    model       TEXT NOT NULL,
    task_type   TEXT,
    day         TEXT NOT NULL,
    micros      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, seq)
);
CREATE INDEX cost_entries_day ON cost_entries (day);

CREATE TABLE budget_reservations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       TEXT NOT NULL,
    day           TEXT NOT NULL,
    micros        INTEGER NOT NULL,
    status        TEXT NOT NULL,
    actual_micros INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX budget_reservations_day ON budget_reservations (day) WHERE status = 'open';
-- At most one open hold per task.
CREATE UNIQUE INDEX budget_reservations_open ON budget_reservations (task_id) WHERE status = 'open';

CREATE TABLE alerts (
    key        TEXT PRIMARY KEY NOT NULL,
    message    TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    cleared_at INTEGER
);

CREATE TABLE rate_buckets (
    bucket     TEXT PRIMARY KEY NOT NULL,
    tokens     REAL NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE followups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      TEXT NOT NULL REFERENCES tasks (id),
    activity_id  TEXT NOT NULL UNIQUE,
    body         TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX followups_task ON followups (task_id, id);
