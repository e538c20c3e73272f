-- Outbox rows in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload),
-- so that a change-data-capture pipeline can route them without a decoder; seq keeps the order.
ALTER TABLE outbox CHANGE data payload LONGTEXT NOT NULL;
ALTER TABLE outbox
    ADD COLUMN aggregatetype VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'order',
    ADD COLUMN aggregateid VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    ADD COLUMN type VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';
UPDATE outbox SET
    aggregatetype = CASE WHEN JSON_UNQUOTE(JSON_EXTRACT(payload, '$.event.type')) = 'product_changed' THEN 'product' ELSE 'order' END,
    aggregateid = COALESCE(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.event.order')), JSON_UNQUOTE(JSON_EXTRACT(payload, '$.event.product')), ''),
    type = COALESCE(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.event.type')), '');
