"""A bigger market from the default one: every pool copied so that each pair has ``times`` pools.

Copies are named ``<id>~2``, ``<id>~3``, ... and hold the same liquidity at the same price, so the
market's arbitrage keeps them together; the rest of the config (tokens, noise, launches) is kept.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from engine.config import parse_market_config
from engine.settings import DEFAULT_MARKET_CONFIG


def copied_market(raw: dict[str, Any], times: int) -> dict[str, Any]:
    """``raw`` (a market config as read from YAML) with each pool there ``times`` times in all."""
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    market = copy.deepcopy(raw)
    pools = market["pools"]
    market["pools"] = [*pools, *({**pool, "id": f"{pool['id']}~{k}"} for k in range(2, times + 1) for pool in pools)]
    return market


def write_copied_market(times: int, directory: Path, source: Path = DEFAULT_MARKET_CONFIG) -> Path:
    """The copied market, validated, written as ``market-x<times>.yaml`` in ``directory``."""
    market = copied_market(yaml.safe_load(source.read_text()), times)
    parse_market_config(market, f"{source} x{times}")
    path = directory / f"market-x{times}.yaml"
    path.write_text(yaml.safe_dump(market, sort_keys=False))
    return path
