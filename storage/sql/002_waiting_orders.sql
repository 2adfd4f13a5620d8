-- Orders that wait for the market: limit, stop-loss, take-profit, trailing stop.
-- They are armed (open) until their trigger fires (triggered), or end
-- cancelled or expired. `trigger` keeps what the order waits for, as the
-- client asked it and in exact base units; `expires_at` is when it stops
-- waiting.

ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_type_check;
ALTER TABLE orders ADD CONSTRAINT orders_type_check
    CHECK (type IN ('market', 'limit', 'stop_loss', 'take_profit', 'trailing_stop', 'sniper'));

ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'open', 'triggered', 'routing', 'building', 'submitted',
                      'confirmed', 'failed', 'cancelled', 'expired'));

ALTER TABLE order_status_history DROP CONSTRAINT IF EXISTS order_status_history_status_check;
ALTER TABLE order_status_history ADD CONSTRAINT order_status_history_status_check
    CHECK (status IN ('pending', 'open', 'triggered', 'routing', 'building', 'submitted',
                      'confirmed', 'failed', 'cancelled', 'expired'));

ALTER TABLE orders ADD COLUMN IF NOT EXISTS trigger jsonb;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_waiting_check;
ALTER TABLE orders ADD CONSTRAINT orders_waiting_check
    CHECK ((type = 'market') = (trigger IS NULL) AND (trigger IS NULL) = (expires_at IS NULL));

-- A shock moves one pool on purpose (a simulation control), recorded like any trade.
ALTER TABLE pool_trades DROP CONSTRAINT IF EXISTS pool_trades_kind_check;
ALTER TABLE pool_trades ADD CONSTRAINT pool_trades_kind_check
    CHECK (kind IN ('order', 'arbitrage', 'noise', 'shock'));

-- The recovery scan and the liveness figure look at orders something must run:
-- not final, and not waiting for the market.
DROP INDEX IF EXISTS orders_unfinished_idx;
CREATE INDEX IF NOT EXISTS orders_active_idx ON orders (updated_at)
    WHERE status IN ('pending', 'triggered', 'routing', 'building', 'submitted');
-- What the trigger book rebuilds itself from.
CREATE INDEX IF NOT EXISTS orders_open_idx ON orders (created_at, id) WHERE status = 'open';
