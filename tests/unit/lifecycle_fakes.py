"""In-memory fakes of the lifecycle's ports (unit tests only).

The venues are real ``sim`` pools held in memory, so swaps, slippage and
fills follow the real pool math; the router runs the real routing decision
on the same pools. Faults are switches on the fakes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.config import build_pools, load_market_config
from engine.errors import StaleTransition
from engine.lifecycle import LifecycleConfig, LifecyclePorts, OrderLifecycle
from engine.execution import Timing
from engine.plans import Fill, HeldPool, Rejection, SwapOrder
from engine.ports import VenueUnavailable
from engine.records import NewOrder, OrderRecord, StatusEvent, StatusStep, TradeRecord
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.decision import RouteDecision, RoutingPolicy, Skipped, decide_route
from sim.orders import OrderStatus, RetryPolicy, can_transition
from sim.pools import Pool
from sim.pools.base import SimError
from sim.tokens import TokenRegistry, to_base_units

MARKET = load_market_config(DEFAULT_MARKET_CONFIG)
TOKENS: TokenRegistry = MARKET.registry()


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would


class Crashed(BaseException):
    """The run's process died (a BaseException: nothing in the lifecycle catches it)."""


class FakeOrderBook:
    """Orders and history with the store's compare-and-set on (status, seq)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.orders: dict[str, OrderRecord] = {}
        self.events: dict[str, list[StatusEvent]] = {}
        self.interfere: Callable[[str, OrderStatus], None] | None = None  # runs before each commit
        self.crash_after: OrderStatus | None = None  # commit up to this status, then raise Crashed

    def _stamp(self) -> datetime:
        self.clock.now += 0.001
        return datetime.fromtimestamp(self.clock.now, UTC)

    def add(self, order: NewOrder) -> OrderRecord:
        now = self._stamp()
        record = OrderRecord(
            id=str(uuid.uuid4()), type=order.type, token_in=order.token_in, token_out=order.token_out,
            mint_in=order.mint_in, mint_out=order.mint_out, amount_in=order.amount_in,
            amount_in_decimal=order.amount_in_decimal, slippage_bps=order.slippage_bps,
            status=OrderStatus.PENDING, seq=1, attempts=1, created_at=now, updated_at=now,
            trigger=order.trigger, expires_at=order.expires_at,
        )  # fmt: skip
        self.orders[record.id] = record
        self.events[record.id] = [StatusEvent(record.id, 1, OrderStatus.PENDING, 1, {"queued": True}, now)]
        return record

    def put(self, record: OrderRecord) -> None:
        self.orders[record.id] = record

    async def get_order(self, order_id: str) -> OrderRecord | None:
        return self.orders.get(order_id)

    async def transition(self, order_id: str, to: OrderStatus, *, attempt: int, details: dict[str, Any],
                         fields: Mapping[str, Any] | None = None, expected_seq: int | None = None,
                         expected: OrderStatus | None = None) -> StatusEvent:  # fmt: skip
        step = StatusStep(to, details, fields)
        (event,) = await self.advance(order_id, [step], attempt=attempt, expected_seq=expected_seq, expected=expected)
        return event

    async def advance(self, order_id: str, steps: Sequence[StatusStep], *, attempt: int,
                      expected_seq: int | None = None, expected: OrderStatus | None = None) -> list[StatusEvent]:  # fmt: skip
        """All the steps or none, as the store's one statement."""
        for step in steps:  # a writer that gets there before this commit (a hook may remove itself)
            if self.interfere is not None:
                self.interfere(order_id, step.to)
        current = self.orders[order_id]
        chain = [current.status, *(step.to for step in steps)]
        if (not all(can_transition(a, b) for a, b in zip(chain, chain[1:]))
                or (expected_seq is not None and current.seq != expected_seq)
                or (expected is not None and current.status != expected)):  # fmt: skip
            raise StaleTransition(order_id, current=current.status, current_seq=current.seq, target=steps[0].to,
                                  allowed=(), expected_seq=expected_seq)  # fmt: skip
        stop = self.crash_after
        if stop is not None and stop in chain[1:]:
            steps = steps[: chain.index(stop)]  # committed up to it, then the run's process died
        committed = []
        for step in steps:
            now = self._stamp()
            current = replace(current, status=step.to, seq=current.seq + 1, attempts=attempt, updated_at=now,
                              **dict(step.fields or {}))  # fmt: skip
            committed.append(StatusEvent(order_id, current.seq, step.to, attempt, dict(step.details), now))
        self.orders[order_id] = current
        self.events[order_id].extend(committed)
        if stop is not None and current.status == stop:
            raise Crashed(f"stopped after committing {stop}")
        return committed

    async def open_orders(self, *, after: str | None = None, batch: int = 1000) -> list[OrderRecord]:
        return [o for o in self.orders.values() if o.status == OrderStatus.OPEN]

    async def open_order_ids(self) -> set[str]:
        return {o.id for o in self.orders.values() if o.status == OrderStatus.OPEN}

    async def record_trailing_highs(self, highs: Mapping[str, Mapping[str, Any]]) -> int:
        moved = 0
        for order_id, high in highs.items():
            order = self.orders[order_id]
            if order.status == OrderStatus.OPEN:
                self.orders[order_id] = replace(order, trigger={**(order.trigger or {}), **high})
                moved += 1
        return moved

    def statuses(self, order_id: str) -> list[str]:
        return [str(e.status) for e in self.events[order_id]]


