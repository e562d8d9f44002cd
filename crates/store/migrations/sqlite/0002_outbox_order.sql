-- Per-session ordering of the outbox: the claim looks for an older pending
-- activity of the same session.
CREATE INDEX activities_session_pending ON activities (session_id, id) WHERE status = 'pending';
