-- Guards the stores already keep, now in the schema too, for SQL written by hand: a
-- promotion's spent budget never goes below zero, a pair of SKUs bought together counts at
-- least one order, and a variant belongs to a stored product (as on PostgreSQL and SQLite;
-- variants of no product, which no read reaches, are dropped first).
ALTER TABLE promotions ADD CONSTRAINT promotions_spent_minor_check CHECK (spent_minor >= 0);
ALTER TABLE co_purchases ADD CONSTRAINT co_purchases_count_check CHECK (`count` >= 1);
DELETE variants FROM variants LEFT JOIN products ON products.id = variants.product_id WHERE products.id IS NULL;
ALTER TABLE variants ADD CONSTRAINT variants_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE;
