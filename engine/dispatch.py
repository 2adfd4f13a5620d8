"""Dispatching: feeding the queue's orders to the executors, under the concurrency and rate limits.

An order is taken from the queue only when an executor slot is free (so at
most that many run at once) and only when the shared start limiter grants
it. A delivery is acknowledged only after its run returned, so an order
whose executor died is run again (runs resume, they never start over).
Retries wait in the queue's delayed set until due. A periodic sweep queues
again what the queue lost: deliveries nothing runs, and unfinished orders
the store knows that are neither queued nor running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from engine.plans import RunOutcome
from engine.ports import Clock, DispatchQueue, StartLimiter, UnfinishedOrders
from engine.settings import DispatchSettings

CONSUMER = "dispatcher-0"
log = logging.getLogger(__name__)


class RunnerLost(Exception):
    """The executor died while it ran an order (it is being restarted)."""


class OrderRunner(Protocol):
    async def run(self, order_id: str, started_at: float) -> RunOutcome:
        """Drive an order as far as it goes now; raises :class:`RunnerLost` when the executor died."""
        ...


class DispatchMetrics(Protocol):
    def depth(self, *, waiting: int, delayed: int, running: int) -> None: ...

    def oldest_open(self, age_s: float, idle_s: float) -> None:
        """The oldest non-final order's age and idle time (0 when every order is final)."""
        ...


@dataclass
class DispatchFigures:
    started: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0


