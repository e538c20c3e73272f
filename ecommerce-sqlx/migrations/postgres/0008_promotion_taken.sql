-- A promotion's uses are counted under its limit once, when they are held: `taken` counts the
-- uses held or committed (it was `held` plus `committed`). A commit changes only the order's
-- own `promotion_uses` rows and leaves the promotion's row alone, so the buyers of a limited
-- promotion queue on its row once per checkout, not twice. The uses committed are counted
-- from `promotion_uses`, by the new index.
UPDATE promotions SET held = held + committed;
ALTER TABLE promotions DROP COLUMN committed;
ALTER TABLE promotions RENAME COLUMN held TO taken;
ALTER TABLE promotions RENAME CONSTRAINT promotions_held_check TO promotions_taken_check;
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
