"""One order split across the pools of its pair at equal marginal rates.

Each pool gives its output curve (:meth:`~sim.pools.base.Pool.output_curve`):
the common rate is solved in closed form when every curve is constant
product, by bisection otherwise; the shares are then polished by exact
exchanges and every leg re-quoted with the pool's integer math.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from sim.pools.base import InsufficientLiquidity, Pool, SwapQuote
from sim.pools.curves import SAMPLE_SEGMENTS, ConstantProductCurve, OutputCurve
from sim.routing.routes import NoRoute, Route, RouteLeg, best_single, check_order, direct_pools

_BISECTION_STEPS = 64
_FINEST_SHIFT = 20  # the split is polished down to amount_in / 2**20 base units


def _equal_marginal_allocation(curves: Sequence[OutputCurve], total: int) -> list[int]:
    """Integer shares (summing to ``total``) that equalise the marginal rates.

    Constant-product pools only: the rate is solved in closed form. Water
    filling with a_i = (sqrt(g_i x_i y_i / r) - x_i) / g_i over the pools
    whose first rate g_i*y_i/x_i exceeds r, and sum(a_i) = total, gives
        sqrt(1/r) = (total + sum(x_i/g_i)) / sum(sqrt(x_i y_i / g_i)).
    Otherwise the common rate is found by bisection (in log space).
    """
    cpmms = [c for c in curves if isinstance(c, ConstantProductCurve)]
    if len(cpmms) == len(curves):
        active: list[ConstantProductCurve] = []
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


def _gain(curve: OutputCurve, have: int, delta: int) -> float:
    """Exact change of output when a pool's share moves from have to have+delta."""
    before, after = curve.out(have), curve.out(have + delta)
    if before is None or after is None:
        return -math.inf
    return float(after - before)


def _fill_remainder(curves: Sequence[OutputCurve], alloc: list[int], remainder: int) -> None:
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


def _polish(curves: Sequence[OutputCurve], alloc: list[int], start: int, finest: int = 1) -> None:
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


def _single_is_optimal(curves: Sequence[OutputCurve], single: Route, total: int) -> bool:
    """True when the winner's last grid step still pays at least every other
    pool's first one: with concave outputs no split can then do better.

    Only trusted when that step's output is large enough (10^4 base units)
    for integer rounding not to blur the rate; small orders are solved in full.
    """
    winner = next(c for c in curves if c.pool.pool_id == single.legs[0].pool_id)
    step = max(1, total // SAMPLE_SEGMENTS)
    before = winner.out(total - step)
    if before is None or single.amount_out - before < 10_000:
        return False
    last_rate = (single.amount_out - before) / step
    return all(last_rate >= c.first_rate() for c in curves if c is not winner)


def _solve_shares(curves: Sequence[OutputCurve], amount_in: int) -> list[int]:
    """Integer shares at equal marginal rates, polished by exact exchanges."""
    alloc = _equal_marginal_allocation(curves, amount_in)
    # Below a millionth of the order an exchange is worth less than the
    # quotes it costs; small orders are polished to the unit.
    finest = max(1, amount_in >> _FINEST_SHIFT)
    if all(isinstance(c, ConstantProductCurve) for c in curves):
        start = 2 * finest  # the closed form is only off by rounding
    else:
        # Sampled curves can mislead the bisection where integer rounding is
        # coarse (small orders): exchanges from a quarter of the order down
        # see the real trend at every scale.
        start = max(1, amount_in >> 2)
    _polish(curves, alloc, start, finest)
    return alloc


def _leg_quotes(
    pools: Sequence[Pool], alloc: Sequence[int], token_in: str, now: float
) -> list[SwapQuote] | None:
    """Each share re-quoted exactly, largest first; None when a share buys nothing."""
    quotes = []
    for pool, share in zip(pools, alloc):
        if share <= 0:
            continue
        try:
            quote = pool.quote_exact_in(token_in, share, now)
        except InsufficientLiquidity:  # pragma: no cover - every share was quoted while solving
            return None
        if quote.amount_out <= 0:
            return None
        quotes.append(quote)
    return sorted(quotes, key=lambda q: -q.amount_in)


def _split_route(quotes: Sequence[SwapQuote], token_in: str, token_out: str, amount_in: int) -> Route:
    return Route(
        kind="split",
        token_in=token_in,
        token_out=token_out,
        amount_in=amount_in,
        amount_out=sum(q.amount_out for q in quotes),
        legs=tuple(RouteLeg.from_quote(q) for q in quotes),
        fee_by_token={token_in: sum(q.fee for q in quotes)},
        price_impact_bps=sum(q.price_impact_bps * q.amount_in for q in quotes) / amount_in,
    )


def best_split(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> Route:
    """The order split across the pair's pools at equal marginal rates.

    Every leg is re-quoted with the pool's exact math. When the split is not
    strictly better than the best single pool, that single-pool route is
    returned instead (kind ``"single"``). A split can also fill an order that
    no single pool can.
    """
    check_order(token_in, token_out, amount_in)
    candidates = direct_pools(pools, token_in, token_out)
    if not candidates:
        raise NoRoute(f"no pool trades {token_in} -> {token_out}")
    single: Route | None = None
    single_error: InsufficientLiquidity | None = None
    try:
        single = best_single(candidates, token_in, token_out, amount_in, now)
    except InsufficientLiquidity as exc:
        single_error = exc
    if len(candidates) < 2:
        return _fallback(single, single_error)
    curves = [p.output_curve(token_in, amount_in, now) for p in candidates]
    if single is not None and _single_is_optimal(curves, single, amount_in):
        return single
    try:
        alloc = _solve_shares(curves, amount_in)
    except InsufficientLiquidity:
        return _fallback(single, single_error)
    quotes = _leg_quotes(candidates, alloc, token_in, now)
    if quotes is None or len(quotes) < 2:
        return _fallback(single, single_error)
    split = _split_route(quotes, token_in, token_out, amount_in)
    if single is not None and split.amount_out <= single.amount_out:
        return single
    return split


def _fallback(single: Route | None, error: InsufficientLiquidity | None) -> Route:
    if single is not None:
        return single
    assert error is not None
    raise error
