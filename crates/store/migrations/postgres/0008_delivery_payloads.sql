-- A delivery's body, written once, kept apart from its small row that the
-- processor updates twice (claim, processed), so those updates write a
-- small tuple rather than one that points at the body.
CREATE TABLE delivery_payloads (
    delivery_id TEXT PRIMARY KEY NOT NULL,
    payload     JSONB NOT NULL
);
INSERT INTO delivery_payloads (delivery_id, payload)
    SELECT delivery_id, payload FROM deliveries;
ALTER TABLE deliveries DROP COLUMN payload;
