"""Orders that wait, through the lifecycle and the trigger desk, on in-memory ports (no Ray, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.cancelling import NotCancellable, cancel_order
from engine.errors import OrderNotFound
from engine.records import NewOrder, OrderRecord
from engine.waiting import TriggerDesk, stored_trigger
from sim.decision import RoutingPolicy, best_route_or_none
from sim.orders import OrderStatus
from sim.tokens import to_base_units
from tests.unit.lifecycle_fakes import TOKENS, World, make_world

S = OrderStatus


class LaneQueue:
    def __init__(self) -> None:
        self.normal: list[str] = []
        self.priority: list[str] = []

    async def enqueue(self, order_id: str, *, priority: bool = False) -> str:
        (self.priority if priority else self.normal).append(order_id)
        return order_id


def quote_fn(world: World, token_in: str, token_out: str):
    pools = list(world.venues.pools.values())
    return lambda amount: best_route_or_none(pools, token_in, token_out, amount, world.clock.now, RoutingPolicy())


def out_now(world: World, amount: int, token_in: str = "SOL", token_out: str = "USDC") -> int:
    route = quote_fn(world, token_in, token_out)(amount)
    assert route is not None
    return route.amount_out


def waiting(world: World, kind: str, *, threshold: int = 0, trailing: int | None = None, amount: str = "1",
            expires_in_s: float = 3600.0, slippage_bps: int = 500) -> OrderRecord:  # fmt: skip
    t_in, t_out = TOKENS["SOL"], TOKENS["USDC"]
    expires = datetime.fromtimestamp(world.clock.now + expires_in_s, UTC)
    return world.book.add(NewOrder(
        type=kind, token_in="SOL", token_out="USDC", mint_in=t_in.mint, mint_out=t_out.mint,
        amount_in=to_base_units(amount, t_in), amount_in_decimal=amount,
        slippage_bps=0 if kind == "limit" else slippage_bps,
        trigger=stored_trigger(kind, price=None, threshold_out=threshold, trailing_bps=trailing), expires_at=expires,
    ))  # fmt: skip


def desk_for(world: World) -> tuple[TriggerDesk, LaneQueue]:
    queue = LaneQueue()
    return TriggerDesk(world.book, world.feed, queue, TOKENS, world.clock), queue


async def armed(world: World, desk: TriggerDesk, order: OrderRecord) -> None:
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "open"
    assert await desk.arm_by_id(order.id)


async def test_a_waiting_order_is_armed_on_its_first_run_and_left_alone_while_it_waits():
    world = make_world()
    order = waiting(world, "limit", threshold=10**12)
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "open" and outcome.retry_in is None
    assert world.book.statuses(order.id) == ["pending", "open"]
    opened = world.book.events[order.id][-1]
    assert opened.details["waitingFor"]["type"] == "limit"
    assert opened.details["waitingFor"]["minAmountOut"] == "1000000"  # 10**12 base units of USDC
    assert world.lifecycle._ports.triggers.armed == [order.id]  # type: ignore[attr-defined]
    # A redelivery of an armed order changes nothing.
    assert (await world.lifecycle.run(order.id)).status == "open"
    assert world.book.statuses(order.id) == ["pending", "open"]


async def test_an_order_that_expired_before_it_was_armed_ends_expired():
    world = make_world()
    order = waiting(world, "stop_loss", threshold=1, expires_in_s=5)
    world.clock.now += 10
    assert (await world.lifecycle.run(order.id)).status == "expired"
    assert world.book.statuses(order.id) == ["pending", "expired"]


async def test_a_limit_fires_when_the_route_pays_it_and_executes_with_exactly_its_limit_as_minimum_out():
    world = make_world()
    amount = to_base_units("1", TOKENS["SOL"])
    now = out_now(world, amount)
    paid = waiting(world, "limit", threshold=now - 10)
    unpaid = waiting(world, "limit", threshold=now + 10_000_000)
    desk, queue = desk_for(world)
    await armed(world, desk, paid)
    await armed(world, desk, unpaid)
    fired = await desk.prices_moved([("SOL", "USDC", quote_fn(world, "SOL", "USDC"))])
    assert fired == [paid.id]
    assert queue.normal == [paid.id] and queue.priority == []
    triggered = world.book.events[paid.id][-1]
    assert triggered.status == S.TRIGGERED
    assert triggered.details["poolId"] and triggered.details["amountOutSeen"]
    assert world.book.orders[unpaid.id].status == S.OPEN
    assert (await world.lifecycle.run(paid.id)).status == "confirmed"
    building = next(e for e in world.book.events[paid.id] if e.status == S.BUILDING)
    assert building.details["minOut"] == format((now - 10) / 10**6, "f").rstrip("0").rstrip(".")
    assert world.book.orders[paid.id].amount_out >= now - 10


async def test_a_limit_whose_price_moved_back_before_it_ran_is_armed_again_not_failed():
    world = make_world()
    amount = to_base_units("1", TOKENS["SOL"])
    order = waiting(world, "limit", threshold=out_now(world, amount) - 10)
    desk, _queue = desk_for(world)
    await armed(world, desk, order)
    assert await desk.prices_moved([("SOL", "USDC", quote_fn(world, "SOL", "USDC"))]) == [order.id]
    for pool in world.venues.pools.values():  # the market falls before the order runs
        if pool.serves("SOL", "USDC"):
            pool.swap_exact_in("SOL", to_base_units("50", TOKENS["SOL"]), 0, world.clock.now)
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "open"
    record = world.book.orders[order.id]
    assert record.status == S.OPEN and record.attempts == 0
    assert world.book.events[order.id][-1].details["rearmed"] is True
    assert world.lifecycle._ports.triggers.armed[-1] == order.id  # type: ignore[attr-defined]


async def test_a_stop_loss_fires_into_the_priority_lane_and_runs_as_a_market_order():
    world = make_world()
    amount = to_base_units("1", TOKENS["SOL"])
    order = waiting(world, "stop_loss", threshold=out_now(world, amount) + 1)  # already at or below
    desk, queue = desk_for(world)
    await armed(world, desk, order)
    assert await desk.prices_moved([("SOL", "USDC", quote_fn(world, "SOL", "USDC"))]) == [order.id]
    assert queue.priority == [order.id] and queue.normal == []
    assert (await world.lifecycle.run(order.id)).status == "confirmed"
    assert world.book.statuses(order.id) == ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"]
    building = next(e for e in world.book.events[order.id] if e.status == S.BUILDING)
    assert building.details["slippageBps"] == 500


async def test_an_order_fires_at_most_once_whatever_is_redelivered():
    world = make_world()
    amount = to_base_units("1", TOKENS["SOL"])
    order = waiting(world, "take_profit", threshold=out_now(world, amount) - 10)
    desk, queue = desk_for(world)
    await armed(world, desk, order)
    quote = quote_fn(world, "SOL", "USDC")
    assert await desk.prices_moved([("SOL", "USDC", quote)]) == [order.id]
    # The same order armed again from a stale read, and the same event again: the store says triggered.
    desk.arm(world.book.orders[order.id].__class__(**{**_fields(world.book.orders[order.id]), "status": S.OPEN}))
    assert await desk.prices_moved([("SOL", "USDC", quote)]) == []
    assert desk.figures.stale == 1
    assert world.book.statuses(order.id).count("triggered") == 1 and queue.normal == [order.id]


def _fields(record: OrderRecord) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}


async def test_cancel_takes_a_waiting_order_out_and_a_later_firing_does_nothing():
    world = make_world()
    amount = to_base_units("1", TOKENS["SOL"])
    order = waiting(world, "limit", threshold=out_now(world, amount) - 10)
    desk, queue = desk_for(world)
    await armed(world, desk, order)
    cancelled, changed = await cancel_order(world.book, world.feed, order.id)
    assert changed and cancelled.status == S.CANCELLED
    again, changed_again = await cancel_order(world.book, world.feed, order.id)
    assert again.status == S.CANCELLED and not changed_again
    # The book was not told (its disarm call lost): the store's compare-and-set still wins.
    assert await desk.prices_moved([("SOL", "USDC", quote_fn(world, "SOL", "USDC"))]) == []
    assert queue.normal == [] and world.book.statuses(order.id)[-1] == "cancelled"


async def test_only_an_order_that_waits_and_has_not_started_routing_can_be_cancelled():
    world = make_world()
    market = world.order("SOL", "USDC", "1")
    with pytest.raises(NotCancellable, match="market order"):
        await cancel_order(world.book, world.feed, market.id)
    order = waiting(world, "stop_loss", threshold=out_now(world, to_base_units("1", TOKENS["SOL"])) + 1)
    desk, _queue = desk_for(world)
    await armed(world, desk, order)
    await desk.prices_moved([("SOL", "USDC", quote_fn(world, "SOL", "USDC"))])
    assert (await world.lifecycle.run(order.id)).status == "confirmed"
    with pytest.raises(NotCancellable, match="confirmed"):
        await cancel_order(world.book, world.feed, order.id)
    with pytest.raises(OrderNotFound):
        await cancel_order(world.book, world.feed, "00000000-0000-4000-8000-000000000000")
    pending = waiting(world, "limit", threshold=10**15)  # accepted, not armed yet: cancellable
    assert (await cancel_order(world.book, world.feed, pending.id))[0].status == S.CANCELLED
    assert (await world.lifecycle.run(pending.id)).status == "cancelled"  # its queued first run does nothing


async def test_orders_expire_when_due_and_not_before():
    world = make_world()
    early = waiting(world, "limit", threshold=10**15, expires_in_s=60)
    late = waiting(world, "limit", threshold=10**15, expires_in_s=600)
    desk, _queue = desk_for(world)
    await armed(world, desk, early)
    await armed(world, desk, late)
    assert desk.next_expiry() == pytest.approx(early.expires_at.timestamp())
    assert await desk.expire_due() == []
    world.clock.now = early.expires_at.timestamp() + 0.01
    assert await desk.expire_due() == [early.id]
    assert world.book.orders[early.id].status == S.EXPIRED and world.book.orders[late.id].status == S.OPEN
    assert [e.status for e in world.feed.published if e.order_id == early.id][-1] == S.EXPIRED


async def test_a_trailing_stop_keeps_its_high_in_the_store_and_a_rebuilt_desk_trails_from_it():
    world = make_world()
    order = waiting(world, "trailing_stop", trailing=500)
    desk, _queue = desk_for(world)
    await armed(world, desk, order)
    quote = quote_fn(world, "SOL", "USDC")
    assert await desk.prices_moved([("SOL", "USDC", quote)]) == []
    assert await desk.save_highs() == 1
    high = int(world.book.orders[order.id].trigger["highOut"])
    assert high == out_now(world, order.amount_in)
    rebuilt, _ = desk_for(world)
    assert await rebuilt.rebuild() == 1
    assert rebuilt.book.get(order.id).high_out == high


async def test_reconciling_arms_only_the_open_orders_the_book_missed():
    world = make_world()
    desk, _queue = desk_for(world)
    heard = waiting(world, "limit", threshold=10**15)
    missed = waiting(world, "stop_loss", threshold=1)
    await armed(world, desk, heard)
    assert (await world.lifecycle.run(missed.id)).status == "open"  # its arm call never reached this desk
    assert missed.id not in desk.book
    assert await desk.reconcile() == 1
    assert missed.id in desk.book and await desk.reconcile() == 0
