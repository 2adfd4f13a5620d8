"""The trigger book's decision alone, in process (no Ray, no I/O): price events per second it absorbs.

Part of ``loadtest.bench_triggers`` (the actor adds its push and coalescing to what is measured here):
the market config's pools, a ``sim.triggers.TriggerBook`` holding the benchmark's armed orders, and
``on_prices`` after a small swap on one pool (alternately down and up; nothing fires).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.config import build_pools, load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.decision import RoutingPolicy, best_route_or_none, route_pool_ids
from sim.pools import Pool
from sim.triggers import TriggerBook


def _quote_fn(pools: Sequence[Pool], pair: tuple[str, str], now: float) -> Callable[[int], Any]:
    policy = RoutingPolicy()
    return lambda amount: best_route_or_none(pools, pair[0], pair[1], amount, now, policy)


def _nudge(pool: Pool, pair: tuple[str, str], nudge_in: int, step: int, back: int) -> int:
    """Even steps sell a little of the pair's first token (price down), odd ones sell its output back (up);
    returns what to sell back."""
    if step % 2 == 0:
        return pool.swap_exact_in(pair[0], nudge_in, 0, time.time()).amount_out
    pool.swap_exact_in(pair[1], back, 0, time.time())
    return 0


class BookRun:
    """One TriggerBook over its own copy of the market config's pools, and its counters."""

    def __init__(self, orders: Sequence[Any], pair: tuple[str, str], moved_pool: str, nudge_in: int,
                 lifetime_s: float) -> None:  # fmt: skip
        pools = build_pools(load_market_config(DEFAULT_MARKET_CONFIG))
        tokens = {p.pool_id: (p.token_x.symbol, p.token_y.symbol) for p in pools}
        wanted = set(route_pool_ids(tokens, pair[0], pair[1], RoutingPolicy()))
        self.tokens, self.nudge_in = pair, nudge_in
        self.pair = [p for p in pools if p.pool_id in wanted]
        self.moved = next(p for p in self.pair if p.pool_id == moved_pool)
        self.book = TriggerBook()
        expires_at = time.time() + lifetime_s
        for order in orders:
            self.book.arm(order.book_trigger(expires_at))
        self.armed = len(self.book)
        self.events = self.quotes = self.fired = self._back = 0
        self.busy = 0.0

    def run(self, seconds: float, *, counted: bool = True) -> None:
        """Price events for ``seconds``; only ``on_prices`` is timed (not the swap between events)."""
        deadline = time.perf_counter() + seconds
        step = 0
        while time.perf_counter() < deadline:
            self._back = _nudge(self.moved, self.tokens, self.nudge_in, step, self._back)
            step += 1
            quote = _quote_fn(self.pair, self.tokens, time.time())
            started = time.perf_counter()
            firings = self.book.on_prices(*self.tokens, quote)
            busy = time.perf_counter() - started
            self.fired += len(firings)
            if counted:
                self.events, self.quotes, self.busy = self.events + 1, self.quotes + self.book.last_quotes, self.busy + busy
        if step % 2:  # sell the last nudge back: every run leaves the pool where it found it (but its fees)
            self._back = _nudge(self.moved, self.tokens, self.nudge_in, step, self._back)

    def figures(self) -> dict[str, Any]:
        return {"armed": self.armed, "events": self.events, "eventsPerS": self.events / self.busy,
                "meanEventUs": self.busy / self.events * 1e6, "meanQuotesPerEvent": self.quotes / self.events,
                "fired": self.fired, "highsMoved": len(self.book.take_moved_highs())}  # fmt: skip


def book_throughput(orders: Sequence[Any], sizes: Sequence[int], seconds: float, *, pair: tuple[str, str],
                    moved_pool: str, nudge_in: int, lifetime_s: float, rounds: int = 3) -> list[dict[str, Any]]:  # fmt: skip
    """Events per second of each book size; the sizes take turns (``rounds`` each, after a warm-up),
    so that whatever else the machine runs weighs on all of them alike."""
    runs = [BookRun(orders[:n], pair, moved_pool, nudge_in, lifetime_s) for n in sizes]
    for run in runs:
        run.run(min(0.5, seconds / 4), counted=False)
    for _ in range(rounds):
        for run in runs:
            run.run(seconds / rounds)
    return [run.figures() for run in runs]
