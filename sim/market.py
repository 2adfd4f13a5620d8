"""A market that moves: reference prices, arbitrage flow and noise flow.

A seeded :class:`numpy.random.Generator` drives a reference price per token
in USD: geometric Brownian motion (zero drift in price), or, for tokens given
a mean-reversion rate (USDC, USDT), an Ornstein-Uhlenbeck process on the log
price around the starting price, which keeps stablecoins pinned near 1.

Each tick of ``dt`` simulated seconds:

1. the reference prices move;
2. **arbitrage**: every pool whose spot price is outside the no-arbitrage
   band around the reference cross price (the band is the pool's fee) is
   traded back toward it. The trade is sized on the pool's own exact quotes
   (bisection on the amount until the post-trade spot reaches the edge of
   the band), then scaled by ``arbitrage.fraction`` so prices lag, and only
   made when it earns at least ``min_profit_usd`` at reference prices;
3. **noise**: Poisson arrivals per pool, log-normal sizes in USD converted to
   token units, random direction, which push the pools apart.

Every trade goes through ``swap_exact_in``, so the pool math stays exact.
The random draws never depend on pool state, and their order is fixed, so
the same seed gives the same path bit for bit.

Two ways to drive it:

* :meth:`Market.tick` applies the flow to the market's own pools (tests,
  benchmarks, single-process demos);
* :meth:`Market.next_flows` only plans the flow against pools it is given
  (and does not mutate them): the engine's market actor sends the planned
  swaps to the pool actors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sim.pools.base import InsufficientLiquidity, InvalidSwapAmount, Pool, SlippageExceeded

SECONDS_PER_YEAR = 365.25 * 24 * 3600
FlowKind = Literal["arbitrage", "noise"]


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ArbitrageParams:
    enabled: bool = True
    fraction: float = 0.6  # share of the full arbitrage trade made per tick, in (0, 1]
    min_profit_usd: float = 0.05  # skip trades that earn less at reference prices

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"arbitrage.fraction must be in (0, 1], got {self.fraction}")
        if self.min_profit_usd < 0:
            raise ValueError("arbitrage.min_profit_usd must be >= 0")


@dataclass(frozen=True)
class NoiseParams:
    enabled: bool = True
    rate_per_s: float = 0.5  # Poisson arrivals per pool per second
    median_usd: float = 50.0  # median trade size (log-normal)
    sigma: float = 1.0  # log-normal shape
    max_usd: float | None = None  # cap on one trade's size
    pool_rates: Mapping[str, float] = field(default_factory=dict)  # per-pool rate overrides

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or any(r < 0 for r in self.pool_rates.values()):
            raise ValueError("noise rates must be >= 0")
        if self.median_usd <= 0:
            raise ValueError("noise.median_usd must be > 0")
        if self.sigma < 0:
            raise ValueError("noise.sigma must be >= 0")
        if self.max_usd is not None and self.max_usd <= 0:
            raise ValueError("noise.max_usd must be > 0")

    def rate(self, pool_id: str) -> float:
        return self.pool_rates.get(pool_id, self.rate_per_s)


@dataclass(frozen=True)
class MarketParams:
    """How the market moves. Prices are USD per whole token."""

    reference_prices_usd: Mapping[str, float]
    volatility: Mapping[str, float] = field(default_factory=dict)  # missing -> 0
    volatility_unit: Literal["annual", "per_second"] = "annual"
    mean_reversion: Mapping[str, float] = field(default_factory=dict)  # per second; missing -> 0
    tick_s: float = 1.0
    seed: int = 0
    start_time: float = 0.0
    arbitrage: ArbitrageParams = field(default_factory=ArbitrageParams)
    noise: NoiseParams = field(default_factory=NoiseParams)

    def __post_init__(self) -> None:
        for symbol, price in self.reference_prices_usd.items():
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"reference price of {symbol} must be positive, got {price}")
        for name, values in (("volatility", self.volatility), ("mean_reversion", self.mean_reversion)):
            for symbol, value in values.items():
                if symbol not in self.reference_prices_usd:
                    raise ValueError(f"{name} given for {symbol}, which has no reference price")
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name} of {symbol} must be >= 0, got {value}")
        if self.volatility_unit not in ("annual", "per_second"):
            raise ValueError(
                f"volatility_unit must be 'annual' or 'per_second', got {self.volatility_unit!r}"
            )
        if not self.tick_s > 0:
            raise ValueError("tick_s must be > 0")

    def sigma_per_second(self, symbol: str) -> float:
        sigma = self.volatility.get(symbol, 0.0)
        return sigma / math.sqrt(SECONDS_PER_YEAR) if self.volatility_unit == "annual" else sigma


# --------------------------------------------------------------------------- flows


@dataclass(frozen=True, slots=True)
class Flow:
    """A trade the market intends to make: ``swap_exact_in(token_in, amount_in)``."""

    pool_id: str
    kind: FlowKind
    token_in: str
    token_out: str
    amount_in: int
    now: float


@dataclass(frozen=True, slots=True)
class MarketTrade:
    """A trade the market made on its own pools."""

    pool_id: str
    kind: FlowKind
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int
    now: float


def arbitrage_trade(
    pool: Pool, reference_price: float, now: float = 0.0
) -> tuple[str, int] | None:
    """The trade that brings ``pool`` to the edge of its no-arbitrage band.

    ``reference_price`` is the fair price of token_x in token_y (human
    units). With fee f, selling x pays off while the spot of x is above
    ref / (1 - f); selling y while it is below ref * (1 - f). Returns
    ``(token_in, amount_in)`` - the largest input whose post-trade spot does
    not cross the band's edge, found by bisection on exact quotes - or None
    when the pool is inside the band.
    """
    keep = 1.0 - pool.fee_bps_at(now) / 10_000
    x, y = pool.token_x.symbol, pool.token_y.symbol
    spot_x = pool.spot_price(x)
    if spot_x * keep > reference_price:
        token_in, spot, target = x, spot_x, reference_price / keep
    elif spot_x < reference_price * keep:
        token_in, spot, target = y, pool.spot_price(y), 1.0 / (reference_price * keep)
    else:
        return None

    def short_of_target(amount: int) -> bool:
        try:
            return pool.quote_exact_in(token_in, amount, now).spot_price_after >= target
        except InsufficientLiquidity:
            return False

    # First guess from constant-product algebra: spot falls as (r / (r + a))^2.
    reserve = pool.reserves()[token_in]
    guess = int(reserve * (math.sqrt(spot / target) - 1.0))
    lo, hi = 0, max(1, guess)
    limit = max(1, reserve) << 10  # beyond it the edge is out of reach: take what we found
    while hi <= limit and short_of_target(hi):
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 1000):
        mid = (lo + hi) // 2
        if short_of_target(mid):
            lo = mid
        else:
            hi = mid
    return (token_in, lo) if lo > 0 else None


# --------------------------------------------------------------------------- market


class Market:
    """Reference prices plus arbitrage and noise flow over a set of pools."""

    def __init__(self, pools: Iterable[Pool], params: MarketParams, seed: int | None = None) -> None:
        self.params = params
        self.seed = params.seed if seed is None else seed
        self._rng = np.random.default_rng(self.seed)
        self.pools: dict[str, Pool] = {}
        for pool in pools:
            if pool.pool_id in self.pools:
                raise ValueError(f"duplicate pool id {pool.pool_id!r}")
            for token in pool.tokens:
                if token.symbol not in params.reference_prices_usd:
                    raise ValueError(
                        f"pool {pool.pool_id} trades {token.symbol}, which has no reference price"
                    )
            self.pools[pool.pool_id] = pool
        self._order = sorted(self.pools)
        self._symbols = sorted(params.reference_prices_usd)
        self._anchor = {s: math.log(params.reference_prices_usd[s]) for s in self._symbols}
        self._log_price = dict(self._anchor)
        self._now = float(params.start_time)
        self.ticks = 0

    # -- reading -----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._now

    def reference_price(self, symbol: str) -> float:
        """USD per whole token now."""
        return math.exp(self._log_price[symbol])

    def reference_cross(self, pool: Pool) -> float:
        """Fair price of the pool's token_x in token_y, human units."""
        return self.reference_price(pool.token_x.symbol) / self.reference_price(pool.token_y.symbol)

    # -- moving --------------------------------------------------------------------

    def add_pool(self, pool: Pool, new_token_usd: dict[str, float]) -> bool:
        """A pool opened during the run (a launch); ``new_token_usd``: the reference price of a token the
        market does not price yet (it is anchored there). False when the pool is known already."""
        if pool.pool_id in self.pools:
            return False
        for symbol, price in new_token_usd.items():
            if symbol not in self._log_price:
                self._anchor[symbol] = self._log_price[symbol] = math.log(price)
                self._symbols = sorted(self._log_price)
        for token in pool.tokens:
            if token.symbol not in self._log_price:
                raise ValueError(f"pool {pool.pool_id} trades {token.symbol}, which has no reference price")
        self.pools[pool.pool_id] = pool
        self._order = sorted(self.pools)
        return True

    def shock(self, symbol: str, move_bps: float) -> tuple[float, float]:
        """Move a token's reference price by ``move_bps`` (signed) for good: its anchor moves too,
        so mean reversion keeps it there. Returns the USD price before and after."""
        if symbol not in self._log_price:
            raise KeyError(symbol)
        if not -10_000 < move_bps:
            raise ValueError("a price cannot fall by 100 % or more")
        before = self.reference_price(symbol)
        step = math.log1p(move_bps / 10_000)
        self._log_price[symbol] += step
        self._anchor[symbol] += step
        return before, self.reference_price(symbol)

    def _advance_prices(self, dt: float) -> None:
        shocks = self._rng.standard_normal(len(self._symbols))
        for symbol, z in zip(self._symbols, shocks):
            sigma = self.params.sigma_per_second(symbol)
            theta = self.params.mean_reversion.get(symbol, 0.0)
            if theta > 0:
                decay = math.exp(-theta * dt)
                spread = sigma * math.sqrt((1.0 - decay * decay) / (2.0 * theta))
                deviation = self._log_price[symbol] - self._anchor[symbol]
                self._log_price[symbol] = self._anchor[symbol] + deviation * decay + spread * float(z)
            else:
                self._log_price[symbol] += -0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * float(z)

    def _draw_noise(self, dt: float) -> list[tuple[str, float, bool]]:
        """(pool id, size in USD, sells token_x?) for every noise arrival, in a fixed order."""
        noise = self.params.noise
        draws: list[tuple[str, float, bool]] = []
        mu = math.log(noise.median_usd)
        for pool_id in self._order:
            count = int(self._rng.poisson(noise.rate(pool_id) * dt))
            if count == 0:
                continue
            sizes = self._rng.lognormal(mu, noise.sigma, count)
            sells_x = self._rng.random(count) < 0.5
            for size, side in zip(sizes, sells_x):
                usd = float(size) if noise.max_usd is None else min(float(size), noise.max_usd)
                draws.append((pool_id, usd, bool(side)))
        return draws

    def next_flows(
        self,
        dt: float | None = None,
        pools_now: Mapping[str, Pool] | None = None,
        *,
        now: float | None = None,
    ) -> list[Flow]:
        """Advance the clock and the reference prices by ``dt``; plan this tick's trades.

        Arbitrage is sized against ``pools_now`` (the pools' current states,
        default the market's own) without mutating them; those flows come
        first, one per displaced pool, then the noise arrivals. A pool
        missing from ``pools_now`` gets no flow (its random draws are still
        consumed, so the path does not depend on which pools are given).
        ``now`` sets the clock instead of adding ``dt`` to it (a live actor
        passes wall-clock time, which DLMM fee decay is measured against).
        """
        dt = self.params.tick_s if dt is None else float(dt)
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        pools_now = self.pools if pools_now is None else pools_now
        self._now = self._now + dt if now is None else float(now)
        self.ticks += 1
        now = self._now
        self._advance_prices(dt)
        noise = self._draw_noise(dt) if self.params.noise.enabled else []
        flows: list[Flow] = []
        if self.params.arbitrage.enabled:
            for pool_id in self._order:
                pool = pools_now.get(pool_id)
                if pool is not None:
                    flow = self._plan_arbitrage(pool, now)
                    if flow is not None:
                        flows.append(flow)
        for pool_id, usd, sells_x in noise:
            pool = pools_now.get(pool_id)
            if pool is None:
                continue
            token_in, token_out = (pool.token_x, pool.token_y) if sells_x else (pool.token_y, pool.token_x)
            amount = int(usd / self.reference_price(token_in.symbol) * token_in.one)
            if amount > 0:
                flows.append(Flow(pool_id, "noise", token_in.symbol, token_out.symbol, amount, now))
        return flows

    def _plan_arbitrage(self, pool: Pool, now: float) -> Flow | None:
        arb = self.params.arbitrage
        trade = arbitrage_trade(pool, self.reference_cross(pool), now)
        if trade is None:
            return None
        token_in, full = trade
        amount = int(full * arb.fraction)
        try:  # a fraction of a small trade may round to nothing
            quote = pool.quote_exact_in(token_in, amount, now)
        except (InsufficientLiquidity, InvalidSwapAmount):
            return None
        token_out = pool.other(token_in)
        tin = pool.token_x if token_in == pool.token_x.symbol else pool.token_y
        profit = (
            quote.amount_out / token_out.one * self.reference_price(token_out.symbol)
            - amount / tin.one * self.reference_price(token_in)
        )
        if profit < arb.min_profit_usd:
            return None
        return Flow(pool.pool_id, "arbitrage", token_in, token_out.symbol, amount, now)

    def tick(self, dt: float | None = None) -> list[MarketTrade]:
        """One tick applied to the market's own pools; the trades that went through."""
        trades: list[MarketTrade] = []
        for flow in self.next_flows(dt):
            pool = self.pools[flow.pool_id]
            try:
                quote = pool.swap_exact_in(flow.token_in, flow.amount_in, 0, flow.now)
            except (InsufficientLiquidity, InvalidSwapAmount, SlippageExceeded):
                continue  # a noise trade the pool cannot fill: nobody trades
            trades.append(
                MarketTrade(
                    flow.pool_id,
                    flow.kind,
                    flow.token_in,
                    flow.token_out,
                    quote.amount_in,
                    quote.amount_out,
                    quote.fee,
                    flow.now,
                )
            )
        return trades


__all__ = [
    "ArbitrageParams",
    "Flow",
    "Market",
    "MarketParams",
    "MarketTrade",
    "NoiseParams",
    "arbitrage_trade",
]
