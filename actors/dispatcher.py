"""Dispatcher: the queue consumer that feeds the executors (``engine.dispatch`` does the work).

A Ray shell: it opens the stores, wraps the executor handles as runners, and
keeps the dispatch loop running; restarted by Ray after a crash, it starts
the loop again by itself and recovers what its predecessor left.
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
    def __init__(self, executors: list[Any], connector: Connector, settings: DispatchSettings) -> None:
        self._executors, self._connector, self._settings = executors, connector, settings
        self._dispatcher: OrderDispatcher | None = None
        self._task: asyncio.Task | None = None
        context = ray.get_runtime_context()
        if context.was_current_actor_reconstructed:
            # Ray restarted us after a crash and nobody will call start() again:
            # queue the call ourselves (it runs once __init__ returns).
            context.current_actor.start.remote()

    async def start(self) -> bool:
        if self._task is None:
            s = self._settings
            stores = await self._connector.dispatcher_stores(
                starts_per_window=s.rate_limit_per_minute, window_s=s.rate_limit_window_s
            )
            runners = [RayRunner(handle) for handle in self._executors]
            self._dispatcher = OrderDispatcher(
                runners, stores.queue, stores.starts, stores.orders, s, SystemClock(), metrics.DispatchMetricsOnRay()
            )
            self._run_loop()
        return True

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
            "concurrency": len(self._executors),
            "rateLimitPerMinute": self._settings.rate_limit_per_minute,
            "started": figures.started if figures else 0,
            "completed": figures.completed if figures else 0,
            "failed": figures.failed if figures else 0,
            "retried": figures.retried if figures else 0,
        }

    async def stop(self) -> None:
        """Stop taking orders, and wait until the loop has ended (orders running go on)."""
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sweep(self, older_than_s: float) -> int:
        assert self._dispatcher is not None, "start() first"
        return await self._dispatcher.sweep(older_than_s)
