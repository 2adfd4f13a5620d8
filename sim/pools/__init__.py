"""Simulated DEX pools: Raydium constant product and Meteora DLMM."""

from __future__ import annotations

from typing import Any

from sim.pools.base import (
    InsufficientLiquidity,
    InvalidSwapAmount,
    Pool,
    SimError,
    SlippageExceeded,
    SwapQuote,
    UnsupportedToken,
)
from sim.pools.cpmm import CpmmPool
from sim.pools.dlmm import DlmmFeeParams, DlmmPool

_POOL_TYPES: dict[str, type[Pool]] = {"cpmm": CpmmPool, "dlmm": DlmmPool}


def restore_pool(snapshot: dict[str, Any]) -> Pool:
    """Rebuild a pool of either kind from its ``snapshot()``."""
    kind = snapshot.get("type")
    pool_type = _POOL_TYPES.get(kind) if isinstance(kind, str) else None
    if pool_type is None:
        raise ValueError(f"unknown pool type {kind!r}")
    return pool_type.restore(snapshot)


__all__ = [
    "CpmmPool",
    "DlmmFeeParams",
    "DlmmPool",
    "InsufficientLiquidity",
    "InvalidSwapAmount",
    "Pool",
    "SimError",
    "SlippageExceeded",
    "SwapQuote",
    "UnsupportedToken",
    "restore_pool",
]
