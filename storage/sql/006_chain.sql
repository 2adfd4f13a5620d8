-- The chain (issue 13): an order's transaction options, and the searchers' trades against the pools.
-- tx_options: {"priorityFee": "auto" | "low" | "medium" | "high" | "veryHigh" | micro-lamports per CU,
--              "maxPriorityFeeLamports": int | null, "jitoTipLamports": int}; NULL: the configured defaults.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS tx_options jsonb;

-- 'mev': a sandwich's front-run or back-run, landed in the same block as its victim.
ALTER TABLE pool_trades DROP CONSTRAINT IF EXISTS pool_trades_kind_check;
ALTER TABLE pool_trades ADD CONSTRAINT pool_trades_kind_check
    CHECK (kind IN ('order', 'arbitrage', 'noise', 'shock', 'mev'));
