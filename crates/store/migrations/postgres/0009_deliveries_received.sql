-- Processed deliveries are pruned oldest first once past the retention
-- (`store.deliveryRetentionDays`); this index keeps that pass from reading
-- the whole table. Arrival order makes each insert append to it.
CREATE INDEX deliveries_received ON deliveries (received_at);
