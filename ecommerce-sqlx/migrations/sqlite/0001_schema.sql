-- The stores' schema on SQLite. Ids the SDK makes (orders, carts, customers, products,
-- reservations, events, addresses) are UUIDs in their hyphenated text; SKUs, category and
-- promotion ids and coupon codes are the text their owners chose. Times are TEXT in ISO 8601,
-- UTC, to the microsecond (`2026-12-04T17:05:00.123456Z`): fixed width, so their text order
-- is time order, and SQLite's date functions read them. Products, carts, orders, promotions
-- and events are JSON documents (TEXT, read with SQLite's JSON functions) beside the columns
-- the stores query. Counters carry CHECKs, so even SQL written by hand cannot oversell.

-- Catalog.
CREATE TABLE categories (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    -- 1: shoppers see it.
    published BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX products_by_category ON products (category, id);

CREATE TABLE variants (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE
);
CREATE INDEX variants_by_product ON variants (product_id);

-- Carts, written by compare-and-set on `version`.
CREATE TABLE carts (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- 1: a guest's cart, swept once older than the store's guest TTL.
    guest BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX carts_guest_expiry ON carts (guest, updated_at);

-- Stock: one row per bucket of a SKU (one bucket unless the SKU is hot, when its units are
-- spread so that concurrent buyers lock different rows). `taken` counts the units out of
-- `on_hand`, reserved or sold; a sale adds to its bucket's `stock_sold` row and leaves the
-- stock row alone, so a buyer queues on the stock row once per checkout. The units reserved
-- are `taken` less `stock_sold.sold`.
CREATE TABLE stock (
    sku TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL CONSTRAINT stock_on_hand_check CHECK (on_hand >= 0),
    taken BIGINT NOT NULL CONSTRAINT stock_taken_check CHECK (taken >= 0),
    PRIMARY KEY (sku, bucket)
);

CREATE TABLE stock_sold (
    sku TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    sold BIGINT NOT NULL CONSTRAINT stock_sold_sold_check CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
);

-- An order's reservation: its lines and the units it took from each bucket, held until
-- `expires_at`, then committed or released.
CREATE TABLE reservations (
    order_id TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    line_items TEXT NOT NULL,
    takes TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX reservations_expiring ON reservations (state, expires_at);

-- Every stock movement, appended.
CREATE TABLE stock_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL CONSTRAINT stock_ledger_quantity_check CHECK (quantity > 0),
    order_id TEXT,
    at TEXT NOT NULL
);
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, seq);

-- Orders. `idempotency_key` holds the customer and a SHA-256 of their key, unique.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_pending ON orders (status, created_at);

-- The outbox, in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload):
-- events written in the transaction of the change they tell of; `seq` keeps their order.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    aggregatetype TEXT NOT NULL,
    aggregateid TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL
);

-- Co-purchase counts, each order counted once.
CREATE TABLE recorded_orders (
    order_id TEXT PRIMARY KEY
);

CREATE TABLE co_purchases (
    sku TEXT NOT NULL,
    other TEXT NOT NULL,
    count BIGINT NOT NULL CONSTRAINT co_purchases_count_check CHECK (count >= 1),
    PRIMARY KEY (sku, other)
);

-- Address books: a customer's saved addresses, one row each (the digest of the address is
-- unique per customer).
CREATE TABLE customer_addresses (
    id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    digest TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (customer, digest)
);
CREATE INDEX customer_addresses_by_customer ON customer_addresses (customer, created_at, id);

-- One row per customer who ever saved an address: a save locks it, so saves of one customer
-- run one at a time and the count they check cannot change under them.
CREATE TABLE customer_address_books (
    customer TEXT PRIMARY KEY
);

-- Promotions beside their limits and usage counters. A use is counted under the limits with
-- conditional increments (`taken + 1 <= max_uses`, `spent_minor + amount <= budget_minor`),
-- like stock; the CHECKs stand behind them.
CREATE TABLE promotions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    max_uses BIGINT,
    per_customer BIGINT,
    budget_minor BIGINT,
    -- 1: applies without a code, so every quote reads it.
    automatic BIGINT NOT NULL DEFAULT 0,
    -- Uses held or committed.
    taken BIGINT NOT NULL DEFAULT 0 CONSTRAINT promotions_taken_check CHECK (taken >= 0),
    spent_minor BIGINT NOT NULL DEFAULT 0 CONSTRAINT promotions_spent_minor_check CHECK (spent_minor >= 0)
);
CREATE INDEX promotions_automatic ON promotions (automatic);

-- Coupon codes, each of one promotion, with their own limit and uses.
CREATE TABLE coupons (
    code TEXT PRIMARY KEY,
    promotion TEXT NOT NULL,
    max_uses BIGINT,
    used BIGINT NOT NULL DEFAULT 0 CONSTRAINT coupons_used_check CHECK (used >= 0)
);
CREATE INDEX coupons_by_promotion ON coupons (promotion);

-- Uses of a promotion per customer (`customer:<id>` or `email:<address>`).
CREATE TABLE promotion_customers (
    promotion TEXT NOT NULL,
    customer_key TEXT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0 CONSTRAINT promotion_customers_used_check CHECK (used >= 0),
    PRIMARY KEY (promotion, customer_key)
);

-- Each order's uses, in the order taken: held, then committed or released together.
CREATE TABLE promotion_uses (
    order_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    promotion TEXT NOT NULL,
    code TEXT,
    customer_key TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX promotion_uses_held ON promotion_uses (state, created_at);
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
