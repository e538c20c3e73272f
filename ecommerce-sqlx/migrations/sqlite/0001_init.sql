-- Catalog: products as JSON documents, with the columns listings and SKU lookups need.
CREATE TABLE categories (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    published BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX products_by_category ON products (category, id);

CREATE TABLE variants (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE
);
CREATE INDEX variants_by_product ON variants (product_id);

-- Persistent carts, compare-and-set on version.
CREATE TABLE carts (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Inventory: a SKU's stock is one row per bucket (one bucket unless the SKU is hot, when
-- its units are spread so concurrent buyers lock different rows). The CHECKs make
-- overselling impossible even for a buggy writer.
CREATE TABLE stock (
    sku TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    sold BIGINT NOT NULL CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
);

CREATE TABLE reservations (
    order_id TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    line_items TEXT NOT NULL,
    takes TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reservations_expiring ON reservations (state, expires_at);

-- Append-only ledger of every stock movement.
CREATE TABLE stock_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    order_id TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, seq);

-- Orders as JSON documents; the idempotency key is unique.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_pending ON orders (status, created_at);

-- Outbox: events written in the same transaction as the order change.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);

-- Co-purchase counts, each order counted once.
CREATE TABLE recorded_orders (
    order_id TEXT PRIMARY KEY
);

CREATE TABLE co_purchases (
    sku TEXT NOT NULL,
    other TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (sku, other)
);
