-- Linear OAuth installations, one per workspace (organization). Token
-- columns hold values encrypted by the store (`v1:<key id>:<base64>`),
-- never plain text.
CREATE TABLE installations (
    workspace_id        TEXT PRIMARY KEY NOT NULL,
    workspace_name      TEXT NOT NULL,
    url_key             TEXT NOT NULL,
    app_user_id         TEXT NOT NULL,
    app_user_name       TEXT NOT NULL,
    oauth_client_id     TEXT NOT NULL,
    access_token        TEXT NOT NULL,
    refresh_token       TEXT,
    access_expires_at   BIGINT NOT NULL,
    scopes              JSONB NOT NULL,
    grant_kind          TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    status_changed_at   BIGINT NOT NULL,
    installed_at        BIGINT NOT NULL,
    refreshed_at        BIGINT,
    revoked_at          BIGINT,
    refresh_lease_owner TEXT,
    refresh_lease_until BIGINT,
    token_version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX installations_client ON installations (oauth_client_id);

-- OAuth authorizations started by `cyrus linear connect`, keyed by a hash of
-- the CSRF state; the PKCE verifier is encrypted like the tokens.
CREATE TABLE oauth_pending (
    state_hash           TEXT PRIMARY KEY NOT NULL,
    code_verifier        TEXT NOT NULL,
    redirect_uri         TEXT NOT NULL,
    additional_workspace BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    consumed_at          BIGINT
);

-- PermissionChange webhooks (teamAccessChanged), kept to be shown.
CREATE TABLE permission_changes (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key       TEXT NOT NULL UNIQUE,
    workspace_id     TEXT NOT NULL,
    changed_at       BIGINT NOT NULL,
    added_team_ids   JSONB NOT NULL,
    removed_team_ids JSONB NOT NULL
);
CREATE INDEX permission_changes_workspace ON permission_changes (workspace_id, changed_at);
