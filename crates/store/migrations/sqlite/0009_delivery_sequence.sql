-- Deliveries get an integer key in arrival order, and their bodies are
-- keyed by it. Delivery ids are random UUIDs: each id index is a B-tree that
-- every new delivery touches at a random page, and `delivery_payloads` had
-- one of its own besides the one on `deliveries`. Keyed by `seq`, bodies are
-- appended in order (no index of their own), so a batch of deliveries
-- writes one random page per delivery to the write-ahead log instead of
-- two. (`seq` is an INTEGER PRIMARY KEY, so VACUUM keeps it.)
CREATE TABLE deliveries_by_seq (
    seq              INTEGER PRIMARY KEY,
    delivery_id      TEXT NOT NULL UNIQUE,
    organization_id  TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    action           TEXT,
    received_at      INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    processed_at     INTEGER,
    outcome          TEXT
);
INSERT INTO deliveries_by_seq (delivery_id, organization_id, event_type, action, received_at,
                               attempts, lease_owner, lease_expires_at, processed_at, outcome)
    SELECT delivery_id, organization_id, event_type, action, received_at,
           attempts, lease_owner, lease_expires_at, processed_at, outcome
    FROM deliveries ORDER BY received_at, delivery_id;
CREATE TABLE delivery_bodies (
    seq     INTEGER PRIMARY KEY NOT NULL,
    payload TEXT NOT NULL
);
INSERT INTO delivery_bodies (seq, payload)
    SELECT d.seq, p.payload FROM deliveries_by_seq d JOIN delivery_payloads p USING (delivery_id);
DROP TABLE delivery_payloads;
DROP TABLE deliveries;
ALTER TABLE deliveries_by_seq RENAME TO deliveries;
CREATE INDEX deliveries_unprocessed ON deliveries (received_at) WHERE processed_at IS NULL;
