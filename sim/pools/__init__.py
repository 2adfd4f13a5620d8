"""Simulated DEX pools, one module per kind, known by name through the registry."""

from __future__ import annotations

from sim.pools.base import (
    AmountTooSmall,
    InsufficientLiquidity,
    InvalidSwapAmount,
    Pool,
    PoolKind,
    PoolSetup,
    SimError,
    SlippageExceeded,
    SwapQuote,
    UnsupportedToken,
)
from sim.pools.cpmm import CpmmPool
from sim.pools.dlmm import DlmmPool
from sim.pools.dlmm_params import DlmmFeeParams
from sim.pools.registry import (
    UnknownPoolKind,
    pool_kind,
    pool_kind_names,
    register,
    restore_pool,
)

__all__ = [
    "CpmmPool",
    "DlmmFeeParams",
    "DlmmPool",
    "AmountTooSmall",
    "InsufficientLiquidity",
    "InvalidSwapAmount",
    "Pool",
    "PoolKind",
    "PoolSetup",
    "SimError",
    "SlippageExceeded",
    "SwapQuote",
    "UnknownPoolKind",
    "UnsupportedToken",
    "pool_kind",
    "pool_kind_names",
    "register",
    "restore_pool",
]
