-- A delivery's body, written once, kept apart from its small row that the
-- processor updates twice (claim, processed). With the body inline every
-- such update rewrote a whole page per delivery (a 3 KB body fills most of
-- one), so the write-ahead log carried each body three times.
CREATE TABLE delivery_payloads (
    delivery_id TEXT PRIMARY KEY NOT NULL,
    payload     TEXT NOT NULL
);
INSERT INTO delivery_payloads (delivery_id, payload)
    SELECT delivery_id, payload FROM deliveries;
ALTER TABLE deliveries DROP COLUMN payload;
