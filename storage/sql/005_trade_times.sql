-- Candles read a pool's trades by time (GET /api/pools/{poolId}/candles).
CREATE INDEX IF NOT EXISTS pool_trades_time_idx ON pool_trades (pool_id, created_at);
