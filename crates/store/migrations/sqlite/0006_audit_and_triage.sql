-- The audit log: one row per decision (access, triage, routing, budget,
-- stops, reconnects), with who and why. `dedupe_key` makes a decision
-- recorded again after a crash or a retry one row, not two.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key       TEXT NOT NULL UNIQUE,
    at               INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    organization_id  TEXT,
    issue_id         TEXT,
    issue_identifier TEXT,
    task_id          TEXT,
    actor            TEXT,
    reason           TEXT NOT NULL,
    detail           TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_issue ON audit_log (issue_identifier, at);

-- Sessions proactive triage started: at most one per issue, ever, claimed
-- before Linear is asked; the day counts against triage.maxPerDay. (A dry
-- run only writes the audit log.)
CREATE TABLE triage_starts (
    issue_id        TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    rule            TEXT NOT NULL,
    day             TEXT NOT NULL,
    claimed_at      INTEGER NOT NULL,
    session_id      TEXT
);
CREATE INDEX triage_starts_day ON triage_starts (day);
