"""Dispatcher: the queue consumer that feeds the executors (``engine.dispatch`` does the work).

A Ray shell: it opens the stores, wraps the executor handles as runners, and
keeps the dispatch loop running. The loop is started by the constructor itself
(``autostart``, and always when Ray restarted the actor after a crash), so a
restarted dispatcher recovers what its predecessor left with nobody calling it.
It used to queue a call to its own ``start`` from the constructor instead: while
Ray still reported the actor RESTARTING, that call failed ("The actor is
restarting", no retries) and the restarted dispatcher sat idle for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from actors import metrics
from actors.venues import RayRunner
from engine.clock import SystemClock
from engine.dispatch import CONSUMER, OrderDispatcher
from engine.ports import Connector
from engine.settings import DispatchSettings

DISPATCHER_NAME = "dispatcher"
log = logging.getLogger(__name__)
__all__ = ["CONSUMER", "DISPATCHER_NAME", "Dispatcher"]


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class Dispatcher:
    def __init__(self, slots: list[Any], connector: Connector, settings: DispatchSettings,
                 autostart: bool = False) -> None:  # fmt: skip
        # one executor handle per order slot (an executor with three slots is there three times)
        self._slots, self._connector, self._settings = slots, connector, settings
        self._dispatcher: OrderDispatcher | None = None
        self._task: asyncio.Task | None = None
        self._starting: asyncio.Task | None = None
        self._start_lock = asyncio.Lock()
        if autostart or ray.get_runtime_context().was_current_actor_reconstructed:
            # An async actor's constructor runs on its event loop: start from here.
            self._starting = asyncio.get_running_loop().create_task(self.start())

    async def start(self, retry_every_s: float = 1.0) -> bool:
        """Open the stores (until they answer) and start the loop; again is a no-op."""
        async with self._start_lock:
            while self._dispatcher is None:
                try:
                    await self._open()
                except Exception:  # noqa: BLE001 — PostgreSQL or Redis away: giving up would stall the engine
                    log.exception("the dispatcher cannot open its stores; trying again in %gs", retry_every_s)
                    await asyncio.sleep(retry_every_s)
        return True

    async def _open(self) -> None:
        s = self._settings
        stores = await self._connector.dispatcher_stores(
            starts_per_window=s.rate_limit_per_minute, window_s=s.rate_limit_window_s
        )
        runners = [RayRunner(handle) for handle in self._slots]
        self._dispatcher = OrderDispatcher(
            runners, stores.queue, stores.starts, stores.orders, s, SystemClock(), metrics.DispatchMetricsOnRay()
        )
        self._run_loop()

    def _run_loop(self) -> None:
        assert self._dispatcher is not None
        self._task = asyncio.ensure_future(self._dispatcher.run_forever())
        self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task) -> None:
        """A loop that died (recovery failed on a Redis or PostgreSQL blip) is started again:
        a dispatcher that silently stops dispatching stalls the whole engine."""
        if task.cancelled() or self._dispatcher is None or self._dispatcher.stopping:
            return
        log.error("the dispatch loop ended (%r); starting it again in 1 s", task.exception())
        asyncio.get_running_loop().call_later(1.0, self._run_loop)

    async def stats(self) -> dict[str, Any]:
        figures = self._dispatcher.figures if self._dispatcher else None
        return {
            "running": self._dispatcher.running if self._dispatcher else 0,
            "concurrency": len(self._slots),
            "rateLimitPerMinute": self._settings.rate_limit_per_minute,
            "started": figures.started if figures else 0,
            "completed": figures.completed if figures else 0,
            "failed": figures.failed if figures else 0,
            "retried": figures.retried if figures else 0,
        }

    async def stop(self) -> None:
        """Stop taking orders, and wait until the loop has ended (orders running go on)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sweep(self, older_than_s: float) -> int:
        assert self._dispatcher is not None, "start() first"
        return await self._dispatcher.sweep(older_than_s)
