-- Promotions: each promotion as a JSON document beside its limits and usage counters. A use
-- is reserved with conditional increments (`held + committed + 1 <= max_uses`,
-- `spent_minor + amount <= budget_minor`), like stock; the CHECKs stand behind them.
CREATE TABLE promotions (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    data LONGTEXT NOT NULL,
    max_uses BIGINT,
    per_customer BIGINT,
    budget_minor BIGINT,
    -- 1: applies without a code, so every quote reads it.
    automatic BIGINT NOT NULL DEFAULT 0,
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    committed BIGINT NOT NULL DEFAULT 0 CHECK (committed >= 0),
    spent_minor BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX promotions_automatic ON promotions (automatic);

-- Coupon codes, each of one promotion, with their own limit and uses.
CREATE TABLE coupons (
    code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    max_uses BIGINT,
    used BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX coupons_by_promotion ON coupons (promotion);

-- Uses of a promotion per customer (`customer:<id>` or `email:<address>`).
CREATE TABLE promotion_customers (
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    customer_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    used BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (promotion, customer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Each order's uses, in the order reserved: held, committed or released together.
CREATE TABLE promotion_uses (
    order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq BIGINT NOT NULL,
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin,
    customer_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    amount_minor BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX promotion_uses_held ON promotion_uses (state, created_at);
