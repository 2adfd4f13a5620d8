"""The API's port to the engine, and its two implementations.

``EngineGateway`` is what the HTTP layer needs from the engine's actors:
route previews, pool summaries, dispatcher statistics and a health probe.

* :class:`RayGateway` talks to the live actors (found by name in the engine's
  namespace, looked up once and cached; every call is awaited, never
  ``ray.get``). This is what the Serve deployment uses.
* :class:`LocalGateway` runs the same ``sim`` routing on in-process pools
  built from the market config. It is a real, Ray-free implementation of the
  port (no executors: nothing is filled through it), used by the HTTP tests
  and handy for running the API alone.

Both return the engine's own shapes (base units, as the router actor
answers); the API turns them into human units at the edge.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from serve.errors import EngineUnavailable


@runtime_checkable
class EngineGateway(Protocol):
    async def route(self, token_in: str, token_out: str, amount_in: int) -> dict[str, Any]:
        """The router's answer: ``{"route", "error", "quotes", "skipped"}`` (base units)."""

    async def pool_summaries(self) -> list[dict[str, Any]]:
        """Every pool's ``summary()`` (poolId, dex, kind, base, quote, feeBps, spotPrice, reserves...)."""

    async def dispatcher_stats(self) -> dict[str, Any]:
        """``{running, concurrency, rateLimitPerMinute, started, completed, failed, retried}``."""

    async def health(self) -> dict[str, Any]:
        """``{"ok": bool, ...}``; never raises."""

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- Ray


class RayGateway:
    """The live engine, through named actor handles in ``namespace``.

    Needs a connected Ray (a Serve replica is; elsewhere call ``ray.init``
    first). A handle whose actor is gone is dropped from the cache and looked
    up again on the next call; an engine that does not answer within
    ``timeout_s`` raises :class:`EngineUnavailable` (the API answers 503).
    """

    def __init__(
        self,
        namespace: str,
        *,
        timeout_s: float = 5.0,
        router_name: str | None = None,
        dispatcher_name: str | None = None,
    ) -> None:
        from actors.dispatcher import DISPATCHER_NAME
        from actors.router import ROUTER_NAME

        self.namespace = namespace
        self.timeout_s = timeout_s
        self.router_name = router_name or ROUTER_NAME
        self.dispatcher_name = dispatcher_name or DISPATCHER_NAME
        self._handles: dict[str, Any] = {}

    def _actor(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            import ray

            if not ray.is_initialized():  # never start a Ray of our own from a request
                raise EngineUnavailable("not connected to Ray")
            try:
                handle = ray.get_actor(name, namespace=self.namespace)
            except ValueError as exc:  # no such actor (yet)
                raise EngineUnavailable(f"actor {name!r} not found in namespace {self.namespace!r}") from exc
            self._handles[name] = handle
        return handle

    async def _call(self, name: str, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        import ray

        handle = self._actor(name)
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout_s or self.timeout_s)
        except TimeoutError as exc:
            raise EngineUnavailable(f"{name}.{method} did not answer in {timeout_s or self.timeout_s}s") from exc
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            self._handles.pop(name, None)
            raise EngineUnavailable(f"{name} is unavailable: {type(exc).__name__}") from exc

    async def route(self, token_in: str, token_out: str, amount_in: int) -> dict[str, Any]:
        return await self._call(self.router_name, "route", token_in, token_out, amount_in)

    async def pool_summaries(self) -> list[dict[str, Any]]:
        from actors.pool_actor import pool_actor_name

        pool_ids = await self._call(self.router_name, "pool_ids")
        return list(
            await asyncio.gather(*(self._call(pool_actor_name(pid), "summary") for pid in pool_ids))
        )

    async def dispatcher_stats(self) -> dict[str, Any]:
        return await self._call(self.dispatcher_name, "stats")

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


# --------------------------------------------------------------------------- in process


class LocalGateway:
    """The engine port on in-process ``sim`` pools (no Ray, no executors).

    Quotes and pool summaries have exactly the router's and pool actors'
    shapes; the pools do not move (nothing trades through this gateway), so
    ``dispatcher_stats`` reports an idle dispatcher with the configured
    limits.
    """

    def __init__(
        self,
        market_config: str | Path | None = None,
        *,
        executors: int = 10,
        rate_limit_per_minute: int = 100,
        allow_split: bool = False,
        allow_two_hop: bool = True,
        intermediates: tuple[str, ...] = ("SOL", "USDC"),
        max_price_impact_bps: float = 2500.0,
    ) -> None:
        from engine.config import build_pools, load_market_config
        from engine.settings import DEFAULT_MARKET_CONFIG

        config = load_market_config(market_config or DEFAULT_MARKET_CONFIG)
        self.tokens = config.registry()
        self.pools = {p.pool_id: p for p in build_pools(config)}
        self.executors = executors
        self.rate_limit_per_minute = rate_limit_per_minute
        self.allow_split = allow_split
        self.allow_two_hop = allow_two_hop
        self.intermediates = tuple(intermediates)
        self.max_price_impact_bps = max_price_impact_bps

    @classmethod
    def from_settings(cls, settings: Any) -> LocalGateway:
        return cls(
            settings.market_config,
            executors=settings.executors,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            allow_split=settings.routing.allow_split,
            allow_two_hop=settings.routing.allow_two_hop,
            intermediates=tuple(settings.routing.intermediates),
            max_price_impact_bps=settings.routing.max_price_impact_bps,
        )

    async def route(self, token_in: str, token_out: str, amount_in: int) -> dict[str, Any]:
        from sim.decision import RoutingPolicy, decide_route

        policy = RoutingPolicy(
            self.allow_split, self.allow_two_hop, self.intermediates, self.max_price_impact_bps
        )
        pools = list(self.pools.values())
        return decide_route(pools, token_in, token_out, amount_in, time.time(), policy)

    async def pool_summaries(self) -> list[dict[str, Any]]:
        from sim.decision import pool_summary

        return [pool_summary(pool) for pool in self.pools.values()]

    async def dispatcher_stats(self) -> dict[str, Any]:
        return {
            "running": 0,
            "concurrency": self.executors,
            "rateLimitPerMinute": self.rate_limit_per_minute,
            "started": 0,
            "completed": 0,
            "failed": 0,
            "retried": 0,
        }

    async def health(self) -> dict[str, Any]:
        return {"ok": True, "mode": "local"}

    async def close(self) -> None:
        return None
