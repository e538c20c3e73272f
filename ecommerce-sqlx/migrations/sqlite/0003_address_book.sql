-- Address books: each customer's saved addresses as JSON documents, one row per address
-- (the digest of its JSON is unique per customer).
CREATE TABLE customer_addresses (
    id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    digest TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (customer, digest)
);
CREATE INDEX customer_addresses_by_customer ON customer_addresses (customer, created_at, id);

-- One row per customer who ever saved an address: a save locks it, so saves of one customer
-- run one at a time and the count they check cannot change under them (an empty book has no
-- address row to lock). SQLite writers run one at a time anyway.
CREATE TABLE customer_address_books (
    customer TEXT PRIMARY KEY
);
