"""OrderRouter: fans quote requests out to every pool that can serve an order.

Each pool is asked in parallel with a per-pool timeout; a slow or dead pool
is skipped and reported. The router rebuilds the pools it heard from as
local copies and runs ``sim.routing`` on them, so a split or two-hop route
costs no extra actor calls.

When quotes take no simulated time (``follow``), the router follows the pools
instead of asking them per order: one ``watch`` call open per pool, answered
at each change of its state, so that a route needs no pool call at all; a pool
whose call failed (its actor died) is skipped until it answers again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from actors.launched import launched_pools
from engine.pool_board import PoolBoard
from engine.settings import RoutingSettings
from sim.pools import Pool
from sim.decision import RouteDecision, Skipped, decide_route, route_pool_ids

ROUTER_NAME = "router"
WATCH_S = 20.0  # a followed pool answers at least this often, changed or not
FOLLOW_BACKOFF_S = (0.05, 2.0)  # after a failed watch: first and longest wait before the next


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class OrderRouter:
    def __init__(self, pools: dict[str, dict[str, Any]], routing: RoutingSettings,
                 launchpad: tuple[str, str] | None = None, follow: bool = False) -> None:  # fmt: skip
        """``pools``: pool id -> {"tokens": [sym, sym], "handle": PoolActor handle}; ``launchpad``: (name,
        namespace) of the actor a restarted router asks for the pools launched since the engine started;
        ``follow``: follow the pools' states rather than ask them per route."""
        self._routing = routing
        self._pools = dict(pools)
        self._board = PoolBoard()
        self._policy = routing.policy()
        self._follow = follow
        self._followers: dict[str, asyncio.Task] = {}
        self._relearning: asyncio.Task | None = None
        for pool_id in self._pools:
            self._start_following(pool_id)
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
        self._start_following(pool_id)
        return True

    def _start_following(self, pool_id: str) -> None:
        if self._follow and pool_id not in self._followers:
            self._followers[pool_id] = asyncio.get_running_loop().create_task(self._following(pool_id))

    async def _following(self, pool_id: str) -> None:
        handle = self._pools[pool_id]["handle"]
        backoff = FOLLOW_BACKOFF_S[0]
        while True:
            try:
                version, snapshot = await handle.watch.remote(self._board.known_version(pool_id), WATCH_S)
            except Exception as exc:  # noqa: BLE001 — dead or restarting: skipped until it answers
                self._board.lost(pool_id, f"{type(exc).__name__}: {str(exc)[:160]}")
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, FOLLOW_BACKOFF_S[1])
                continue
            backoff = FOLLOW_BACKOFF_S[0]
            if snapshot is None and version == self._board.known_version(pool_id):
                await asyncio.sleep(FOLLOW_BACKOFF_S[0])  # unchanged: its wait ended, or it is stopping
            self._board.saw(pool_id, version, snapshot)

    def candidates(self, token_in: str, token_out: str) -> list[str]:
        """Pools that can take part in a route from token_in to token_out."""
        pairs = {pool_id: pool["tokens"] for pool_id, pool in self._pools.items()}
        return route_pool_ids(pairs, token_in, token_out, self._policy)

    async def _observe(self, pool_id: str) -> Pool | Skipped:
        """The pool as it is now (a local copy, refreshed only when it moved), or why it was skipped.
        A followed pool is not asked (unless it never answered yet)."""
        if self._follow:
            known = self._board.pool(pool_id)
            if known is not None:
                return known
        handle = self._pools[pool_id]["handle"]
        timeout = self._routing.pool_timeout_s
        try:
            seen = await asyncio.wait_for(handle.observe.remote(self._board.known_version(pool_id)), timeout)
        except asyncio.TimeoutError:
            return Skipped(pool_id, "POOL_TIMEOUT", f"no answer in {timeout}s")
        except ray.exceptions.RayActorError as exc:
            return Skipped(pool_id, "POOL_UNAVAILABLE", str(exc)[:200])
        self._board.saw(pool_id, seen["version"], seen["snapshot"])
        known = self._board.pool(pool_id)
        assert known is not None  # it has just been seen
        return known

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
