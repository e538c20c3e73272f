-- Sold units in rows of their own. A sale adds to its bucket's `stock_sold` row and leaves
-- the stock row alone, so a hot SKU's buyers queue on its stock row once per checkout (the
-- take), not twice. `stock.taken` counts the units out of `on_hand`, reserved or sold; the
-- units reserved are `taken` less `stock_sold.sold`.
CREATE TABLE stock_sold (
    sku TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    sold BIGINT NOT NULL CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
);
INSERT INTO stock_sold (sku, bucket, sold) SELECT sku, bucket, sold FROM stock WHERE sold > 0;
UPDATE stock SET reserved = reserved + sold;
ALTER TABLE stock DROP COLUMN sold;
ALTER TABLE stock RENAME COLUMN reserved TO taken;
