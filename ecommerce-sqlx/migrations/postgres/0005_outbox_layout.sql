-- Outbox rows in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload),
-- so that a change-data-capture pipeline can route them without a decoder; seq keeps the order.
ALTER TABLE outbox RENAME COLUMN data TO payload;
ALTER TABLE outbox ADD COLUMN aggregatetype TEXT COLLATE "C" NOT NULL DEFAULT 'order';
ALTER TABLE outbox ADD COLUMN aggregateid TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN type TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE outbox SET
    aggregatetype = CASE WHEN payload::jsonb -> 'event' ->> 'type' = 'product_changed' THEN 'product' ELSE 'order' END,
    aggregateid = COALESCE(payload::jsonb -> 'event' ->> 'order', payload::jsonb -> 'event' ->> 'product', ''),
    type = COALESCE(payload::jsonb -> 'event' ->> 'type', '');
