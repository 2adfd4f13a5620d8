"""Routing: the best way to turn ``amount_in`` of one token into another.

Pure functions over :class:`~sim.pools.base.Pool` objects. The engine's router
actor fetches pool snapshots from the pool actors, restores them locally and
calls these; nothing here mutates a pool (only quotes are taken).

* :func:`best_single` — the seed's rule: the one pool that pays the most.
* :func:`best_split` — one order split across several pools of the same pair
  so that every leg ends at the same marginal rate (closed form for
  constant-product pools, bisection on the marginal rate otherwise), re-quoted
  leg by leg with the pools' exact integer math; never worse than
  :func:`best_single`.
* :func:`two_hop` — through an intermediate token (BONK -> SOL -> USDC), the
  second leg's input being the first leg's exact output.
* :func:`find_best_route` — the largest output among the allowed kinds.
* :func:`all_quotes` — every venue's quote (or why it has none), for display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sim.pools.base import (
    InsufficientLiquidity,
    InvalidSwapAmount,
    Pool,
    SimError,
    SwapQuote,
)
from sim.pools.cpmm import CpmmPool

RouteKind = Literal["single", "split", "two_hop"]

# Resolution of the marginal-rate search for pools without a closed form:
# each such pool's output curve is sampled on this many segments of the order.
_GRID = 128
_BISECTION_STEPS = 64
_FINEST_SHIFT = 20  # the split is polished down to amount_in / 2**20 base units


class NoRoute(SimError):
    """No pool, and no chain of pools, trades the requested pair."""

    code = "NO_ROUTE"


@dataclass(frozen=True, slots=True)
class RouteLeg:
    pool_id: str
    dex: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int  # base units of token_in
    price_impact_bps: float

    @classmethod
    def from_quote(cls, quote: SwapQuote) -> "RouteLeg":
        return cls(
            pool_id=quote.pool_id,
            dex=quote.dex,
            token_in=quote.token_in,
            token_out=quote.token_out,
            amount_in=quote.amount_in,
            amount_out=quote.amount_out,
            fee=quote.fee,
            price_impact_bps=quote.price_impact_bps,
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True)
class Route:
    """A complete route. Legs of a split share token_in and token_out; legs of
    a two-hop route are chained (leg 2's amount_in is leg 1's amount_out)."""

    kind: RouteKind
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    legs: tuple[RouteLeg, ...]
    fee_by_token: dict[str, int] = field(default_factory=dict)
    price_impact_bps: float = 0.0

    @property
    def pool_ids(self) -> tuple[str, ...]:
        return tuple(leg.pool_id for leg in self.legs)

    @property
    def dexes(self) -> tuple[str, ...]:
        return tuple(leg.dex for leg in self.legs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "token_in": self.token_in,
            "token_out": self.token_out,
            "amount_in": self.amount_in,
            "amount_out": self.amount_out,
            "legs": [leg.to_dict() for leg in self.legs],
            "fee_by_token": dict(self.fee_by_token),
            "price_impact_bps": self.price_impact_bps,
        }


@dataclass(frozen=True, slots=True)
class QuoteFailure:
    """Why one pool has no quote for an order (shown beside the quotes)."""

    pool_id: str
    dex: str
    token_in: str
    token_out: str
    amount_in: int
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


# --------------------------------------------------------------------------- helpers


def _check_order(token_in: str, token_out: str, amount_in: int) -> None:
    if isinstance(amount_in, bool) or not isinstance(amount_in, int):
        raise InvalidSwapAmount(f"amount_in must be an integer of base units, got {amount_in!r}")
    if amount_in <= 0:
        raise InvalidSwapAmount(f"amount_in must be positive, got {amount_in}")
    if token_in == token_out:
        raise NoRoute(f"cannot route {token_in} to itself")


def _direct(pools: Iterable[Pool], token_in: str, token_out: str) -> list[Pool]:
    """Pools of the pair, in a deterministic order (by pool id)."""
    return sorted((p for p in pools if p.serves(token_in, token_out)), key=lambda p: p.pool_id)


def _single_route(quote: SwapQuote) -> Route:
    return Route(
        kind="single",
        token_in=quote.token_in,
        token_out=quote.token_out,
        amount_in=quote.amount_in,
        amount_out=quote.amount_out,
        legs=(RouteLeg.from_quote(quote),),
        fee_by_token={quote.token_in: quote.fee},
        price_impact_bps=quote.price_impact_bps,
    )


def _better(a: SwapQuote, b: SwapQuote | None) -> bool:
    """More output wins; on a tie, the smaller fee."""
    return b is None or (a.amount_out, -a.fee) > (b.amount_out, -b.fee)


def _raise_failures(failures: list[InsufficientLiquidity], what: str) -> None:
    """Every candidate failed for liquidity: say so; no candidate at all: no route."""
    if failures:
        raise InsufficientLiquidity(f"{what}: not enough liquidity ({failures[0]})") from failures[0]
    raise NoRoute(what)


# --------------------------------------------------------------------------- quotes


def all_quotes(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> list[SwapQuote | QuoteFailure]:
    """Every pool of the pair's quote for the order, or why it has none.

    In pool-id order; a pool that cannot fill gives a :class:`QuoteFailure`
    with the error's stable code instead of a quote.
    """
    results: list[SwapQuote | QuoteFailure] = []
    for pool in _direct(pools, token_in, token_out):
        try:
            results.append(pool.quote_exact_in(token_in, amount_in, now))
        except SimError as exc:
            results.append(
                QuoteFailure(pool.pool_id, pool.dex, token_in, token_out, amount_in, exc.code, str(exc))
            )
    return results


def best_single(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> Route:
    """The single pool that pays the most for the whole order (the seed's rule).

    Pools that cannot fill are skipped. Raises :class:`NoRoute` when no pool
    trades the pair, :class:`InsufficientLiquidity` when none can fill it.
    """
    _check_order(token_in, token_out, amount_in)
    candidates = _direct(pools, token_in, token_out)
    if not candidates:
        raise NoRoute(f"no pool trades {token_in} -> {token_out}")
    best: SwapQuote | None = None
    failures: list[InsufficientLiquidity] = []
    for pool in candidates:
        try:
            quote = pool.quote_exact_in(token_in, amount_in, now)
        except InsufficientLiquidity as exc:
            failures.append(exc)
            continue
        if quote.amount_out <= 0:  # the pools raise for this; a quote of nothing is no fill either
            failures.append(InsufficientLiquidity(f"{amount_in} {token_in} buys nothing on {pool.pool_id}"))
            continue
        if _better(quote, best):
            best = quote
    if best is None:
        _raise_failures(failures, f"no pool can fill {amount_in} {token_in} -> {token_out}")
    assert best is not None
    return _single_route(best)


# --------------------------------------------------------------------------- split


class _Curve:
    """One pool's output as a function of its share of the order.

    Exact outputs are memoised; ``demand(rate)`` is how much the pool takes
    before its marginal rate (output per unit of input, base units) falls
    below ``rate``.
    """

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


class _CpmmCurve(_Curve):
    """x*y=k with the fee taken from the input: out(a) = y*g*a / (x + g*a).

    The marginal rate is g*x*y / (x + g*a)**2, so the pool takes
    a(rate) = (sqrt(g*x*y / rate) - x) / g until its marginal rate is ``rate``.
    """

    def __init__(self, pool: Pool, token_in: str, total: int, now: float, x: int, y: int, gamma: float):
        super().__init__(pool, token_in, total, now)
        self.x, self.y, self.gamma = float(x), float(y), gamma

    def first_rate(self) -> float:
        return self.gamma * self.y / self.x

    def demand(self, rate: float) -> float:
        a = (math.sqrt(self.gamma * self.x * self.y / rate) - self.x) / self.gamma
        return min(max(a, 0.0), float(self.total))


class _SampledCurve(_Curve):
    """Any pool: its output sampled on a grid of the order, with exact quotes.

    Marginal rates are the slopes of the grid's segments; they fall with the
    amount (concave output), so ``demand`` is a binary search over segments.
    """

    def __init__(self, pool: Pool, token_in: str, total: int, now: float) -> None:
        super().__init__(pool, token_in, total, now)
        self.step = max(1, -(-total // _GRID))
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


def _cpmm_state(pool: Pool, token_in: str) -> tuple[int, int, float] | None:
    """(reserve in, reserve out, 1 - fee) when ``pool`` is a constant-product pool."""
    if not isinstance(pool, CpmmPool):
        return None
    x, y = pool.reserve_x, pool.reserve_y
    if token_in != pool.token_x.symbol:
        x, y = y, x
    return x, y, 1.0 - pool.fee_num / pool.fee_den


def _curve(pool: Pool, token_in: str, total: int, now: float) -> _CpmmCurve | _SampledCurve:
    state = _cpmm_state(pool, token_in)
    if state is not None and state[0] > 0 and state[1] > 0:
        return _CpmmCurve(pool, token_in, total, now, *state)
    return _SampledCurve(pool, token_in, total, now)


def _equal_marginal_allocation(curves: Sequence[_CpmmCurve | _SampledCurve], total: int) -> list[int]:
    """Integer shares (summing to ``total``) that equalise the marginal rates.

    Constant-product pools only: the rate is solved in closed form. Water
    filling with a_i = (sqrt(g_i x_i y_i / r) - x_i) / g_i over the pools
    whose first rate g_i*y_i/x_i exceeds r, and sum(a_i) = total, gives
        sqrt(1/r) = (total + sum(x_i/g_i)) / sum(sqrt(x_i y_i / g_i)).
    Otherwise the common rate is found by bisection (in log space).
    """
    cpmms = [c for c in curves if isinstance(c, _CpmmCurve)]
    if len(cpmms) == len(curves):
        active: list[_CpmmCurve] = []
        rate = math.inf
        for c in sorted(cpmms, key=lambda c: -c.first_rate()):
            if active and c.first_rate() <= rate:
                break
            active.append(c)
            num = total + sum(a.x / a.gamma for a in active)
            den = sum(math.sqrt(a.x * a.y / a.gamma) for a in active)
            rate = (den / num) ** 2
        shares = [c.demand(rate) if c in active else 0.0 for c in curves]
    else:
        top = max(c.first_rate() for c in curves)
        if top <= 0:
            raise InsufficientLiquidity("no pool gives any output for this order")
        hi = top * (1 + 1e-9)  # no pool takes anything at this rate
        lo = top * 1e-12
        if sum(c.demand(lo) for c in curves) < total:
            lo = 0.0
        for _ in range(_BISECTION_STEPS):
            mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
            if sum(c.demand(mid) for c in curves) >= total:
                lo = mid
            else:
                hi = mid
            if hi - lo <= hi * 1e-12:
                break
        shares = [c.demand(hi) for c in curves]  # the side that does not overshoot
    alloc = [int(s) for s in shares]
    given = sum(alloc)
    if given > total:  # pragma: no cover - only if float error or a non-concave book overshoots
        alloc = [a * total // given for a in alloc]
    _fill_remainder(curves, alloc, total - sum(alloc))
    return alloc


def _gain(curve: _Curve, have: int, delta: int) -> float:
    """Exact change of output when a pool's share moves from have to have+delta."""
    before, after = curve.out(have), curve.out(have + delta)
    if before is None or after is None:
        return -math.inf
    return float(after - before)


def _fill_remainder(curves: Sequence[_Curve], alloc: list[int], remainder: int) -> None:
    """Hand out what rounding left over, a chunk at a time, to the best payer."""
    chunk = max(1, -(-remainder // 16))
    while remainder > 0:
        step = min(chunk, remainder)
        gains = [_gain(c, alloc[i], step) for i, c in enumerate(curves)]
        best = max(range(len(curves)), key=lambda i: gains[i])
        if gains[best] == -math.inf:
            if step == 1:
                raise InsufficientLiquidity("the pools together cannot absorb the order")
            chunk = max(1, step // 2)
            continue
        alloc[best] += step
        remainder -= step


def _polish(curves: Sequence[_Curve], alloc: list[int], start: int, finest: int = 1) -> None:
    """Pairwise exchanges of ``s`` units, s halving down to ``finest``, while they pay.

    For concave outputs a split no single-unit exchange improves is optimal;
    this absorbs the integer rounding the continuous solution cannot see.
    """
    n = len(curves)
    for i in range(n):  # closing a leg altogether (a dust share may buy nothing)
        if alloc[i] > 0:
            kept = curves[i].out(alloc[i])
            for j in range(n):
                if j == i:
                    continue
                gain = _gain(curves[j], alloc[j], alloc[i])
                if gain > (kept or 0) or (kept is None and gain >= 0):
                    alloc[j] += alloc[i]
                    alloc[i] = 0
                    break
    step = 1 << max(0, start.bit_length() - 1)
    while step >= finest:
        improved = True
        rounds = 0
        while improved and rounds < 64:
            improved = False
            rounds += 1
            for i in range(n):
                for j in range(n):
                    if i == j or alloc[i] < step:
                        continue
                    delta = _gain(curves[j], alloc[j], step) + _gain(curves[i], alloc[i], -step)
                    if delta > 0:
                        alloc[i] -= step
                        alloc[j] += step
                        improved = True
        step //= 2


def _single_is_optimal(curves: Sequence[_CpmmCurve | _SampledCurve], single: Route, total: int) -> bool:
    """True when the winner's last grid step still pays at least every other
    pool's first one: with concave outputs no split can then do better.

    Only trusted when that step's output is large enough (10^4 base units)
    for integer rounding not to blur the rate; small orders are solved in full.
    """
    winner = next(c for c in curves if c.pool.pool_id == single.legs[0].pool_id)
    step = max(1, total // _GRID)
    before = winner.out(total - step)
    if before is None or single.amount_out - before < 10_000:
        return False
    last_rate = (single.amount_out - before) / step
    return all(last_rate >= c.first_rate() for c in curves if c is not winner)


def best_split(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> Route:
    """The order split across the pair's pools at equal marginal rates.

    Every leg is re-quoted with the pool's exact math. When the split is not
    strictly better than the best single pool, that single-pool route is
    returned instead (kind ``"single"``). A split can also fill an order that
    no single pool can.
    """
    _check_order(token_in, token_out, amount_in)
    candidates = _direct(pools, token_in, token_out)
    if not candidates:
        raise NoRoute(f"no pool trades {token_in} -> {token_out}")
    single: Route | None = None
    single_error: InsufficientLiquidity | None = None
    try:
        single = best_single(candidates, token_in, token_out, amount_in, now)
    except InsufficientLiquidity as exc:
        single_error = exc
    if len(candidates) < 2:
        if single is None:
            assert single_error is not None
            raise single_error
        return single
    curves = [_curve(p, token_in, amount_in, now) for p in candidates]
    if single is not None and _single_is_optimal(curves, single, amount_in):
        return single
    try:
        alloc = _equal_marginal_allocation(curves, amount_in)
        finest = max(1, amount_in >> _FINEST_SHIFT)
        if all(isinstance(c, _CpmmCurve) for c in curves):
            start = 2 * finest  # the closed form is only off by rounding
        else:
            # Sampled curves can mislead the bisection where integer rounding is
            # coarse (small orders): exchanges from a quarter of the order down
            # see the real trend at every scale.
            start = max(1, amount_in >> 2)
        # Below a millionth of the order an exchange is worth less than the
        # quotes it costs; small orders are polished to the unit.
        _polish(curves, alloc, start, finest)
    except InsufficientLiquidity:
        return _fallback(single, single_error)
    quotes = []
    for pool, share in zip(candidates, alloc):
        if share <= 0:
            continue
        try:
            quote: SwapQuote | None = pool.quote_exact_in(token_in, share, now)
        except InsufficientLiquidity:  # pragma: no cover - every share was quoted while solving
            quote = None
        if quote is None or quote.amount_out <= 0:
            return _fallback(single, single_error)
        quotes.append(quote)
    if len(quotes) < 2:
        return _fallback(single, single_error)
    out = sum(q.amount_out for q in quotes)
    if single is not None and out <= single.amount_out:
        return single
    quotes.sort(key=lambda q: -q.amount_in)
    return Route(
        kind="split",
        token_in=token_in,
        token_out=token_out,
        amount_in=amount_in,
        amount_out=out,
        legs=tuple(RouteLeg.from_quote(q) for q in quotes),
        fee_by_token={token_in: sum(q.fee for q in quotes)},
        price_impact_bps=sum(q.price_impact_bps * q.amount_in for q in quotes) / amount_in,
    )


def _fallback(single: Route | None, error: InsufficientLiquidity | None) -> Route:
    if single is not None:
        return single
    assert error is not None
    raise error


# --------------------------------------------------------------------------- two hops


def two_hop(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float = 0.0,
    via: str | Iterable[str] = ("SOL", "USDC"),
) -> Route:
    """The best route through one intermediate token of ``via``.

    Each hop takes its best single pool; the second hop is quoted on the
    first hop's exact output. (Greedy is optimal here: the second hop's
    output only grows with its input, and the two hops use different pools.)
    """
    _check_order(token_in, token_out, amount_in)
    vias = [via] if isinstance(via, str) else list(via)
    routes, failures = two_hop_routes(pools, token_in, token_out, amount_in, now, vias)
    best = max(routes, key=lambda r: r.amount_out, default=None)
    if best is None:
        _raise_failures(failures, f"no two-hop route {token_in} -> {token_out} via {'/'.join(vias)}")
    assert best is not None
    return best


def two_hop_routes(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float,
    vias: Iterable[str],
) -> tuple[list[Route], list[InsufficientLiquidity]]:
    """Each intermediate's best two-hop route, and the liquidity failures met."""
    pools = list(pools)
    routes: list[Route] = []
    failures: list[InsufficientLiquidity] = []
    for mid in vias:
        if mid in (token_in, token_out):
            continue
        try:
            first = best_single(pools, token_in, mid, amount_in, now)
            second = best_single(pools, mid, token_out, first.amount_out, now)
        except NoRoute:
            continue
        except InsufficientLiquidity as exc:
            failures.append(exc)
            continue
        leg1, leg2 = first.legs[0], second.legs[0]
        impact = 1 - (1 - leg1.price_impact_bps / 10_000) * (1 - leg2.price_impact_bps / 10_000)
        routes.append(
            Route(
                kind="two_hop",
                token_in=token_in,
                token_out=token_out,
                amount_in=amount_in,
                amount_out=leg2.amount_out,
                legs=(leg1, leg2),
                fee_by_token={token_in: leg1.fee, mid: leg2.fee},
                price_impact_bps=impact * 10_000,
            )
        )
    return routes, failures


# --------------------------------------------------------------------------- choice


def find_best_route(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float = 0.0,
    *,
    allow_split: bool = False,
    allow_two_hop: bool = True,
    intermediates: Iterable[str] = ("SOL", "USDC"),
) -> Route:
    """The route with the largest output among the allowed kinds.

    On equal output the simpler route wins (direct before two-hop). Raises
    :class:`NoRoute` when nothing connects the pair, otherwise
    :class:`InsufficientLiquidity` when nothing can fill the order.
    """
    _check_order(token_in, token_out, amount_in)
    pools = list(pools)
    candidates: list[Route] = []
    failures: list[InsufficientLiquidity] = []
    if any(p.serves(token_in, token_out) for p in pools):
        try:
            finder = best_split if allow_split else best_single
            candidates.append(finder(pools, token_in, token_out, amount_in, now))
        except InsufficientLiquidity as exc:
            failures.append(exc)
    if allow_two_hop:
        try:
            candidates.append(two_hop(pools, token_in, token_out, amount_in, now, via=tuple(intermediates)))
        except NoRoute:
            pass
        except InsufficientLiquidity as exc:
            failures.append(exc)
    best: Route | None = None
    for route in candidates:
        if best is None or route.amount_out > best.amount_out:
            best = route
    if best is None:
        _raise_failures(failures, f"no route {token_in} -> {token_out}")
    assert best is not None
    return best


__all__ = [
    "NoRoute",
    "QuoteFailure",
    "Route",
    "RouteKind",
    "RouteLeg",
    "all_quotes",
    "best_single",
    "best_split",
    "find_best_route",
    "two_hop",
]
