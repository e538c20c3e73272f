-- Address books: each customer's saved addresses as JSON documents, one row per address
-- (the digest of its JSON is unique per customer).
CREATE TABLE customer_addresses (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
    customer VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    digest VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    address LONGTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY customer_addresses_digest (customer, digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX customer_addresses_by_customer ON customer_addresses (customer, created_at, id);

-- One row per customer who ever saved an address: a save locks it, so saves of one customer
-- run one at a time and the count they check cannot change under them (an empty book has no
-- address row to lock).
CREATE TABLE customer_address_books (
    customer VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
