"""Dispatcher: the queue consumer that feeds the executors.

It takes orders from the Redis stream only when an executor is idle (so at
most ``executors`` orders run at once) and only when the shared rate limiter
grants a start. A message is acknowledged only after its executor returned,
so an order whose executor died is run again (executors resume, they never
start over). Retries wait in a Redis sorted set until due. A periodic sweep
re-queues any unfinished order that PostgreSQL knows and Redis lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray

from actors import metrics
from engine.plans import RunOutcome
from engine.ports import Connector
from engine.settings import EngineSettings

DISPATCHER_NAME = "dispatcher"
CONSUMER = "dispatcher-0"
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class Dispatcher:
    def __init__(self, executors: list[Any], connector: Connector, settings: dict[str, Any]) -> None:
        self._connector = connector
        self._settings = EngineSettings.from_actor_dict(settings)
        self._executors = executors
        self._idle: asyncio.Queue | None = None
        self._in_flight: dict[str, str] = {}  # order id -> stream message id
        self._held: set[str] = set()  # message ids read and not yet acked or deferred
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0
        context = ray.get_runtime_context()
        if context.was_current_actor_reconstructed:
            # Ray restarted us after a crash and nobody will call start() again:
            # queue the call ourselves (it runs once __init__ returns).
            context.current_actor.start.remote()

    async def start(self) -> bool:
        if self._task is None:
            await self._connect()
            self._task = asyncio.ensure_future(self._loop())
        return True

    async def _connect(self) -> None:
        s = self._settings
        stores = await self._connector.dispatcher_stores(
            starts_per_window=s.rate_limit_per_minute, window_s=s.rate_limit_window_s
        )
        self._queue, self._limiter, self._store = stores.queue, stores.starts, stores.orders
        self._idle = asyncio.Queue()
        for handle in self._executors:
            self._idle.put_nowait(handle)

    async def stats(self) -> dict[str, Any]:
        return {
            "running": len(self._in_flight),
            "concurrency": len(self._executors),
            "rateLimitPerMinute": self._settings.rate_limit_per_minute,
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "retried": self.retried,
        }

    async def stop(self) -> None:
        """Stop taking orders, and wait until the loops have ended (orders running go on)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        await self._recover()
        sweeper = asyncio.ensure_future(self._sweep_forever())
        promoter = asyncio.ensure_future(self._promote_forever())
        try:
            while not self._stopping:
                try:
                    await self._dispatch_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 — Redis or PG blip: keep going
                    log.exception("dispatch loop error; retrying in 0.5 s")
                    await asyncio.sleep(0.5)
        finally:
            sweeper.cancel()
            promoter.cancel()
            await asyncio.gather(sweeper, promoter, return_exceptions=True)

    async def _dispatch_once(self) -> None:
        executor = await self._idle.get()
        msg_id: str | None = None
        try:
            messages = await self._queue.read(CONSUMER, count=1, block_ms=200)
            if not messages:
                self._idle.put_nowait(executor)
                return
            msg_id, order_id = messages[0]
            self._held.add(msg_id)
            if order_id in self._in_flight:
                await self._queue.ack(msg_id)  # a duplicate of an order already running
                self._held.discard(msg_id)
                self._idle.put_nowait(executor)
                return
            started_at = await self._wait_for_rate_limit()
        except BaseException:
            # Redis failed after the read: the executor goes back to the pool (else
            # the engine loses one for good), and the message, still pending, is
            # reclaimed by the sweep.
            if msg_id is not None:
                self._held.discard(msg_id)
            self._idle.put_nowait(executor)
            raise
        self._in_flight[order_id] = msg_id
        self.started += 1
        asyncio.ensure_future(self._run(executor, msg_id, order_id, started_at))

    async def _wait_for_rate_limit(self) -> float:
        if self._settings.rate_limit_per_minute <= 0:
            return time.time()
        while True:
            allowed, retry_after = await self._limiter.hit("all")
            if allowed:
                return time.time()
            await asyncio.sleep(min(max(retry_after, 0.01), 1.0))

    async def _run(self, executor: Any, msg_id: str, order_id: str, started_at: float) -> None:
        outcome: RunOutcome | None = None
        try:
            while outcome is None:
                try:
                    outcome = await executor.run.remote(order_id, started_at)
                except ray.exceptions.RayActorError:
                    # The executor died mid-order: Ray restarts it; run resumes from PG.
                    log.warning("executor died running %s; resuming", order_id)
                    await asyncio.sleep(0.2)
            status = outcome.status
            if outcome.retry_in is not None:
                self.retried += status == "pending"
                # schedule the retry and ack the message in one step
                await self._queue.defer(msg_id, order_id, time.time() + outcome.retry_in)
                return
            if status == "confirmed":
                self.completed += 1
            elif status == "failed":
                self.failed += 1
            await self._queue.ack(msg_id)
        except Exception:  # noqa: BLE001 — PG or Redis down: try this order again later
            log.exception("order %s: dispatch failed; retrying in 2 s", order_id)
            try:
                await self._queue.defer(msg_id, order_id, time.time() + 2.0)
            except Exception:  # noqa: BLE001 — still unacked: recovery picks it up
                log.exception("order %s: could not defer", order_id)
        finally:
            self._in_flight.pop(order_id, None)
            self._held.discard(msg_id)
            self._idle.put_nowait(executor)

    async def _recover(self) -> None:
        """After a restart: our own unacknowledged messages first, then the sweep."""
        for msg_id, order_id in await self._queue.pending_for(CONSUMER):
            await self._queue.enqueue(order_id)
            await self._queue.ack(msg_id)
        await self.sweep(older_than_s=0.0)

    async def _promote_forever(self, every_s: float = 0.02) -> None:
        """Move retries whose backoff is over into the stream (off the hot path)."""
        while not self._stopping:
            try:
                await self._queue.promote_due(time.time())
            except Exception:  # noqa: BLE001 — Redis blip: next round
                log.exception("promoting due retries failed")
            await asyncio.sleep(every_s)

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._settings.sweep_interval_s)
            try:
                await self.sweep(older_than_s=self._settings.sweep_interval_s * 3)
                await self._export_depth()
            except Exception:  # noqa: BLE001
                log.exception("sweep failed")

    async def _reclaim_lost(self, min_idle_ms: int) -> int:
        """Queue again the messages delivered to us that nothing works on.

        A delivery whose reply was lost (Redis went away during XREADGROUP), or
        whose ack or defer failed, stays pending for this consumer: nothing runs
        it, and ``sweep`` takes it for queued. Without this only a restart of
        the dispatcher would pick it up.
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
        """Re-queue unfinished orders that are neither running, queued nor waiting to retry."""
        await self._reclaim_lost(min_idle_ms=int(self._settings.sweep_interval_s * 1000))
        queued = await self._queue.queued_order_ids()
        count = 0
        for order in await self._store.unfinished_orders(older_than_s=older_than_s):
            if order.id in self._in_flight or order.id in queued:
                continue
            await self._queue.enqueue(order.id)
            count += 1
        if count:
            log.warning("sweep re-queued %d orders", count)
        return count

    async def _export_depth(self) -> None:
        depth = await self._queue.depth()
        gauge = metrics.queue_depth()
        gauge.set(depth.waiting, tags={"state": "waiting"})
        gauge.set(depth.delayed, tags={"state": "delayed"})
        gauge.set(len(self._in_flight), tags={"state": "running"})
