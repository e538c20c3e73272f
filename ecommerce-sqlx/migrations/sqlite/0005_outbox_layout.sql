-- Outbox rows in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload),
-- so that a change-data-capture pipeline can route them without a decoder; seq keeps the order.
ALTER TABLE outbox RENAME COLUMN data TO payload;
ALTER TABLE outbox ADD COLUMN aggregatetype TEXT NOT NULL DEFAULT 'order';
ALTER TABLE outbox ADD COLUMN aggregateid TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN type TEXT NOT NULL DEFAULT '';
UPDATE outbox SET
    aggregatetype = CASE WHEN json_extract(payload, '$.event.type') = 'product_changed' THEN 'product' ELSE 'order' END,
    aggregateid = COALESCE(json_extract(payload, '$.event.order'), json_extract(payload, '$.event.product'), ''),
    type = COALESCE(json_extract(payload, '$.event.type'), '');
