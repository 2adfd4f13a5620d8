"""The dispatcher on in-memory fakes of its ports: the queue, the start limiter, the store, the executors."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from engine.dispatch import CONSUMER, OrderDispatcher, RunnerLost
from engine.plans import RunOutcome
from engine.records import OldestOpenOrder
from engine.settings import DispatchSettings
from tests.unit.lifecycle_fakes import FakeClock


@dataclass
class FakeQueue:
    """A stream with one consumer group: entries waiting, delivered-unacked, and delayed retries."""

    waiting: list[tuple[str, str]] = field(default_factory=list)
    pending: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # msg -> (consumer, order, at)
    delayed: dict[str, float] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def ensure_group(self) -> None:
        return None

    async def enqueue(self, order_id: str) -> str:
        msg_id = f"{next(self._ids)}-0"
        self.waiting.append((msg_id, order_id))
        return msg_id

    async def read(self, consumer: str, count: int = 1, block_ms: int | None = None) -> list[tuple[str, str]]:
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        for msg_id, order_id in taken:
            self.pending[msg_id] = (consumer, order_id, self.clock.now)
        if not taken:
            await asyncio.sleep(0)
        return taken

    async def ack(self, msg_id: str) -> bool:
        self.acked.append(msg_id)
        return self.pending.pop(msg_id, None) is not None

    async def defer(self, msg_id: str, order_id: str, due_at: float) -> None:
        self.delayed[order_id] = due_at
        self.pending.pop(msg_id, None)

    async def next_due(self) -> float | None:
        return min(self.delayed.values(), default=None)

    async def promote_due(self, now: float) -> int:
        due = [o for o, at in self.delayed.items() if at <= now]
        for order_id in due:
            del self.delayed[order_id]
            await self.enqueue(order_id)
        return len(due)

    async def pending_for(self, consumer: str, *, batch: int = 100) -> list[tuple[str, str]]:
        return [(m, o) for m, (c, o, _) in self.pending.items() if c == consumer]

    async def claim_stale(self, consumer: str, min_idle_ms: int, *, count: int = 100) -> list[tuple[str, str]]:
        cutoff = self.clock.now - min_idle_ms / 1000
        return [(m, o) for m, (_, o, at) in self.pending.items() if at <= cutoff]

    async def queued_order_ids(self, *, batch: int = 1000) -> set[str]:
        return {o for _, o in self.waiting} | {o for _, o, _ in self.pending.values()} | set(self.delayed)

    async def depth(self) -> SimpleNamespace:
        return SimpleNamespace(waiting=len(self.waiting), pending=len(self.pending), delayed=len(self.delayed))


class FakeRunner:
    """Answers with scripted outcomes per order (else confirmed); records what ran at once."""

    running = 0
    most_at_once = 0

    def __init__(self, script: dict[str, list[RunOutcome | Exception]], gate: asyncio.Event, done: set[str]) -> None:
        self.script, self.gate, self.ran, self.done = script, gate, [], done

    async def run(self, order_id: str, started_at: float) -> RunOutcome:
        FakeRunner.running += 1
        FakeRunner.most_at_once = max(FakeRunner.most_at_once, FakeRunner.running)
        try:
            await self.gate.wait()
            self.ran.append(order_id)
            answers = self.script.get(order_id) or []
            answer = answers.pop(0) if answers else RunOutcome("confirmed")
            if isinstance(answer, Exception):
                raise answer
            if answer.retry_in is None:
                self.done.add(order_id)  # final: the store no longer lists it as unfinished
            return answer
        finally:
            FakeRunner.running -= 1


class FakeStarts:
    def __init__(self, refusals: int = 0) -> None:
        self.refusals, self.hits = refusals, 0

    async def hit(self, client_id: str) -> tuple[bool, float]:
        self.hits += 1
        if self.refusals:
            self.refusals -= 1
            return False, 0.25
        return True, 0.0


@dataclass
class FakeOrders:
    unfinished: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    async def unfinished_orders(self, older_than_s: float = 0, *, limit: int | None = None) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=order_id) for order_id in self.unfinished if order_id not in self.done]

    async def oldest_unfinished(self) -> OldestOpenOrder | None:
        left = [order_id for order_id in self.unfinished if order_id not in self.done]
        return OldestOpenOrder(left[0], "pending", 12.5, 3.0) if left else None


class FakeDepth:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.oldest: list[tuple[float, float]] = []

    def depth(self, *, waiting: int, delayed: int, running: int) -> None:
        self.seen.append((waiting, delayed, running))

    def oldest_open(self, age_s: float, idle_s: float) -> None:
        self.oldest.append((age_s, idle_s))


@dataclass
class Desk:
    dispatcher: OrderDispatcher
    queue: FakeQueue
    runners: list[FakeRunner]
    starts: FakeStarts
    orders: FakeOrders
    gate: asyncio.Event
    clock: FakeClock

    async def dispatch_all(self) -> None:
        while self.queue.waiting:
            await self.dispatcher.dispatch_once(block_ms=0)


def desk(runners: int = 2, *, script: dict | None = None, rate: int = 0, refusals: int = 0, open_gate: bool = True) -> Desk:
    clock = FakeClock()
    queue, starts, orders, gate = FakeQueue(clock=clock), FakeStarts(refusals), FakeOrders(), asyncio.Event()
    if open_gate:
        gate.set()
    shared = script or {}
    pool = [FakeRunner(shared, gate, orders.done) for _ in range(runners)]
    settings = DispatchSettings(executors=runners, rate_limit_per_minute=rate, sweep_interval_s=1.0)
    dispatcher = OrderDispatcher(pool, queue, starts, orders, settings, clock, FakeDepth())
    FakeRunner.running = FakeRunner.most_at_once = 0
    return Desk(dispatcher, queue, pool, starts, orders, gate, clock)


async def test_an_order_runs_and_its_delivery_is_acked_after() -> None:
    d = desk()
    msg = await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.queue.acked == [msg] and d.queue.pending == {}
    assert d.dispatcher.figures.started == 1 and d.dispatcher.figures.completed == 1


async def test_no_more_run_at_once_than_there_are_runners() -> None:
    d = desk(runners=3, open_gate=False)
    for i in range(8):
        await d.queue.enqueue(f"o{i}")
    dispatching = asyncio.ensure_future(d.dispatch_all())
    await asyncio.sleep(0.01)
    assert FakeRunner.running == 3 and d.dispatcher.running == 3 and len(d.queue.waiting) == 5
    d.gate.set()
    await dispatching
    await d.dispatcher.drain()
    assert FakeRunner.most_at_once == 3 and sum(len(r.ran) for r in d.runners) == 8


async def test_a_retry_is_deferred_by_its_delay_and_promoted_when_due() -> None:
    d = desk(script={"o1": [RunOutcome("pending", retry_in=2.0)]})
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.queue.delayed == {"o1": pytest.approx(d.clock.now + 2.0)} and d.dispatcher.figures.retried == 1
    assert await d.queue.promote_due(d.clock.now) == 0
    d.clock.now += 2.0
    assert await d.queue.promote_due(d.clock.now) == 1
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.dispatcher.figures.completed == 1


async def test_an_order_whose_executor_died_is_run_again_until_it_answers() -> None:
    d = desk(runners=1, script={"o1": [RunnerLost("killed"), RunnerLost("killed"), RunOutcome("failed")]})
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.runners[0].ran == ["o1"] * 3 and d.dispatcher.figures.failed == 1
    assert len(d.queue.acked) == 1 and d.clock.slept == [0.2, 0.2]


async def test_a_duplicate_delivery_of_a_running_order_is_acked_and_dropped() -> None:
    d = desk(runners=2, open_gate=False)
    await d.queue.enqueue("o1")
    duplicate = await d.queue.enqueue("o1")
    await d.dispatch_all()
    assert d.dispatcher.running == 1 and duplicate in d.queue.acked
    d.gate.set()
    await d.dispatcher.drain()
    assert sum(len(r.ran) for r in d.runners) == 1


async def test_an_error_the_runner_could_not_record_is_tried_again_later() -> None:
    d = desk(script={"o1": [RunOutcome("error", retry_in=2.0, message="PostgreSQL away")]})
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert "o1" in d.queue.delayed and d.dispatcher.figures.retried == 0


async def test_a_run_that_raises_is_deferred_not_lost() -> None:
    d = desk(script={"o1": [RuntimeError("redis went away")]})
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.queue.delayed == {"o1": pytest.approx(d.clock.now + 2.0)} and d.queue.pending == {}
    assert d.dispatcher._idle.qsize() == 2  # the runner came back


async def test_starts_wait_for_the_limiter() -> None:
    d = desk(rate=100, refusals=2)
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert d.starts.hits == 3 and d.clock.slept[:2] == [0.25, 0.25]
    assert d.dispatcher.figures.completed == 1


async def test_a_queue_that_fails_after_the_read_gives_the_runner_back() -> None:
    d = desk(runners=1, rate=100)

    async def broken(client_id: str) -> tuple[bool, float]:
        raise ConnectionError("redis went away")

    d.starts.hit = broken
    await d.queue.enqueue("o1")
    with pytest.raises(ConnectionError):
        await d.dispatcher.dispatch_once(block_ms=0)
    assert d.dispatcher._idle.qsize() == 1 and d.dispatcher.running == 0
    assert list(d.queue.pending) != []  # still delivered: the sweep will reclaim it


async def test_recovery_queues_our_own_unacked_deliveries_and_unfinished_orders() -> None:
    d = desk()
    await d.queue.enqueue("left-by-the-last-dispatcher")
    await d.queue.read(CONSUMER)
    d.orders.unfinished = ["lost-by-redis", "left-by-the-last-dispatcher"]
    await d.dispatcher.recover()
    assert sorted(o for _, o in d.queue.waiting) == ["left-by-the-last-dispatcher", "lost-by-redis"]
    assert d.queue.pending == {}


async def test_the_sweep_reclaims_stale_deliveries_nothing_runs_but_not_live_ones() -> None:
    d = desk(runners=1, open_gate=False)
    await d.queue.enqueue("running")
    await d.dispatch_all()  # delivered and running (held)
    stale = await d.queue.enqueue("reply-lost")
    await d.queue.read(CONSUMER)  # delivered, but the dispatcher never saw it
    d.clock.now += 5
    assert await d.dispatcher.reclaim_lost(min_idle_ms=1000) == 1
    assert stale in d.queue.acked and [o for _, o in d.queue.waiting] == ["reply-lost"]
    assert [o for _, o, _ in d.queue.pending.values()] == ["running"]
    d.gate.set()
    await d.dispatcher.drain()


async def test_the_loop_recovers_dispatches_sweeps_and_stops() -> None:
    d = desk()
    await d.queue.enqueue("o1")
    d.orders.unfinished = ["o2"]
    loop = asyncio.ensure_future(d.dispatcher.run_forever())
    for _ in range(50):
        await asyncio.sleep(0)
    d.dispatcher.stop()
    await asyncio.wait_for(loop, 5)
    await d.dispatcher.drain()
    assert d.dispatcher.figures.completed == 2
    assert d.dispatcher._metrics.seen  # the sweep reported the queue's depth
    # ...and the oldest open order's age: o2's while it waited, 0 once every order was final
    assert d.dispatcher._metrics.oldest and set(d.dispatcher._metrics.oldest) <= {(12.5, 3.0), (0.0, 0.0)}


class StuckRunner(FakeRunner):
    """A call that never returns (an executor blocked on a dead actor's answer)."""

    async def run(self, order_id: str, started_at: float) -> RunOutcome:
        self.ran.append(order_id)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class DyingRunner(FakeRunner):
    """An executor that dies on every call (restarted by Ray, and dying again)."""

    async def run(self, order_id: str, started_at: float) -> RunOutcome:
        self.ran.append(order_id)
        raise RunnerLost("RayActorError")


@pytest.mark.parametrize(
    ("runner_class", "timeout_s", "runs"),
    [
        (StuckRunner, 0.05, 1),  # one call that never returns
        (DyingRunner, 1.0, 5),  # resumed every 0.2 s (clock time) until the run's 1 s were spent
    ],
)
async def test_a_run_that_gets_no_answer_gives_its_slot_back_after_the_run_timeout(
    runner_class: type[FakeRunner], timeout_s: float, runs: int
) -> None:
    d = desk(runners=1)
    d.dispatcher._settings = DispatchSettings(executors=1, rate_limit_per_minute=0, run_timeout_s=timeout_s)
    runner = runner_class({}, d.gate, d.orders.done)
    d.dispatcher._idle = asyncio.Queue()
    d.dispatcher._idle.put_nowait(runner)
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await asyncio.wait_for(d.dispatcher.drain(), 5)
    assert runner.ran == ["o1"] * runs and d.dispatcher.running == 0
    assert d.dispatcher._idle.qsize() == 1  # the slot is free again
    assert "o1" in d.queue.delayed and d.queue.pending == {}  # deferred, not lost


async def test_a_retry_is_promoted_when_it_is_due_and_nothing_polls_meanwhile() -> None:
    d = desk()
    d.queue.delayed["o1"] = d.clock.now + 1.5
    promoter = asyncio.ensure_future(d.dispatcher._promote_forever(at_most_s=5.0))
    for _ in range(20):
        await asyncio.sleep(0)
    d.dispatcher.stop()
    await asyncio.wait_for(promoter, 5)
    assert "o1" not in d.queue.delayed and [o for _, o in d.queue.waiting] == ["o1"]
    # slept until it was due, then the longest wait: no 20 ms polling in between
    assert d.clock.slept[0] == pytest.approx(1.5) and set(d.clock.slept[1:]) == {5.0}


async def test_a_deferred_order_wakes_the_promoter_before_its_long_wait_ends() -> None:
    d = desk(script={"o1": [RunOutcome("pending", retry_in=1.0)]})
    d.clock.sleep = lambda seconds: asyncio.Event().wait()  # type: ignore[method-assign]  # sleeps for ever
    rounds = []
    real_promote = d.queue.promote_due

    async def counted(now: float) -> int:
        rounds.append(now)
        return await real_promote(now)

    d.queue.promote_due = counted  # type: ignore[method-assign]
    promoter = asyncio.ensure_future(d.dispatcher._promote_forever(at_most_s=5.0))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(rounds) == 1  # asleep now, for ever but for a deferral
    await d.queue.enqueue("o1")
    await d.dispatch_all()
    await d.dispatcher.drain()
    assert "o1" in d.queue.delayed
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(rounds) == 2  # the deferral woke it
    promoter.cancel()


@pytest.mark.parametrize(
    ("slots", "processes", "spread"),
    [(10, 2, [5, 5]), (10, 3, [4, 3, 3]), (3, 8, [1, 1, 1]), (1, 1, [1]), (64, 1, [64])],
)
def test_order_slots_are_spread_evenly_over_the_executor_processes(slots: int, processes: int, spread: list[int]) -> None:
    settings = DispatchSettings(executors=slots, executor_processes=processes)
    assert settings.slots_per_executor() == spread and sum(spread) == slots
