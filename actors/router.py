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

from engine.settings import EngineSettings
from sim.pools import restore_pool
from sim.pools.base import SimError, SwapQuote
from sim.routing import QuoteFailure, all_quotes, find_best_route

ROUTER_NAME = "router"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class OrderRouter:
    def __init__(self, pools: dict[str, dict[str, Any]], settings: dict[str, Any]) -> None:
        """``pools``: pool id -> {"tokens": [sym, sym], "handle": PoolActor handle}."""
        self._settings = EngineSettings.from_actor_dict(settings)
        self._pools = pools

    def candidates(self, token_in: str, token_out: str) -> list[str]:
        """Pools that can take part in a route from token_in to token_out."""
        routing = self._settings.routing
        wanted: list[set[str]] = [{token_in, token_out}]
        if routing.allow_two_hop:
            for via in routing.intermediates:
                if via not in (token_in, token_out):
                    wanted += [{token_in, via}, {via, token_out}]
        return [pid for pid, p in self._pools.items() if set(p["tokens"]) in wanted]

    async def _observe(self, pool_id: str) -> dict[str, Any]:
        handle = self._pools[pool_id]["handle"]
        timeout = self._settings.routing.pool_timeout_s
        started = time.perf_counter()
        try:
            seen = await asyncio.wait_for(handle.observe.remote(), timeout)
        except asyncio.TimeoutError:
            return {"poolId": pool_id, "error": "POOL_TIMEOUT", "message": f"no answer in {timeout}s"}
        except ray.exceptions.RayActorError as exc:
            return {"poolId": pool_id, "error": "POOL_UNAVAILABLE", "message": str(exc)[:200]}
        seen["latency_ms"] = (time.perf_counter() - started) * 1000
        return seen

    async def route(self, token_in: str, token_out: str, amount_in: int) -> dict[str, Any]:
        """The best route now, every quote seen, and the pools that were skipped.

        When nothing can fill, ``route`` is None and ``error`` says why (domain
        errors travel as data: they are answers, not crashes).
        """
        pool_ids = self.candidates(token_in, token_out)
        seen = await asyncio.gather(*(self._observe(pid) for pid in pool_ids))
        skipped = [s for s in seen if "error" in s]
        pools = [restore_pool(s["snapshot"]) for s in seen if "error" not in s]
        now = time.time()
        quotes = [_quote_json(q) for q in all_quotes(pools, token_in, token_out, amount_in, now)]
        routing = self._settings.routing
        try:
            route = find_best_route(
                pools,
                token_in,
                token_out,
                amount_in,
                now,
                allow_split=routing.allow_split,
                allow_two_hop=routing.allow_two_hop,
                intermediates=routing.intermediates,
            )
        except SimError as exc:
            # Every venue unreachable is worth a retry; a real "no" is not.
            transient = bool(skipped) and not pools
            code = "POOLS_UNAVAILABLE" if transient else exc.code
            error = {"code": code, "message": str(exc), "transient": transient}
            return {"route": None, "error": error, "quotes": quotes, "skipped": skipped}
        if route.price_impact_bps > routing.max_price_impact_bps:
            error = {
                "code": "INSUFFICIENT_LIQUIDITY",
                "message": (
                    f"not enough liquidity: the best route would move the price"
                    f" {route.price_impact_bps / 100:.1f}% (limit"
                    f" {routing.max_price_impact_bps / 100:.1f}%)"
                ),
                "transient": False,
            }
            return {"route": None, "error": error, "quotes": quotes, "skipped": skipped}
        return {"route": route.to_dict(), "error": None, "quotes": quotes, "skipped": skipped}

    async def pool_ids(self) -> list[str]:
        return list(self._pools)


def _quote_json(item: SwapQuote | QuoteFailure) -> dict[str, Any]:
    if isinstance(item, QuoteFailure):
        return {"poolId": item.pool_id, "dex": item.dex, "error": item.code, "message": item.message}
    if isinstance(item, SwapQuote):
        q = item.to_dict()
        return {
            "poolId": q["pool_id"],
            "dex": q["dex"],
            "amountIn": str(q["amount_in"]),
            "amountOut": str(q["amount_out"]),
            "fee": str(q["fee"]),
            "feeBps": round(q["fee"] * 10_000 / q["amount_in"], 3) if q["amount_in"] else 0,
            "priceImpactBps": round(q["price_impact_bps"], 3),
            "executionPrice": q["execution_price"],
        }
    return dict(item)
