"""The searcher's pool math: a sandwich plan for a visible swap, from copies of the pools (``SandwichPort``).

The plan is the largest front-run that still leaves the victim its minimum
out (found by bisection on exact quotes of a scratch copy), then the back-run
that sells what the front-run bought, after the victim. Its profit is valued
in lamports (directly when the victim sells SOL, else at the pool's SOL
price); a pair without SOL is not worth the searcher's while here. Only
single-pool swaps are planned: a multi-leg route is harder to sandwich and is
left alone. Nothing here changes a pool it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sim.chain import Transaction
from sim.chain_swaps import SwapIntent, SwapLeg
from sim.mev import SandwichPlan
from sim.pools import restore_pool
from sim.pools.base import Pool, SimError

SOL = "SOL"
MIN_FRONT_RUN = 1_000  # base units: below this a plan is noise
MAX_STEPS = 48  # bisection steps


def _after(pool: Pool, now: float, victim: SwapLeg, min_out: int, front: int) -> tuple[int, int] | None:
    """(bought by the front-run, searcher's gain in the victim's input token); None: the victim would fail."""
    scratch = restore_pool(pool.snapshot())
    other = scratch.other(victim.token_in).symbol
    try:
        bought = scratch.swap_exact_in(victim.token_in, front, 0, now).amount_out if front else 0
    except SimError:
        return None
    try:
        scratch.swap_exact_in(victim.token_in, victim.amount_in, min_out, now)
    except SimError:
        return None
    try:
        back = scratch.swap_exact_in(other, bought, 0, now).amount_out if bought else 0
    except SimError:
        back = 0
    return bought, back - front


def _in_lamports(pool: Pool, token: str, amount: int) -> int | None:
    if token == SOL:
        return amount
    if SOL not in (pool.token_x.symbol, pool.token_y.symbol):
        return None
    reserves = pool.reserves()
    return amount * reserves[SOL] // max(reserves[token], 1)  # at the pool's average price: good enough to rank


def plan_sandwich(pools: Mapping[str, Pool], now: Mapping[str, float], tx: Transaction) -> SandwichPlan | None:
    intent = tx.intent
    if not isinstance(intent, SwapIntent) or intent.order_id is None or len(intent.legs) != 1:
        return None
    victim = intent.legs[0]
    pool = pools.get(victim.pool_id)
    if pool is None:
        return None
    clock = now.get(victim.pool_id, 0.0)
    lo, hi = 0, min(pool.reserves()[victim.token_in] // 4, victim.amount_in * 100)
    if _after(pool, clock, victim, intent.min_out, 0) is None:
        return None  # the victim fails anyway
    for _ in range(MAX_STEPS):
        if hi - lo <= max(1, hi // 10_000):
            break
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _after(pool, clock, victim, intent.min_out, mid) is not None else (lo, mid)
    if lo < MIN_FRONT_RUN:
        return None
    found = _after(pool, clock, victim, intent.min_out, lo)
    if found is None:
        return None
    bought, gain = found
    profit = _in_lamports(pool, victim.token_in, gain)
    if profit is None or profit <= 0:
        return None
    other = pool.other(victim.token_in).symbol
    front = SwapIntent(None, (SwapLeg(victim.pool_id, victim.token_in, lo),))
    back = SwapIntent(None, (SwapLeg(victim.pool_id, other, bought),))
    return SandwichPlan(front, back, profit)


def sandwich_port(pools: Callable[[], Mapping[str, Pool]], now: Callable[[], Mapping[str, float]]):
    """A ``SandwichPort`` over whatever pools the current block executes on (they move as it packs)."""

    def port(tx: Transaction) -> SandwichPlan | None:
        return plan_sandwich(pools(), now(), tx)

    return port


__all__ = ["plan_sandwich", "sandwich_port"]
