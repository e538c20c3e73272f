-- A promotion's uses are counted under its limit once, when they are held: `taken` counts the
-- uses held or committed (it was `held` plus `committed`). A commit changes only the order's
-- own `promotion_uses` rows and leaves the promotion's row alone, so the buyers of a limited
-- promotion queue on its row once per checkout, not twice. The uses committed are counted
-- from `promotion_uses`, by the new index. The promotions table is rebuilt (MySQL does not
-- drop a column its CHECK names); its spent budget's CHECK is added again once the old table
-- and the name are gone.
CREATE TABLE promotions_next (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    data LONGTEXT NOT NULL,
    max_uses BIGINT,
    per_customer BIGINT,
    budget_minor BIGINT,
    -- 1: applies without a code, so every quote reads it.
    automatic BIGINT NOT NULL DEFAULT 0,
    taken BIGINT NOT NULL DEFAULT 0 CHECK (taken >= 0),
    spent_minor BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO promotions_next (id, data, max_uses, per_customer, budget_minor, automatic, taken, spent_minor)
    SELECT id, data, max_uses, per_customer, budget_minor, automatic, held + committed, spent_minor FROM promotions;
DROP TABLE promotions;
RENAME TABLE promotions_next TO promotions;
CREATE INDEX promotions_automatic ON promotions (automatic);
ALTER TABLE promotions ADD CONSTRAINT promotions_spent_minor_check CHECK (spent_minor >= 0);
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
