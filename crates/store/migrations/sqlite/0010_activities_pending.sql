-- The outbox claims pending activities in id order. Without an index of
-- pending ids, SQLite read the whole table in id order to find them, every
-- activity ever delivered included: each claim cost time in proportion to
-- the outbox's whole history (5.5 ms a claim, a third of the writer's time,
-- after a burst of 30 000 new sessions), and more every month.
CREATE INDEX activities_pending ON activities (id) WHERE status = 'pending';
