-- The outbox claims pending activities in id order: an index of pending
-- ids only, so a claim never walks the activities already delivered.
CREATE INDEX activities_pending ON activities (id) WHERE status = 'pending';
