"""The API's ``EngineGateway`` port on the live actors.

Handles are found by name in the engine's namespace, looked up once and
cached (a Serve replica runs in its own namespace, so the engine's is named
explicitly); every call is awaited, never ``ray.get``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from actors.chain import CHAIN_NAME
from actors.dispatcher import DISPATCHER_NAME
from actors.executor import executor_name
from actors.pool_actor import pool_actor_name
from actors.launched import LAUNCHPAD_NAME
from actors.market_maker import MARKET_NAME
from actors.router import ROUTER_NAME
from actors.trigger_book import TRIGGER_BOOK_NAME
from engine.errors import ChainOff, EngineUnavailable, MarketOff
from engine.lifecycle_figures import ExecutorFigures
from sim.decision import PoolSummary, RouteDecision



class RayGateway:
    """The live engine, through named actor handles in ``namespace``.

    Needs a connected Ray (a Serve replica is; elsewhere call ``ray.init``
    first). A handle whose actor is gone is dropped from the cache and looked
    up again on the next call; an engine that does not answer within
    ``timeout_s`` raises :class:`EngineUnavailable` (the API answers 503).
    ``executors``: how many executor actors the engine runs (``executor:0`` …).
    """

    def __init__(
        self,
        namespace: str,
        *,
        timeout_s: float = 5.0,
        router_name: str | None = None,
        dispatcher_name: str | None = None,
        executors: int = 0,
    ) -> None:
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.router_name = router_name or ROUTER_NAME
        self.dispatcher_name = dispatcher_name or DISPATCHER_NAME
        self.executors = executors
        self._handles: dict[str, Any] = {}

    def _actor(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            if not ray.is_initialized():  # never start a Ray of our own from a request
                raise EngineUnavailable("not connected to Ray")
            try:
                handle = ray.get_actor(name, namespace=self.namespace)
            except ValueError as exc:  # no such actor (yet)
                raise EngineUnavailable(f"actor {name!r} not found in namespace {self.namespace!r}") from exc
            self._handles[name] = handle
        return handle

    async def _call(self, name: str, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        handle = self._actor(name)
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout_s or self.timeout_s)
        except TimeoutError as exc:
            raise EngineUnavailable(f"{name}.{method} did not answer in {timeout_s or self.timeout_s}s") from exc
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            self._handles.pop(name, None)
            raise EngineUnavailable(f"{name} is unavailable: {type(exc).__name__}") from exc

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        return await self._call(self.router_name, "route", token_in, token_out, amount_in)

    async def pool_summaries(self) -> list[PoolSummary]:
        pool_ids = await self._call(self.router_name, "pool_ids")
        return list(
            await asyncio.gather(*(self._call(pool_actor_name(pid), "summary") for pid in pool_ids))
        )

    async def dispatcher_stats(self) -> dict[str, Any]:
        return await self._call(self.dispatcher_name, "stats")

    async def executor_figures(self) -> list[ExecutorFigures]:
        async def one(index: int) -> ExecutorFigures:
            try:
                return await self._call(executor_name(index), "figures", timeout_s=min(self.timeout_s, 2.0))
            except Exception:  # noqa: BLE001 — one executor away: the others still count
                return ExecutorFigures(str(index))

        return list(await asyncio.gather(*(one(i) for i in range(self.executors))))

    async def disarm(self, order_id: str) -> bool:
        return await self._call(TRIGGER_BOOK_NAME, "disarm", order_id)

    async def trigger_stats(self) -> dict[str, Any]:
        return await self._call(TRIGGER_BOOK_NAME, "stats")

    async def shock_token(self, symbol: str, move_bps: float) -> tuple[float, float]:
        try:
            self._actor(MARKET_NAME)
        except EngineUnavailable as exc:
            raise MarketOff("the market simulator is not running") from exc
        return await self._call(MARKET_NAME, "shock", symbol, move_bps)

    async def launch(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self._call(LAUNCHPAD_NAME, "launch", request, timeout_s=max(self.timeout_s, 30.0))

    async def shock_pool(self, pool_id: str, move_bps: float) -> dict[str, Any]:
        return await self._call(pool_actor_name(pool_id), "shock", move_bps, timeout_s=max(self.timeout_s, 10.0))

    def _chain(self) -> None:
        try:
            self._actor(CHAIN_NAME)
        except EngineUnavailable as exc:
            raise ChainOff("the engine runs without the chain (zero-latency mode)") from exc

    async def chain_info(self) -> dict[str, Any]:
        self._chain()
        return await self._call(CHAIN_NAME, "info")

    async def set_congestion(self, preset: str) -> dict[str, Any]:
        self._chain()
        return await self._call(CHAIN_NAME, "set_congestion", preset)

    async def health(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.gather(
                self._call(self.router_name, "pool_ids", timeout_s=min(self.timeout_s, 2.0)),
                self._call(self.dispatcher_name, "stats", timeout_s=min(self.timeout_s, 2.0)),
            )
        except EngineUnavailable as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 — a probe reports, it never raises
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}

    async def close(self) -> None:
        self._handles.clear()
