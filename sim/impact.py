"""Sizing trades by the price move they cause."""

from __future__ import annotations

from sim.pools.base import InsufficientLiquidity, Pool


def amount_to_move_price(pool: Pool, token_in: str, move_bps: float, now: float = 0.0) -> int:
    """Smallest input (within 1 %) that moves the spot price of ``token_in`` down by ``move_bps``.

    Found by bisection on exact quotes, so it holds for any pool type. Tiny
    inputs that buy nothing do not count as a move; an input that drains the
    pool does. Returns 0 when ``move_bps`` is not positive.
    """
    if move_bps <= 0:
        return 0
    target = pool.spot_price(token_in) * (1 - move_bps / 10_000)
    first_ok: int | None = None

    def moved(amount: int) -> bool:
        nonlocal first_ok
        try:
            after = pool.quote_exact_in(token_in, amount, now).spot_price_after
        except InsufficientLiquidity:
            return first_ok is not None and amount > first_ok
        if first_ok is None or amount < first_ok:
            first_ok = amount
        return after <= target

    hi = 1
    while not moved(hi):
        hi *= 2
        if hi > 1 << 126:
            raise InsufficientLiquidity("the pool cannot move that far")
    lo = hi // 2
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        if moved(mid):
            hi = mid
        else:
            lo = mid
    return hi