class FakeLedger:
    def __init__(self) -> None:
        self.trades: dict[tuple[str, int], TradeRecord] = {}

    async def trade_for_order(self, order_id: str, leg: int = 0) -> TradeRecord | None:
        return self.trades.get((order_id, leg))

    def record(self, pool: Pool, order: SwapOrder, quote: Any, now: float) -> TradeRecord:
        record = TradeRecord(
            pool_id=pool.pool_id, seq=len(self.trades) + 1, kind="order", order_id=order.order_id,
            leg=order.leg, token_in=order.token_in, amount_in=quote.amount_in, token_out=quote.token_out,
            amount_out=quote.amount_out, fee=quote.fee, sim_time=now, state_after=pool.snapshot(),
            created_at=datetime.fromtimestamp(now, UTC),
            details={"priceImpactBps": quote.price_impact_bps, "txSignature": order.signature},
        )  # fmt: skip
        self.trades[(order.order_id, order.leg)] = record
        return record


class FakeFeed:
    def __init__(self) -> None:
        self.published: list[StatusEvent] = []
        self.down = False

    async def publish(self, event: StatusEvent) -> int:
        if self.down:
            raise ConnectionError("redis is down")
        self.published.append(event)
        return 1


class FakeVenues:
    """Real pools in memory; switches for the faults a pool actor can show."""

    def __init__(self, pools: dict[str, Pool], ledger: FakeLedger, clock: FakeClock) -> None:
        self.pools, self.ledger, self.clock = pools, ledger, clock
        self.calls: list[tuple[str, str]] = []
        self.unavailable: set[str] = set()
        self.dies_after_fill: set[str] = set()
        self.before_swap: Callable[[Pool], None] | None = None
        self.held: dict[str, str] = {}
        self.reject_held: set[str] = set()

    async def swap(self, pool_id: str, order: SwapOrder, *, timeout: float) -> Fill | Rejection:
        self.calls.append(("swap", pool_id))
        if pool_id in self.unavailable:
            raise VenueUnavailable("RayActorError")
        existing = await self.ledger.trade_for_order(order.order_id, order.leg)
        if existing is not None:
            return Fill.from_trade(existing, existing=True)
        if order.held and (self.held.get(pool_id) != order.order_id or pool_id in self.reject_held):
            return Rejection("LEASE_EXPIRED", "the pool was not held for this order any more", True)
        pool = self.pools[pool_id]
        if self.before_swap is not None and not order.held:
            self.before_swap(pool)  # what happens while the transaction is in flight
            if pool_id in self.unavailable:
                raise VenueUnavailable("died before the swap")
        if self.clock.time() > order.expires_at:
            return Rejection("TRANSACTION_EXPIRED", "transaction expired before it landed", True)
        try:
            quote = pool.swap_exact_in(order.token_in, order.amount_in, order.min_out, self.clock.time())
        except SimError as exc:
            return Rejection(exc.code, str(exc), exc.transient)
        record = self.ledger.record(pool, order, quote, self.clock.time())
        if pool_id in self.dies_after_fill:
            raise VenueUnavailable("died after the fill was recorded")
        return Fill.from_trade(record, existing=False)

    async def hold(self, pool_id: str, order_id: str, *, lease_s: float, give_up_at: float,
                   timeout: float) -> HeldPool | Rejection:  # fmt: skip
        self.calls.append(("hold", pool_id))
        if pool_id in self.unavailable:
            raise VenueUnavailable("no answer")
        self.held[pool_id] = order_id
        return HeldPool(self.pools[pool_id].snapshot(), self.clock.time())

    async def release(self, pool_id: str, order_id: str, *, timeout: float) -> None:
        self.calls.append(("release", pool_id))
        if self.held.get(pool_id) == order_id:
            del self.held[pool_id]


