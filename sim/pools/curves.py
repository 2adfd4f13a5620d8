"""A pool's output as a function of its share of one order, for the split solver.

``demand(rate)`` is how much of the order a pool takes before its marginal
rate (output per unit of input, base units) falls below ``rate``; the split
gives every pool the share at which all marginal rates are equal.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from sim.pools.errors import InsufficientLiquidity

if TYPE_CHECKING:
    from sim.pools.base import Pool

# Resolution of a sampled curve: its pool's output is quoted on this many
# segments of the order.
SAMPLE_SEGMENTS = 128


class OutputCurve(ABC):
    """One pool's exact outputs (memoised) and its demand at a marginal rate."""

    def __init__(self, pool: Pool, token_in: str, total: int, now: float) -> None:
        self.pool = pool
        self.token_in = token_in
        self.total = total
        self.now = now
        self._memo: dict[int, int | None] = {0: 0}

    def out(self, amount: int) -> int | None:
        """Exact output for ``amount`` (None when the pool cannot fill it)."""
        if amount not in self._memo:
            try:
                self._memo[amount] = self.pool.quote_exact_in(self.token_in, amount, self.now).amount_out
            except InsufficientLiquidity:
                self._memo[amount] = None
        return self._memo[amount]

    @abstractmethod
    def first_rate(self) -> float:
        """The marginal rate of the first units of input."""

    @abstractmethod
    def demand(self, rate: float) -> float:
        """Input taken before the marginal rate falls below ``rate`` (at most ``total``)."""


class ConstantProductCurve(OutputCurve):
    """x*y=k with the fee taken from the input: out(a) = y*g*a / (x + g*a).

    The marginal rate is g*x*y / (x + g*a)**2, so the pool takes
    a(rate) = (sqrt(g*x*y / rate) - x) / g until its marginal rate is ``rate``.
    """

    def __init__(
        self,
        pool: Pool,
        token_in: str,
        total: int,
        now: float,
        *,
        reserve_in: int,
        reserve_out: int,
        gamma: float,
    ) -> None:
        super().__init__(pool, token_in, total, now)
        self.x, self.y, self.gamma = float(reserve_in), float(reserve_out), gamma

    def first_rate(self) -> float:
        return self.gamma * self.y / self.x

    def demand(self, rate: float) -> float:
        a = (math.sqrt(self.gamma * self.x * self.y / rate) - self.x) / self.gamma
        return min(max(a, 0.0), float(self.total))


class SampledCurve(OutputCurve):
    """Any pool: its output sampled on a grid of the order, with exact quotes.

    Marginal rates are the slopes of the grid's segments; they fall with the
    amount (concave output), so ``demand`` is a binary search over segments.
    """

    def __init__(self, pool: Pool, token_in: str, total: int, now: float) -> None:
        super().__init__(pool, token_in, total, now)
        self.step = max(1, -(-total // SAMPLE_SEGMENTS))
        self.segments = -(-total // self.step)

    def _point(self, k: int) -> int:
        return min(self.total, k * self.step)

    def _rate(self, k: int) -> float:
        a, b = self._point(k), self._point(k + 1)
        oa, ob = self.out(a), self.out(b)
        if oa is None or ob is None:
            return -math.inf
        return (ob - oa) / (b - a)

    def first_rate(self) -> float:
        return self._rate(0)

    def demand(self, rate: float) -> float:
        lo, hi = 0, self.segments  # number of leading segments whose rate >= rate
        while lo < hi:
            mid = (lo + hi) // 2
            if self._rate(mid) >= rate:
                lo = mid + 1
            else:
                hi = mid
        return float(self._point(lo))
