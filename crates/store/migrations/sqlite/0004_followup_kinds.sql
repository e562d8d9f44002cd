-- A stop request is its own kind of follow-up, not a prompt whose body
-- starts with a sentinel that every reader had to filter.
ALTER TABLE followups ADD COLUMN kind TEXT NOT NULL DEFAULT 'prompt';

-- Rows written before this migration carried stops as "\x1estop:<reason>".
UPDATE followups
   SET kind = 'stop', body = substr(body, 7)
 WHERE substr(body, 1, 6) = char(30) || 'stop:';
