"""The 49-pool market the idle measurement starts: every default pool seven times, a valid config."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.config import load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from loadtest.market_copies import copied_market, write_copied_market


def test_seven_times_the_default_market_is_49_pools_each_pair_seven_times(tmp_path: Path) -> None:
    market = load_market_config(write_copied_market(7, tmp_path))
    default = load_market_config(DEFAULT_MARKET_CONFIG)
    assert len(market.pools) == 7 * len(default.pools) == 49
    ids = [pool.id for pool in market.pools]
    assert len(set(ids)) == 49 and "raydium:SOL-USDC~7" in ids
    pairs = {}
    for pool in market.pools:
        pairs[(pool.base, pool.quote)] = pairs.get((pool.base, pool.quote), 0) + 1
    assert len(pairs) == len({(p.base, p.quote) for p in default.pools})
    assert market.tokens == default.tokens


def test_once_is_the_market_itself() -> None:
    raw = yaml.safe_load(DEFAULT_MARKET_CONFIG.read_text())
    assert copied_market(raw, 1) == raw
