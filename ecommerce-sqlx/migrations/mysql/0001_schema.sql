-- The stores' schema on MySQL and MariaDB. Ids the SDK makes (orders, carts, customers,
-- products, reservations, events, addresses) are UUIDs in their hyphenated text
-- (`CHAR(36)`, ASCII, binary collation, so their order is the UUIDs' own); SKUs, category and
-- promotion ids and coupon codes are the text their owners chose. Times are `DATETIME(6)` in
-- UTC. Products, carts, orders, promotions and events are `JSON` documents beside the columns
-- the stores query. Counters carry CHECKs, so even SQL written by hand cannot oversell.

-- Catalog.
CREATE TABLE categories (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    data JSON NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE products (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    category VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- 1: shoppers see it.
    published BIGINT NOT NULL,
    data JSON NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX products_by_category ON products (category, id);

CREATE TABLE variants (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    product_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    CONSTRAINT variants_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX variants_by_product ON variants (product_id);

-- Carts, written by compare-and-set on `version`.
CREATE TABLE carts (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    version BIGINT NOT NULL,
    data JSON NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    -- 1: a guest's cart, swept once older than the store's guest TTL.
    guest BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX carts_guest_expiry ON carts (guest, updated_at);

-- Stock: one row per bucket of a SKU (one bucket unless the SKU is hot, when its units are
-- spread so that concurrent buyers lock different rows). `taken` counts the units out of
-- `on_hand`, reserved or sold; a sale adds to its bucket's `stock_sold` row and leaves the
-- stock row alone, so a buyer queues on the stock row once per checkout. The units reserved
-- are `taken` less `stock_sold.sold`.
CREATE TABLE stock (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL,
    taken BIGINT NOT NULL,
    PRIMARY KEY (sku, bucket),
    CONSTRAINT stock_on_hand_check CHECK (on_hand >= 0),
    CONSTRAINT stock_taken_check CHECK (taken >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE stock_sold (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket BIGINT NOT NULL,
    sold BIGINT NOT NULL,
    PRIMARY KEY (sku, bucket),
    CONSTRAINT stock_sold_sold_check CHECK (sold >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- An order's reservation: its lines and the units it took from each bucket, held until
-- `expires_at`, then committed or released.
CREATE TABLE reservations (
    order_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    state VARCHAR(16) NOT NULL,
    line_items JSON NOT NULL,
    takes JSON NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX reservations_expiring ON reservations (state, expires_at);

-- Every stock movement, appended.
CREATE TABLE stock_ledger (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind VARCHAR(16) NOT NULL,
    quantity BIGINT NOT NULL,
    order_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin,
    at DATETIME(6) NOT NULL,
    CONSTRAINT stock_ledger_quantity_check CHECK (quantity > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, seq);

-- Orders. `idempotency_key` holds the customer and a SHA-256 of their key, unique.
CREATE TABLE orders (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    customer_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    status VARCHAR(16) NOT NULL,
    version BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    data JSON NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_pending ON orders (status, created_at);

-- The outbox, in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload):
-- events written in the transaction of the change they tell of; `seq` keeps their order.
CREATE TABLE outbox (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    aggregatetype VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    aggregateid VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    payload JSON NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Co-purchase counts, each order counted once.
CREATE TABLE recorded_orders (
    order_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE co_purchases (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    other VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `count` BIGINT NOT NULL,
    PRIMARY KEY (sku, other),
    CONSTRAINT co_purchases_count_check CHECK (`count` >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Address books: a customer's saved addresses, one row each (the digest of the address is
-- unique per customer).
CREATE TABLE customer_addresses (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    customer CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    digest VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    address JSON NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE KEY customer_addresses_digest (customer, digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX customer_addresses_by_customer ON customer_addresses (customer, created_at, id);

-- One row per customer who ever saved an address: a save locks it, so saves of one customer
-- run one at a time and the count they check cannot change under them.
CREATE TABLE customer_address_books (
    customer CHAR(36) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Promotions beside their limits and usage counters. A use is counted under the limits with
-- conditional increments (`taken + 1 <= max_uses`, `spent_minor + amount <= budget_minor`),
-- like stock; the CHECKs stand behind them.
CREATE TABLE promotions (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    data JSON NOT NULL,
    max_uses BIGINT,
    per_customer BIGINT,
    budget_minor BIGINT,
    -- 1: applies without a code, so every quote reads it.
    automatic BIGINT NOT NULL DEFAULT 0,
    -- Uses held or committed.
    taken BIGINT NOT NULL DEFAULT 0,
    spent_minor BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT promotions_taken_check CHECK (taken >= 0),
    CONSTRAINT promotions_spent_minor_check CHECK (spent_minor >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX promotions_automatic ON promotions (automatic);

-- Coupon codes, each of one promotion, with their own limit and uses.
CREATE TABLE coupons (
    code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    max_uses BIGINT,
    used BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT coupons_used_check CHECK (used >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX coupons_by_promotion ON coupons (promotion);

-- Uses of a promotion per customer (`customer:<id>` or `email:<address>`).
CREATE TABLE promotion_customers (
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    customer_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (promotion, customer_key),
    CONSTRAINT promotion_customers_used_check CHECK (used >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Each order's uses, in the order taken: held, then committed or released together.
CREATE TABLE promotion_uses (
    order_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    seq BIGINT NOT NULL,
    promotion VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin,
    customer_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    amount_minor BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (order_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX promotion_uses_held ON promotion_uses (state, created_at);
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
