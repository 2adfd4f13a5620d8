"""OrderExecutor: a Ray shell that gives the order lifecycle its concurrency.

Each actor runs up to ``slots`` orders at once (``engine.lifecycle`` does the
work, one coroutine per order); the slots of all executors are the engine's
concurrency (``dispatch.executors``), spread over ``dispatch.executor_processes``
actors.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import ray

from actors import metrics
from actors.venues import RayChain, RayRouter, RayTriggers, RayVenues
from engine.clock import SystemClock
from engine.lifecycle import LifecycleConfig, LifecyclePorts, OrderLifecycle
from engine.execution import Timing
from engine.lifecycle_figures import ExecutorFigures, LifecycleFigures
from engine.plans import RunOutcome
from engine.ports import Connector
from engine.settings import LatencySettings, RetrySettings, RoutingSettings
from sim.orders import RetryPolicy
from sim.tokens import TokenRegistry

log = logging.getLogger(__name__)


def executor_name(index: int) -> str:
    return f"executor:{index}"


def lifecycle_config(retry: RetrySettings, latency: LatencySettings, routing: RoutingSettings) -> LifecycleConfig:
    """The lifecycle's own section, from the three settings it depends on."""
    return LifecycleConfig(
        retry=RetryPolicy(retry.max_retries, retry.base_delay_s, retry.factor),
        timing=Timing(
            routing.tx_expiry_s, routing.pool_timeout_s, latency.execution_min_s, latency.execution_max_s,
            router_timeout_s=routing.pool_timeout_s + latency.quote_s + latency.quote_jitter_s + 4.0,
        ),
    )


@ray.remote(num_cpus=0, max_restarts=-1)
class OrderExecutor:
    def __init__(self, index: int, router: Any, pools: dict[str, Any], tokens: TokenRegistry,
                 connector: Connector, config: LifecycleConfig, seed: int, slots: int = 1,
                 triggers: Any = None, namespace: str | None = None, chain: Any = None) -> None:  # fmt: skip
        """``chain``: the chain actor (None: the chain is off, a swap lands at once)."""
        self.index, self.slots = index, slots
        self._chain = chain
        self._triggers, self._namespace = triggers, namespace
        self._running = 0
        self._figures = LifecycleFigures()  # since this process started; gathered by /metrics
        self._config, self._seed = config, seed
        self._router, self._pools, self._tokens, self._connector = router, pools, tokens, connector
        self._lifecycle: OrderLifecycle | None = None
        self._connect_lock = asyncio.Lock()

    async def _connect(self) -> OrderLifecycle:
        async with self._connect_lock:
            if self._lifecycle is None:
                stores = await self._connector.executor_stores(self.slots)
                if stores.launches is not None:  # tokens launched before this executor (re)started
                    for token in await stores.launches.tokens():
                        self._tokens.add(token)
                ports = LifecyclePorts(
                    orders=stores.orders, trades=stores.trades, events=stores.events,
                    router=RayRouter(self._router, self._config.timing.router_timeout_s),
                    venues=RayVenues(self._pools, self._namespace),
                    clock=SystemClock(), metrics=metrics.LifecycleMetricsOnRay(self._figures),
                    triggers=RayTriggers(self._triggers),
                    chain=None if self._chain is None else RayChain(self._chain),
                )  # fmt: skip
                rng = random.Random(f"{self._seed}:executor:{self.index}")
                self._lifecycle = OrderLifecycle(ports, self._tokens, self._config, rng)
            return self._lifecycle

    async def learn_token(self, token: Any) -> bool:
        """A token launched during the run (the launchpad tells every executor before its pool opens)."""
        return self._tokens.add(token)

    async def ready(self) -> int:
        await self._connect()
        return self.index

    async def figures(self) -> ExecutorFigures:
        """Its slots, the orders it runs now and its lifecycle figures (for a scrape of /metrics)."""
        return ExecutorFigures(str(self.index), self.slots, self._running, self._figures.snapshot())

    async def run(self, order_id: str, started_at: float | None = None) -> RunOutcome:
        """Drive an order as far as it goes now; never raises (the dispatcher retries ``error``)."""
        tags = {"executor": str(self.index)}
        self._running += 1
        metrics.running_executors().set(self._running, tags=tags)
        try:
            return await (await self._connect()).run(order_id, started_at)
        except Exception as exc:  # noqa: BLE001 — e.g. PostgreSQL away: the order could not even be recorded
            log.exception("order %s: could not run", order_id)
            return RunOutcome("error", retry_in=2.0, message=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._running -= 1
            metrics.running_executors().set(self._running, tags=tags)
