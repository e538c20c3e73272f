-- Guest carts expire: a flag to find them, and an index to sweep the old ones.
ALTER TABLE carts ADD COLUMN guest BIGINT NOT NULL DEFAULT 0;
CREATE INDEX carts_guest_expiry ON carts (guest, updated_at);
