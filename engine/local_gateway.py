"""The API's ``EngineGateway`` port in process: ``sim`` routing on pools built from the market config.

No Ray and no executors (nothing is filled through it, so the pools do not
move): the HTTP tests use it, and it runs the API alone. Its answers have
exactly the router's and the pool actors' shapes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.config import build_pools, load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.decision import RoutingPolicy, decide_route, pool_summary



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
        policy = RoutingPolicy(
            self.allow_split, self.allow_two_hop, self.intermediates, self.max_price_impact_bps
        )
        pools = list(self.pools.values())
        return decide_route(pools, token_in, token_out, amount_in, time.time(), policy)

    async def pool_summaries(self) -> list[dict[str, Any]]:
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
