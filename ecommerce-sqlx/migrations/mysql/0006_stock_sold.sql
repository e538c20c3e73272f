-- Sold units in rows of their own. A sale adds to its bucket's `stock_sold` row and leaves
-- the stock row alone, so a hot SKU's buyers queue on its stock row once per checkout (the
-- take), not twice. `stock.taken` counts the units out of `on_hand`, reserved or sold; the
-- units reserved are `taken` less `stock_sold.sold`. The stock table is rebuilt (MySQL does
-- not drop a column its CHECK names).
CREATE TABLE stock_sold (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket BIGINT NOT NULL,
    sold BIGINT NOT NULL CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO stock_sold (sku, bucket, sold) SELECT sku, bucket, sold FROM stock WHERE sold > 0;
CREATE TABLE stock_next (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    taken BIGINT NOT NULL CHECK (taken >= 0),
    PRIMARY KEY (sku, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO stock_next (sku, bucket, on_hand, taken) SELECT sku, bucket, on_hand, reserved + sold FROM stock;
DROP TABLE stock;
RENAME TABLE stock_next TO stock;
