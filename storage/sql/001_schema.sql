-- Orders, their status history, and every trade against a simulated pool.
-- Amounts are integers in the token's base units (numeric(39,0): a u64 and
-- more fit, and Python ints round-trip exactly).

CREATE TABLE IF NOT EXISTS orders (
    id                uuid PRIMARY KEY,
    type              text NOT NULL DEFAULT 'market'
                      CHECK (type IN ('market', 'limit', 'sniper')),
    token_in          text NOT NULL,
    token_out         text NOT NULL,
    mint_in           text NOT NULL,
    mint_out          text NOT NULL,
    amount_in         numeric(39, 0) NOT NULL CHECK (amount_in > 0),
    amount_in_decimal text NOT NULL,
    slippage_bps      integer NOT NULL CHECK (slippage_bps BETWEEN 0 AND 10000),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'routing', 'building', 'submitted', 'confirmed', 'failed')),
    seq               integer NOT NULL DEFAULT 1 CHECK (seq >= 1),
    attempts          integer NOT NULL DEFAULT 1 CHECK (attempts >= 0),
    dex               text,
    pool_id           text,
    route             jsonb,
    amount_out        numeric(39, 0) CHECK (amount_out >= 0),
    executed_price    numeric,
    fee               numeric(39, 0) CHECK (fee >= 0),
    price_impact_bps  double precision,
    tx_signature      text,
    error_code        text,
    error_message     text,
    idempotency_key   text UNIQUE,
    request_hash      text,
    client_id         text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- recent orders, and recent orders with a status (keyset pagination on (created_at, id))
CREATE INDEX IF NOT EXISTS orders_recent_idx ON orders (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_status_recent_idx ON orders (status, created_at DESC, id DESC);
-- recovery scan: orders not yet final, oldest change first
CREATE INDEX IF NOT EXISTS orders_unfinished_idx ON orders (updated_at)
    WHERE status NOT IN ('confirmed', 'failed');

CREATE OR REPLACE FUNCTION orders_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER orders_touch_updated_at
    BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_touch_updated_at();

-- one row per status change; (order_id, seq) is gapless per order from 1
CREATE TABLE IF NOT EXISTS order_status_history (
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 1),
    status     text NOT NULL
               CHECK (status IN ('pending', 'routing', 'building', 'submitted', 'confirmed', 'failed')),
    attempt    integer NOT NULL CHECK (attempt >= 0),
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, seq)   -- also serves "history of an order"
);

-- the state a pool started from, written once
CREATE TABLE IF NOT EXISTS pool_genesis (
    pool_id    text PRIMARY KEY,
    snapshot   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- every trade against a pool, in the pool's own order (seq from 1)
CREATE TABLE IF NOT EXISTS pool_trades (
    pool_id     text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    kind        text NOT NULL CHECK (kind IN ('order', 'arbitrage', 'noise')),
    order_id    uuid REFERENCES orders (id),
    leg         integer NOT NULL DEFAULT 0 CHECK (leg >= 0),
    token_in    text NOT NULL,
    amount_in   numeric(39, 0) NOT NULL CHECK (amount_in >= 0),
    token_out   text NOT NULL,
    amount_out  numeric(39, 0) NOT NULL CHECK (amount_out >= 0),
    fee         numeric(39, 0) NOT NULL DEFAULT 0 CHECK (fee >= 0),
    sim_time    double precision NOT NULL,
    state_after jsonb NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- quote facts: impact, prices, signature
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (pool_id, seq),      -- also serves "trades of a pool"
    CHECK ((kind = 'order') = (order_id IS NOT NULL))
);

-- an order fills each leg at most once
CREATE UNIQUE INDEX IF NOT EXISTS pool_trades_order_leg_key
    ON pool_trades (order_id, leg) WHERE order_id IS NOT NULL;
