-- Tokens launched during a run and their first pools (the configured ones live in configs/market.yaml).
CREATE TABLE IF NOT EXISTS launched_tokens (
    symbol     text PRIMARY KEY,
    mint       text NOT NULL UNIQUE,
    decimals   integer NOT NULL CHECK (decimals BETWEEN 0 AND 12),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Symbols are unique whatever their case.
CREATE UNIQUE INDEX IF NOT EXISTS launched_tokens_symbol_key ON launched_tokens (upper(symbol));

CREATE TABLE IF NOT EXISTS launched_pools (
    pool_id    text PRIMARY KEY,
    token_x    text NOT NULL REFERENCES launched_tokens (symbol),
    token_y    text NOT NULL,
    dex        text NOT NULL,
    launch     jsonb NOT NULL,  -- what was launched: liquidity, opening price, when
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
