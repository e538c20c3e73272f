-- Catalog: products as JSON documents, with the columns listings and SKU lookups need.
CREATE TABLE categories (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    data LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE products (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    category VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    published BIGINT NOT NULL,
    data LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX products_by_category ON products (category, id);

CREATE TABLE variants (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    product_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX variants_by_product ON variants (product_id);

-- Persistent carts, compare-and-set on version.
CREATE TABLE carts (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    version BIGINT NOT NULL,
    data LONGTEXT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Inventory: a SKU's stock is one row per bucket (one bucket unless the SKU is hot, when
-- its units are spread so concurrent buyers lock different rows). The CHECKs make
-- overselling impossible even for a buggy writer.
CREATE TABLE stock (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    bucket BIGINT NOT NULL,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    sold BIGINT NOT NULL CHECK (sold >= 0),
    PRIMARY KEY (sku, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE reservations (
    order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    id VARCHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL,
    line_items LONGTEXT NOT NULL,
    takes LONGTEXT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX reservations_expiring ON reservations (state, expires_at);

-- Append-only ledger of every stock movement.
CREATE TABLE stock_ledger (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind VARCHAR(16) NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    order_id VARCHAR(64),
    at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, seq);

-- Orders as JSON documents; the idempotency key is unique.
CREATE TABLE orders (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    customer_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    status VARCHAR(16) NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_pending ON orders (status, created_at);

-- Outbox: events written in the same transaction as the order change.
CREATE TABLE outbox (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    data LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Co-purchase counts, each order counted once.
CREATE TABLE recorded_orders (
    order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE co_purchases (
    sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    other VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `count` BIGINT NOT NULL,
    PRIMARY KEY (sku, other)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
