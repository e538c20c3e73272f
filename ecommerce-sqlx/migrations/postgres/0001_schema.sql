-- The stores' schema on PostgreSQL. Ids the SDK makes (orders, carts, customers, products,
-- reservations, events, addresses) are `uuid`; SKUs, category and promotion ids and coupon
-- codes are the text their owners chose. Times are `timestamptz`. Products, carts, orders,
-- promotions and events are JSON documents (`jsonb`) beside the columns the stores query.
-- Counters carry CHECKs, so even SQL written by hand cannot oversell.

-- Catalog.
CREATE TABLE categories (
    id TEXT COLLATE "C" PRIMARY KEY,
    data JSONB NOT NULL
);

CREATE TABLE products (
    id UUID PRIMARY KEY,
    category TEXT COLLATE "C" NOT NULL,
    -- 1: shoppers see it.
    published BIGINT NOT NULL,
    data JSONB NOT NULL
);
CREATE INDEX products_by_category ON products (category, id);

CREATE TABLE variants (
    sku TEXT COLLATE "C" PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE
);
CREATE INDEX variants_by_product ON variants (product_id);

-- Carts, written by compare-and-set on `version`.
CREATE TABLE carts (
    id UUID PRIMARY KEY,
    version BIGINT NOT NULL,
    data JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
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
    sku TEXT COLLATE "C" NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL CONSTRAINT stock_on_hand_check CHECK (on_hand >= 0),
    taken BIGINT NOT NULL CONSTRAINT stock_taken_check CHECK (taken >= 0),
    PRIMARY KEY (sku, bucket)
);

CREATE TABLE stock_sold (
    sku TEXT COLLATE "C" NOT NULL,
    bucket BIGINT NOT NULL,
    sold BIGINT NOT NULL CONSTRAINT stock_sold_sold_check CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
);

-- An order's reservation: its lines and the units it took from each bucket, held until
-- `expires_at`, then committed or released.
CREATE TABLE reservations (
    order_id UUID PRIMARY KEY,
    id UUID NOT NULL,
    state TEXT NOT NULL,
    line_items JSONB NOT NULL,
    takes JSONB NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX reservations_expiring ON reservations (state, expires_at);

-- Every stock movement, appended.
CREATE TABLE stock_ledger (
    seq BIGSERIAL PRIMARY KEY,
    sku TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL CONSTRAINT stock_ledger_quantity_check CHECK (quantity > 0),
    order_id UUID,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, seq);

-- Orders. `idempotency_key` holds the customer and a SHA-256 of their key, unique.
CREATE TABLE orders (
    id UUID PRIMARY KEY,
    customer_id UUID NOT NULL,
    idempotency_key TEXT COLLATE "C" NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    data JSONB NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_pending ON orders (status, created_at);

-- The outbox, in Debezium's outbox layout (id, aggregatetype, aggregateid, type, payload):
-- events written in the transaction of the change they tell of; `seq` keeps their order.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    aggregatetype TEXT COLLATE "C" NOT NULL,
    aggregateid TEXT COLLATE "C" NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    payload JSONB NOT NULL
);

-- Co-purchase counts, each order counted once.
CREATE TABLE recorded_orders (
    order_id UUID PRIMARY KEY
);

CREATE TABLE co_purchases (
    sku TEXT COLLATE "C" NOT NULL,
    other TEXT COLLATE "C" NOT NULL,
    count BIGINT NOT NULL CONSTRAINT co_purchases_count_check CHECK (count >= 1),
    PRIMARY KEY (sku, other)
);

-- Address books: a customer's saved addresses, one row each (the digest of the address is
-- unique per customer).
CREATE TABLE customer_addresses (
    id UUID PRIMARY KEY,
    customer UUID NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    address JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (customer, digest)
);
CREATE INDEX customer_addresses_by_customer ON customer_addresses (customer, created_at, id);

-- One row per customer who ever saved an address: a save locks it, so saves of one customer
-- run one at a time and the count they check cannot change under them.
CREATE TABLE customer_address_books (
    customer UUID PRIMARY KEY
);

-- Promotions beside their limits and usage counters. A use is counted under the limits with
-- conditional increments (`taken + 1 <= max_uses`, `spent_minor + amount <= budget_minor`),
-- like stock; the CHECKs stand behind them.
CREATE TABLE promotions (
    id TEXT COLLATE "C" PRIMARY KEY,
    data JSONB NOT NULL,
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
    code TEXT COLLATE "C" PRIMARY KEY,
    promotion TEXT COLLATE "C" NOT NULL,
    max_uses BIGINT,
    used BIGINT NOT NULL DEFAULT 0 CONSTRAINT coupons_used_check CHECK (used >= 0)
);
CREATE INDEX coupons_by_promotion ON coupons (promotion);

-- Uses of a promotion per customer (`customer:<id>` or `email:<address>`).
CREATE TABLE promotion_customers (
    promotion TEXT COLLATE "C" NOT NULL,
    customer_key TEXT COLLATE "C" NOT NULL,
    used BIGINT NOT NULL DEFAULT 0 CONSTRAINT promotion_customers_used_check CHECK (used >= 0),
    PRIMARY KEY (promotion, customer_key)
);

-- Each order's uses, in the order taken: held, then committed or released together.
CREATE TABLE promotion_uses (
    order_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    promotion TEXT COLLATE "C" NOT NULL,
    code TEXT COLLATE "C",
    customer_key TEXT COLLATE "C" NOT NULL,
    amount_minor BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX promotion_uses_held ON promotion_uses (state, created_at);
CREATE INDEX promotion_uses_by_promotion ON promotion_uses (promotion, state);
