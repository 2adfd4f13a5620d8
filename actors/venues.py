"""The application layer's ports on Ray actor handles: the router, the pools, the executors.

A pool that does not answer in time, or whose actor died, raises
``VenueUnavailable``: the lifecycle then asks the trade ledger what happened.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from actors.pool_actor import pool_actor_name
from engine.dispatch import RunnerLost
from engine.errors import EngineUnavailable
from engine.plans import Fill, HeldPool, Rejection, RunOutcome, SwapOrder
from sim.decision import RouteDecision
from engine.ports import ChainUnavailable, VenueUnavailable

log = logging.getLogger(__name__)


class RayRouter:
    """The router actor; a call it does not answer within ``timeout_s`` (it died, it is
    restarting, it is stuck) raises ``EngineUnavailable`` instead of holding the order forever."""

    def __init__(self, handle: Any, timeout_s: float) -> None:
        self._handle = handle
        self._timeout_s = timeout_s

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        try:
            return await asyncio.wait_for(self._handle.route.remote(token_in, token_out, amount_in), self._timeout_s)
        except asyncio.TimeoutError as exc:
            raise EngineUnavailable(f"the router did not answer in {self._timeout_s:g}s") from exc
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise EngineUnavailable(f"the router is unavailable: {type(exc).__name__}") from exc


class RayTriggers:
    """The trigger book actor as the lifecycle's ``TriggerArming``: told, not waited on for long."""

    def __init__(self, handle: Any, timeout_s: float = 5.0) -> None:
        self._handle = handle
        self._timeout_s = timeout_s

    async def arm(self, order_id: str) -> None:
        try:
            await asyncio.wait_for(self._handle.arm.remote(order_id), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 — the book arms open orders from the store when it (re)starts
            log.warning("order %s: the trigger book did not take it (%r); it will from the store", order_id, exc)


class RayVenues:
    """The pools by id; a pool launched during the run is found by its actor's name in ``namespace``."""

    def __init__(self, pools: dict[str, Any], namespace: str | None = None) -> None:
        self._pools = dict(pools)
        self._namespace = namespace

    def _pool(self, pool_id: str) -> Any:
        handle = self._pools.get(pool_id)
        if handle is None:
            try:
                handle = ray.get_actor(pool_actor_name(pool_id), namespace=self._namespace)
            except ValueError as exc:
                raise VenueUnavailable(f"no pool {pool_id}") from exc
            self._pools[pool_id] = handle
        return handle

    async def _call(self, call: Any, timeout: float | None) -> Any:
        try:
            return await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError as exc:
            raise VenueUnavailable(f"no answer in {timeout:.1f}s") from exc
        except ray.exceptions.RayActorError as exc:
            raise VenueUnavailable(type(exc).__name__) from exc

    async def swap(self, pool_id: str, order: SwapOrder, *, timeout: float) -> Fill | Rejection:
        return await self._call(self._pool(pool_id).swap.remote(order), timeout)

    async def hold(
        self, pool_id: str, order_id: str, *, lease_s: float, give_up_at: float, timeout: float
    ) -> HeldPool | Rejection:
        return await self._call(self._pool(pool_id).hold.remote(order_id, lease_s, give_up_at), timeout)

    async def release(self, pool_id: str, order_id: str, *, timeout: float) -> None:
        await self._call(self._pool(pool_id).release.remote(order_id), timeout)


class RayChain:
    """The chain actor as the lifecycle's ``ChainPort``; a call it does not answer raises ``ChainUnavailable``."""

    def __init__(self, handle: Any, timeout_s: float = 5.0) -> None:
        self._handle = handle
        self._timeout_s = timeout_s

    async def _call(self, call: Any, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError as exc:
            raise ChainUnavailable(f"no answer in {timeout:.1f}s") from exc
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise ChainUnavailable(type(exc).__name__) from exc

    async def prepare(self, pool_ids: tuple[str, ...], *, priority_fee: str | int | None,
                      max_priority_fee_lamports: int | None, jito_tip_lamports: int) -> Any:  # fmt: skip
        call = self._handle.prepare.remote(tuple(pool_ids), priority_fee, max_priority_fee_lamports, jito_tip_lamports)
        return await self._call(call, self._timeout_s)

    async def transact(self, tx: Any, *, timeout: float) -> Any:
        return await self._call(self._handle.transact.remote(tx), timeout)


class RayRunner:
    """An executor actor as the dispatcher's ``OrderRunner``."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def run(self, order_id: str, started_at: float) -> RunOutcome:
        try:
            return await self._handle.run.remote(order_id, started_at)
        except ray.exceptions.RayActorError as exc:
            raise RunnerLost(type(exc).__name__) from exc
