-- API keys, and the owner of every order (the name of the key that created it; NULL: made with
-- authentication off, by the one anonymous owner).
CREATE TABLE IF NOT EXISTS api_keys (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    key_id      text NOT NULL UNIQUE,       -- the public part of the key, to find its row
    secret_hash text NOT NULL,              -- argon2id of the secret part; the key itself is never stored
    admin       boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_active_idx ON api_keys (name) WHERE revoked_at IS NULL;

ALTER TABLE orders ADD COLUMN IF NOT EXISTS owner text;

-- An Idempotency-Key is the owner's own: two owners may use the same key without seeing each other.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_idempotency_key_key;
CREATE UNIQUE INDEX IF NOT EXISTS orders_owner_idempotency_key
    ON orders ((coalesce(owner, '')), idempotency_key);

-- an owner's recent orders (keyset pagination on (created_at, id))
CREATE INDEX IF NOT EXISTS orders_owner_recent_idx ON orders (owner, created_at DESC, id DESC);
