"""Executing a plan's legs against the pools: one swap, or an atomic multi-pool route.

A single-pool plan is one idempotent swap. A split or two-hop plan holds
every pool it touches (in pool-id order, so two orders never wait on each
other in a cycle), re-checks the whole route on the held states against the
order's minimum out, and only then swaps each leg at exactly the amount just
checked: all legs land or none, like one Solana transaction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.pools import restore_pool
from sim.pools.base import Pool, SimError

from engine.plans import ExecutionPlan, Fill, HeldPool, OrderFailure, Rejection, SwapOrder
from engine.ports import Clock, TradeLedger, VenueUnavailable, Venues


@dataclass(frozen=True, slots=True)
class Timing:
    """How long things may take (seconds); the execution delay is the simulated landing time."""

    tx_expiry_s: float = 20.0
    pool_timeout_s: float = 1.0
    execution_min_s: float = 0.0
    execution_max_s: float = 0.0
    router_timeout_s: float = 5.0  # the router waits pool_timeout_s for every pool, in parallel


@dataclass(frozen=True, slots=True)
class _LegPlan:
    index: int
    pool_id: str
    token_in: str
    amount_in: int
    amount_out: int
    recorded: Fill | None  # filled by an earlier run of this order


class LegExecutor:
    def __init__(self, venues: Venues, trades: TradeLedger, clock: Clock, timing: Timing, rng: random.Random):
        self._venues = venues
        self._trades = trades
        self._clock = clock
        self._timing = timing
        self._rng = rng

    async def execute(self, order_id: str, plan: ExecutionPlan) -> list[Fill]:
        if len(plan.route.legs) == 1:
            return [await self._swap_single(order_id, plan)]
        return await self._execute_atomic(order_id, plan)

    async def _swap_single(self, order_id: str, plan: ExecutionPlan) -> Fill:
        leg = plan.route.legs[0]
        assert plan.expires_at is not None
        order = SwapOrder(order_id, 0, leg.token_in, leg.amount_in, plan.min_out, plan.expires_at, plan.signature)
        wait = max(0.0, plan.expires_at - self._clock.time()) + self._timing.pool_timeout_s
        try:
            result = await self._venues.swap(leg.pool_id, order, timeout=wait)
        except VenueUnavailable as exc:
            # The pool may or may not have filled before it went away: the ledger knows.
            recorded = await self._recorded_fill(order_id, 0)
            if recorded is None:
                raise OrderFailure("POOL_UNAVAILABLE", f"{leg.pool_id}: {exc}", True) from exc
            return recorded
        if isinstance(result, Rejection):
            raise OrderFailure.of(result)
        return result

    async def _execute_atomic(self, order_id: str, plan: ExecutionPlan) -> list[Fill]:
        timing = self._timing
        if timing.execution_max_s > 0:
            await self._clock.sleep(self._rng.uniform(timing.execution_min_s, timing.execution_max_s))
        pool_ids = sorted(set(plan.pool_ids))
        wait = timing.pool_timeout_s * 4
        asked: list[str] = []
        try:
            states: dict[str, tuple[Pool, float]] = {}
            for pool_id in pool_ids:
                asked.append(pool_id)
                states[pool_id] = await self._hold(pool_id, order_id, lease_s=wait + 5.0, wait=wait)
            legs = await self._plan_legs(order_id, plan, states)
            return await self._swap_held(order_id, plan, legs)
        finally:
            # Every pool asked, not only those that answered in time: a hold that
            # landed after we stopped waiting is ours too (release is a no-op else).
            for pool_id in asked:
                try:
                    await self._venues.release(pool_id, order_id, timeout=wait)
                except VenueUnavailable:
                    pass  # it went away, and its hold with it

    async def _hold(self, pool_id: str, order_id: str, *, lease_s: float, wait: float) -> tuple[Pool, float]:
        try:
            seen = await self._venues.hold(
                pool_id, order_id, lease_s=lease_s, give_up_at=self._clock.time() + wait, timeout=wait
            )
        except VenueUnavailable as exc:
            raise OrderFailure("POOL_UNAVAILABLE", f"could not hold the route's pools: {exc}"[:200], True) from exc
        if isinstance(seen, Rejection):
            raise OrderFailure("POOL_UNAVAILABLE", f"{pool_id}: {seen.message}", True)
        assert isinstance(seen, HeldPool)
        return restore_pool(seen.snapshot), seen.now

    async def _plan_legs(
        self, order_id: str, plan: ExecutionPlan, states: dict[str, tuple[Pool, float]]
    ) -> list[_LegPlan]:
        """Exact amounts of each leg on the held states; SLIPPAGE_EXCEEDED if short."""
        legs: list[_LegPlan] = []
        chained = plan.route.kind == "two_hop"
        amount = plan.route.legs[0].amount_in
        total_out = 0
        for index, leg in enumerate(plan.route.legs):
            amount_in = amount if chained else leg.amount_in
            recorded = await self._recorded_fill(order_id, index)  # a resumed route
            if recorded is not None:
                amount_out = recorded.amount_out
            else:
                pool, now = states[leg.pool_id]
                try:
                    amount_out = pool.swap_exact_in(leg.token_in, amount_in, 0, now).amount_out
                except SimError as exc:
                    raise OrderFailure(exc.code, str(exc), exc.transient) from exc
            legs.append(_LegPlan(index, leg.pool_id, leg.token_in, amount_in, amount_out, recorded))
            amount = amount_out
            total_out = amount_out if chained else total_out + amount_out
        if total_out < plan.min_out:
            raise OrderFailure(
                "SLIPPAGE_EXCEEDED",
                f"slippage exceeded: the route would pay {total_out}, minimum was {plan.min_out}",
                True,
            )
        return legs

    async def _swap_held(self, order_id: str, plan: ExecutionPlan, legs: list[_LegPlan]) -> list[Fill]:
        assert plan.expires_at is not None
        fills: list[Fill] = []
        for leg in legs:
            if leg.recorded is not None:
                fills.append(leg.recorded)
                continue
            order = SwapOrder(order_id, leg.index, leg.token_in, leg.amount_in, leg.amount_out,
                              plan.expires_at, plan.signature, held=True)  # fmt: skip
            try:
                result = await self._venues.swap(leg.pool_id, order, timeout=self._timing.pool_timeout_s * 4)
            except VenueUnavailable as exc:
                result = await self._recorded_fill(order_id, leg.index) or Rejection(
                    "POOL_UNAVAILABLE", f"{leg.pool_id}: {exc}", True
                )
            if isinstance(result, Rejection):
                code = "PARTIAL_FILL" if fills else result.code
                raise OrderFailure(code, result.message, result.transient and not fills)
            fills.append(result)
        return fills

    async def _recorded_fill(self, order_id: str, leg: int) -> Fill | None:
        record = await self._trades.trade_for_order(order_id, leg)
        return None if record is None else Fill.from_trade(record, existing=True)