class FakeRouter:
    """The real routing decision on the venues' pools, or a scripted answer."""

    def __init__(self, venues: FakeVenues, policy: RoutingPolicy) -> None:
        self.venues, self.policy = venues, policy
        self.script: list[RouteDecision | Exception] = []
        self.calls = 0

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        self.calls += 1
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        reachable = [p for pid, p in self.venues.pools.items() if pid not in self.venues.unavailable]
        skipped = [Skipped(pid, "POOL_UNAVAILABLE", "dead") for pid in self.venues.unavailable]
        return decide_route(reachable, token_in, token_out, amount_in, self.venues.clock.time(), self.policy, skipped)


@dataclass
class FakeMetrics:
    stages: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    finals: list[tuple[str, str]] = field(default_factory=list)

    def stage(self, previous: OrderStatus, to: OrderStatus, seconds: float) -> None:
        self.stages.append(f"{previous}->{to}")

    def retried(self, code: str) -> None:
        self.retries.append(code)

    def finished(self, status: OrderStatus, dex: str, seconds: float) -> None:
        self.finals.append((str(status), dex))


@dataclass
class World:
    """A lifecycle on fakes, with a handle on each of them."""

    clock: FakeClock
    book: FakeOrderBook
    ledger: FakeLedger
    feed: FakeFeed
    venues: FakeVenues
    router: FakeRouter
    metrics: FakeMetrics
    lifecycle: OrderLifecycle

    def order(self, token_in: str, token_out: str, amount: str, slippage_bps: int = 100) -> OrderRecord:
        t_in, t_out = TOKENS[token_in], TOKENS[token_out]
        return self.book.add(NewOrder(
            token_in=t_in.symbol, token_out=t_out.symbol, mint_in=t_in.mint, mint_out=t_out.mint,
            amount_in=to_base_units(amount, t_in), amount_in_decimal=amount, slippage_bps=slippage_bps,
        ))  # fmt: skip

    def pool(self, pool_id: str) -> Pool:
        return self.venues.pools[pool_id]


class FakeTriggers:
    """The trigger book as the lifecycle sees it: it records what it was asked to arm."""

    def __init__(self) -> None:
        self.armed: list[str] = []

    async def arm(self, order_id: str) -> None:
        self.armed.append(order_id)


def make_world(*, pool_ids: tuple[str, ...] | None = None, policy: RoutingPolicy | None = None,
               retry: RetryPolicy | None = None, timing: Timing | None = None) -> World:  # fmt: skip
    clock = FakeClock()
    pools = {p.pool_id: p for p in build_pools(MARKET) if pool_ids is None or p.pool_id in pool_ids}
    book, ledger, feed, metrics = FakeOrderBook(clock), FakeLedger(), FakeFeed(), FakeMetrics()
    venues = FakeVenues(pools, ledger, clock)
    router = FakeRouter(venues, policy or RoutingPolicy())
    triggers = FakeTriggers()
    ports = LifecyclePorts(orders=book, trades=ledger, events=feed, router=router, venues=venues,
                           clock=clock, metrics=metrics, triggers=triggers)  # fmt: skip
    config = LifecycleConfig(retry=retry or RetryPolicy(), timing=timing or Timing())
    lifecycle = OrderLifecycle(ports, TOKENS, config)
    return World(clock, book, ledger, feed, venues, router, metrics, lifecycle)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()
