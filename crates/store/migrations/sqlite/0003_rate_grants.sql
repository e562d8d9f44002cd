-- Sliding-window rate limits shared by replicas (take_window_slot): one row
-- per grant still inside its window.
CREATE TABLE rate_grants (
    bucket TEXT NOT NULL,
    granted_at BIGINT NOT NULL
);
CREATE INDEX rate_grants_bucket ON rate_grants (bucket, granted_at);
