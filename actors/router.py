"""OrderRouter: fans quote requests out to every pool that can serve an order.

Each pool is asked in parallel with a per-pool timeout; a slow or dead pool
is skipped and reported. The router rebuilds the pools it heard from as
local copies and runs ``sim.routing`` on them, so a split or two-hop route
costs no extra actor calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from actors.launched import launched_pools
from engine.settings import RoutingSettings
from sim.pools import Pool, restore_pool
from sim.decision import RouteDecision, Skipped, decide_route, route_pool_ids

ROUTER_NAME = "router"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class OrderRouter:
    def __init__(self, pools: dict[str, dict[str, Any]], routing: RoutingSettings,
                 launchpad: tuple[str, str] | None = None) -> None:  # fmt: skip
        """``pools``: pool id -> {"tokens": [sym, sym], "handle": PoolActor handle}; ``launchpad``: (name,
        namespace) of the actor a restarted router asks for the pools launched since the engine started."""
        self._routing = routing
        self._pools = dict(pools)
        self._cache: dict[str, tuple[str, Any]] = {}  # pool id -> (version, restored pool)
        self._policy = routing.policy()
        self._relearning: asyncio.Task | None = None
        if ray.get_runtime_context().was_current_actor_reconstructed:
            self._relearning = asyncio.get_running_loop().create_task(self._relearn(launchpad))

    async def _relearn(self, launchpad: tuple[str, str] | None) -> None:
        for pool in await launched_pools(launchpad):
            await self.add_pool(pool["poolId"], list(pool["pair"]), pool["handle"])

    async def add_pool(self, pool_id: str, tokens: list[str], handle: Any) -> bool:
        """A pool launched during the run; False when it is known already."""
        if pool_id in self._pools:
            return False
        self._pools[pool_id] = {"tokens": list(tokens), "handle": handle}
        return True

    def candidates(self, token_in: str, token_out: str) -> list[str]:
        """Pools that can take part in a route from token_in to token_out."""
        pairs = {pool_id: pool["tokens"] for pool_id, pool in self._pools.items()}
        return route_pool_ids(pairs, token_in, token_out, self._policy)

    async def _observe(self, pool_id: str) -> Pool | Skipped:
        """The pool as it is now (a local copy, refreshed only when it moved), or why it was skipped."""
        handle = self._pools[pool_id]["handle"]
        timeout = self._routing.pool_timeout_s
        try:
            cached = self._cache.get(pool_id)
            known = cached[0] if cached else None
            seen = await asyncio.wait_for(handle.observe.remote(known), timeout)
        except asyncio.TimeoutError:
            return Skipped(pool_id, "POOL_TIMEOUT", f"no answer in {timeout}s")
        except ray.exceptions.RayActorError as exc:
            return Skipped(pool_id, "POOL_UNAVAILABLE", str(exc)[:200])
        if seen["snapshot"] is not None:  # the pool moved since we last saw it
            self._cache[pool_id] = (seen["version"], restore_pool(seen["snapshot"]))
        return self._cache[pool_id][1]

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        """The best route now, every quote seen, and the pools that were skipped.

        When nothing can fill, ``route`` is None and ``failure`` says why (domain
        refusals travel as data: they are answers, not crashes).
        """
        if self._relearning is not None:
            await self._relearning  # a restarted router first learns the pools launched meanwhile
        pool_ids = self.candidates(token_in, token_out)
        seen = await asyncio.gather(*(self._observe(pid) for pid in pool_ids))
        skipped = [s for s in seen if isinstance(s, Skipped)]
        # Routing quotes without mutating, so the cached copies stay exact.
        pools = [s for s in seen if not isinstance(s, Skipped)]
        return decide_route(pools, token_in, token_out, amount_in, time.time(), self._policy, skipped)

    async def pool_ids(self) -> list[str]:
        if self._relearning is not None:
            await self._relearning
        return list(self._pools)
