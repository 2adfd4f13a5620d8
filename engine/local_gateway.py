"""The API's ``EngineGateway`` port in process: ``sim`` routing on pools built from the market config.

No Ray and no executors (nothing is filled through it, so the pools do not
move): the HTTP tests use it, and it runs the API alone. Its answers have
exactly the router's and the pool actors' shapes.
"""

from __future__ import annotations

import time
from typing import Any

from engine.config import build_pools, load_market_config
from engine.errors import ChainOff, EngineUnavailable, LaunchRefused, MarketOff
from engine.lifecycle_figures import ExecutorFigures
from engine.settings import EngineSettings
from sim.decision import PoolSummary, RouteDecision, decide_route, pool_summary



class LocalGateway:
    """The engine port on in-process ``sim`` pools (no Ray, no executors).

    Quotes and pool summaries have exactly the router's and pool actors'
    shapes; the pools do not move (nothing trades through this gateway), so
    ``dispatcher_stats`` reports an idle dispatcher with the configured
    limits.
    """

    def __init__(self, settings: EngineSettings | None = None) -> None:
        settings = settings or EngineSettings.model_validate({})
        config = load_market_config(settings.market.config)
        self.tokens = config.registry()
        self.pools = {p.pool_id: p for p in build_pools(config)}
        self.executors = settings.dispatch.executors
        self.rate_limit_per_minute = settings.dispatch.rate_limit_per_minute
        self.policy = settings.routing.policy()

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        pools = list(self.pools.values())
        return decide_route(pools, token_in, token_out, amount_in, time.time(), self.policy)

    async def pool_summaries(self) -> list[PoolSummary]:
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

    async def disarm(self, order_id: str) -> bool:
        return False  # no trigger book in process: nothing is armed here

    async def trigger_stats(self) -> dict[str, Any]:
        return {"ready": False}

    async def executor_figures(self) -> list[ExecutorFigures]:
        return []  # no executors in process: nothing runs orders here

    async def shock_token(self, symbol: str, move_bps: float) -> tuple[float, float]:
        raise MarketOff("the API runs without an engine: there is no market simulator")

    async def launch(self, request: dict[str, Any]) -> dict[str, Any]:
        raise LaunchRefused("NO_ENGINE", "the API runs without an engine: nothing can be launched here")

    async def shock_pool(self, pool_id: str, move_bps: float) -> dict[str, Any]:
        raise EngineUnavailable("the API runs without an engine: its pools do not move")

    async def chain_info(self) -> dict[str, Any]:
        raise ChainOff("the API runs without an engine: there is no chain")

    async def set_congestion(self, preset: str) -> dict[str, Any]:
        raise ChainOff("the API runs without an engine: there is no chain")

    async def health(self) -> dict[str, Any]:
        return {"ok": True, "mode": "local"}

    async def close(self) -> None:
        return None
