-- A promotion's uses are counted under its limit once, when they are held: `taken` counts the
-- uses held or committed (it was `held` plus `committed`). A commit changes only the order's
-- own `promotion_uses` rows and leaves the promotion's row alone. The uses committed are
-- counted from `promotion_uses`, by the new index.
UPDATE promotions SET held = held + committed;
ALTER TABLE promotions DROP COLUMN committed;
ALTER TABLE promotions RENAME COLUMN held TO taken;
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
