-- Guards the stores already keep, now in the schema too, for SQL written by hand: a
-- promotion's spent budget never goes below zero, and a pair of SKUs bought together counts
-- at least one order. SQLite cannot add a CHECK to a table: triggers refuse the same rows.
CREATE TRIGGER promotions_spent_minor_insert BEFORE INSERT ON promotions
WHEN NEW.spent_minor < 0
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: spent_minor >= 0'); END;
CREATE TRIGGER promotions_spent_minor_update BEFORE UPDATE OF spent_minor ON promotions
WHEN NEW.spent_minor < 0
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: spent_minor >= 0'); END;
CREATE TRIGGER co_purchases_count_insert BEFORE INSERT ON co_purchases
WHEN NEW.count < 1
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: count >= 1'); END;
CREATE TRIGGER co_purchases_count_update BEFORE UPDATE OF count ON co_purchases
WHEN NEW.count < 1
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: count >= 1'); END;