class OrderDispatcher:
    def __init__(self, runners: list[OrderRunner], queue: DispatchQueue, starts: StartLimiter,
                 orders: UnfinishedOrders, settings: DispatchSettings, clock: Clock,
                 metrics: DispatchMetrics) -> None:  # fmt: skip
        self._runners = runners
        self._queue, self._starts, self._orders = queue, starts, orders
        self._settings, self._clock, self._metrics = settings, clock, metrics
        self._idle: asyncio.Queue[OrderRunner] = asyncio.Queue()
        for runner in runners:
            self._idle.put_nowait(runner)
        self._in_flight: dict[str, str] = {}  # order id -> stream message id
        self._held: set[str] = set()  # message ids read and not yet acked or deferred
        # A read serves both lanes (up to one entry each); what it brought beyond the
        # slot free now waits here, held, for the next one.
        self._ready: deque[tuple[str, str]] = deque()
        self._runs: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._deferred = asyncio.Event()
        self.figures = DispatchFigures()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> int:
        return len(self._in_flight)

    async def run_forever(self) -> None:
        """Recover what a previous dispatcher left, then dispatch until :meth:`stop`."""
        await self.recover()
        background = [asyncio.ensure_future(self._sweep_forever()), asyncio.ensure_future(self._promote_forever())]
        try:
            while not self._stopping:
                try:
                    await self.dispatch_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 — Redis or PG blip: keep going
                    log.exception("dispatch loop error; retrying in 0.5 s")
                    await self._clock.sleep(0.5)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    def stop(self) -> None:
        """No new deliveries are taken; runs in flight go on."""
        self._stopping = True

    async def dispatch_once(self, block_ms: int = 5000) -> None:
        runner = await self._idle.get()
        msg_id: str | None = None
        try:
            if not self._ready:
                messages = await self._queue.read(CONSUMER, count=1, block_ms=block_ms)
                if not messages:
                    self._idle.put_nowait(runner)
                    return
                self._held.update(m for m, _ in messages)
                self._ready.extend(messages)
            msg_id, order_id = self._ready.popleft()
            if order_id in self._in_flight:
                await self._queue.ack(msg_id)  # a duplicate of an order already running
                self._held.discard(msg_id)
                self._idle.put_nowait(runner)
                return
            started_at = await self._wait_for_start()
        except BaseException:
            # The queue failed after the read: the runner goes back to the pool (else
            # the engine loses one for good); the delivery, still pending, is reclaimed.
            if msg_id is not None:
                self._held.discard(msg_id)
            self._idle.put_nowait(runner)
            raise
        self._in_flight[order_id] = msg_id
        self.figures.started += 1
        task = asyncio.ensure_future(self._run(runner, msg_id, order_id, started_at))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def drain(self) -> None:
        """Wait for the runs in flight (tests, and a graceful stop)."""
        while self._runs:
            await asyncio.gather(*list(self._runs), return_exceptions=True)

    async def _wait_for_start(self) -> float:
        if self._settings.rate_limit_per_minute <= 0:
            return self._clock.time()
        while True:
            allowed, retry_after = await self._starts.hit("all")
            if allowed:
                return self._clock.time()
            await self._clock.sleep(min(max(retry_after, 0.01), 1.0))

    async def _run(self, runner: OrderRunner, msg_id: str, order_id: str, started_at: float) -> None:
        try:
            outcome = await self._run_to_an_answer(runner, order_id, started_at)
            if outcome.retry_in is not None:
                self.figures.retried += outcome.status == "pending"
                # schedule the retry and ack the delivery in one step
                await self._queue.defer(msg_id, order_id, self._clock.time() + outcome.retry_in)
                self._deferred.set()  # the promoter may be asleep past this one's due time
                return
            self.figures.completed += outcome.status == "confirmed"
            self.figures.failed += outcome.status == "failed"
            await self._queue.ack(msg_id)
        except Exception:  # noqa: BLE001 — PG or Redis down: try this order again later
            log.exception("order %s: dispatch failed; retrying in 2 s", order_id)
            try:
                await self._queue.defer(msg_id, order_id, self._clock.time() + 2.0)
                self._deferred.set()
            except Exception:  # noqa: BLE001 — still unacked: the sweep reclaims it
                log.exception("order %s: could not defer", order_id)
        finally:
            self._in_flight.pop(order_id, None)
            self._held.discard(msg_id)
            self._idle.put_nowait(runner)

    async def _run_to_an_answer(self, runner: OrderRunner, order_id: str, started_at: float) -> RunOutcome:
        """The run's answer, within ``run_timeout_s`` however often its executor dies meanwhile."""
        timeout = self._settings.run_timeout_s
        deadline = self._clock.time() + timeout
        while True:
            try:
                left = deadline - self._clock.time()
                if left <= 0:
                    raise asyncio.TimeoutError
                return await asyncio.wait_for(runner.run(order_id, started_at), left)
            except asyncio.TimeoutError:
                log.warning("order %s: no answer from its executor in %gs; the slot is freed", order_id, timeout)
                return RunOutcome("error", retry_in=1.0, message=f"the executor did not answer in {timeout:g}s")
            except RunnerLost:
                # The executor died mid-order: it is restarted, and the run resumes from the store.
                log.warning("executor died running %s; resuming", order_id)
                await self._clock.sleep(0.2)

    async def recover(self) -> None:
        """After a restart: our own unacknowledged deliveries first, then the sweep."""
        for msg_id, order_id in await self._queue.pending_for(CONSUMER):
            await self._queue.enqueue(order_id)
            await self._queue.ack(msg_id)
        await self.sweep(older_than_s=0.0)

    async def _promote_forever(self, at_most_s: float = 5.0) -> None:
        """Move retries whose backoff is over into the stream, waking when the next one is due
        (or when we defer one, which may be due sooner); no polling in between."""
        while not self._stopping:
            wait = at_most_s
            try:
                await self._queue.promote_due(self._clock.time())
                due = await self._queue.next_due()
                if due is not None:
                    wait = min(at_most_s, max(0.0, due - self._clock.time()))
            except Exception:  # noqa: BLE001 — Redis blip: next round
                log.exception("promoting due retries failed")
                wait = 0.5
            await self._sleep_or_deferred(wait)

    async def _sleep_or_deferred(self, seconds: float) -> None:
        sleep = asyncio.ensure_future(self._clock.sleep(seconds))
        deferred = asyncio.ensure_future(self._deferred.wait())
        try:
            await asyncio.wait({sleep, deferred}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            deferred.cancel()
            self._deferred.clear()

    async def _sweep_forever(self) -> None:
        interval = self._settings.sweep_interval_s
        while not self._stopping:
            await self._clock.sleep(interval)
            try:
                await self.sweep(older_than_s=interval * 3)
                depth = await self._queue.depth()
                self._metrics.depth(waiting=depth.waiting, delayed=depth.delayed, running=self.running)
                oldest = await self._orders.oldest_unfinished()
                self._metrics.oldest_open(oldest.age_s if oldest else 0.0, oldest.idle_s if oldest else 0.0)
            except Exception:  # noqa: BLE001
                log.exception("sweep failed")

    async def reclaim_lost(self, min_idle_ms: int) -> int:
        """Queue again the deliveries made to us that nothing works on.

        A delivery whose reply was lost (Redis went away during the read), or
        whose ack or defer failed, stays pending for this consumer: nothing
        runs it, and the sweep takes it for queued.
        """
        stale = await self._queue.claim_stale(CONSUMER, min_idle_ms)
        lost = [(msg_id, order_id) for msg_id, order_id in stale if msg_id not in self._held]
        for msg_id, order_id in lost:
            await self._queue.enqueue(order_id)
            await self._queue.ack(msg_id)
        if lost:
            log.warning("reclaimed %d deliveries nothing was running", len(lost))
        return len(lost)

    async def sweep(self, older_than_s: float) -> int:
        """Queue again unfinished orders that are neither running, queued nor waiting to retry."""
        await self.reclaim_lost(min_idle_ms=int(self._settings.sweep_interval_s * 1000))
        queued = await self._queue.queued_order_ids()
        count = 0
        for order in await self._orders.unfinished_orders(older_than_s=older_than_s):
            if order.id in self._in_flight or order.id in queued:
                continue
            await self._queue.enqueue(order.id)
            count += 1
        if count:
            log.warning("sweep queued %d orders again", count)
        return count
