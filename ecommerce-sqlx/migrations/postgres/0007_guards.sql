-- Guards the stores already keep, now in the schema too, for SQL written by hand: a
-- promotion's spent budget never goes below zero, and a pair of SKUs bought together counts
-- at least one order.
ALTER TABLE promotions ADD CONSTRAINT promotions_spent_minor_check CHECK (spent_minor >= 0);
ALTER TABLE co_purchases ADD CONSTRAINT co_purchases_count_check CHECK (count >= 1);
