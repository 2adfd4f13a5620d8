"""Candles: a pool's recorded trades summed up per time bucket (OHLCV).

A trade's price is what it paid, in quote tokens per base token (token units,
the pool's ``token_y`` per ``token_x``: the orientation of a pool's spot
price), fees and price impact included. Volumes are token units of each side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Candle:
    """The trades of one bucket, ``start <= created_at < start + interval``; open and close by trade order."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume_base: Decimal
    volume_quote: Decimal
    trades: int


@dataclass(frozen=True, slots=True)
class PoolCandles:
    """A pool's candles over a time range: only buckets with trades, oldest first."""

    pool_id: str
    base: str
    quote: str
    candles: tuple[Candle, ...]
