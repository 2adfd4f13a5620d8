"""The API's services wired to the real adapters: PostgreSQL, Redis and the engine's actors.

:class:`ServicesFromSettings` is the factory ``serve.app.create_app`` takes;
it holds only plain data, so it pickles into a Serve replica and opens its
connections there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from actors.gateway import RayGateway
from engine.api_keys import KeyRing
from engine.config import load_market_config
from engine.local_gateway import LocalGateway
from engine.ports import EngineGateway
from engine.settings import ApiSettings, EngineSettings
from serve.services import Services
from sim.tokens import TokenRegistry
from storage.db import open_pool
from storage.event_hub import EventHub, HubFeed
from storage.events import EventBus
from storage.keys import KeyStore
from storage.market import LaunchStore
from storage.order_figures import OrderFiguresQuery
from storage.orders import OrderStore
from storage.queue import OrderQueue
from storage.connect import StoreHealthChecks
from storage.ratelimit import RedisRateWindows
from storage.trades import PoolTradeStore


async def open_services(
    database_url: str,
    redis_url: str,
    *,
    tokens: TokenRegistry,
    engine: EngineGateway,
    options: ApiSettings | None = None,
    db_min_size: int = 1,
    db_max_size: int = 8,
    db_timeout_s: float = 5.0,
    concurrency: int = 10,
    rate_limit_per_minute: int = 100,
) -> Services:
    """Open the pool and the Redis client, and wire the stores on them."""
    closers: list[Callable[[], Awaitable[Any]]] = [engine.close]
    # Commands get a socket timeout (a hung Redis must not hang a request);
    # publishing keeps a client of its own, as before. This process's
    # WebSockets follow events through one subscription, the hub's, on a
    # connection without a socket timeout (a subscriber legitimately waits
    # for minutes).
    redis = aioredis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=30)
    closers.append(redis.aclose)
    pubsub_redis = aioredis.from_url(redis_url, socket_connect_timeout=2.0, health_check_interval=30)
    closers.append(pubsub_redis.aclose)
    hub = EventHub(redis_url)
    closers.append(hub.aclose)
    try:
        db = await open_pool(database_url, min_size=db_min_size, max_size=db_max_size, timeout=db_timeout_s)
    except BaseException:
        for closer in reversed(closers):
            await closer()
        raise
    closers.append(db.close)
    options = options or ApiSettings()
    keys = KeyRing(KeyStore(db), mode=options.auth, open_address=not options.on_loopback,
                   cache_s=options.auth_cache_s)  # fmt: skip
    return Services(
        store=OrderStore(db),
        queue=OrderQueue(redis),
        bus=HubFeed(EventBus(pubsub_redis), hub),
        health=StoreHealthChecks(db, redis),
        windows=RedisRateWindows(redis),
        tokens=tokens,
        engine=engine,
        options=options,
        concurrency=concurrency,
        rate_limit_per_minute=rate_limit_per_minute,
        closers=closers,
        launches=LaunchStore(db),
        trades=PoolTradeStore(db),
        order_figures=OrderFiguresQuery(db),
        keys=keys,
    )


class ServicesFromSettings:
    """The standard factory: engine settings in, :class:`Services` out.

    ``gateway="ray"`` (the default, for Serve) uses the live actors in
    ``settings.ray.namespace``; ``gateway="local"`` runs routing in-process.
    Holds only plain data, so it pickles into a Serve replica.
    """

    def __init__(
        self,
        settings: Any = None,
        *,
        gateway: str = "ray",
        options: ApiSettings | None = None,
        db_max_size: int = 8,
    ) -> None:
        if gateway not in ("ray", "local"):
            raise ValueError("gateway must be 'ray' or 'local'")
        if settings is not None and not isinstance(settings, dict):
            settings = settings.model_dump(mode="json")
        self.settings = settings  # a plain dict, or None: read the environment at startup
        self.gateway = gateway
        self.options = options
        self.db_max_size = db_max_size

    async def __call__(self) -> Services:
        settings = EngineSettings() if self.settings is None else EngineSettings.model_validate(self.settings)
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("the API needs DATABASE_URL and REDIS_URL (dexengine up sets both)")
        tokens = load_market_config(settings.market.config).registry()
        engine: EngineGateway
        if self.gateway == "ray":
            engine = RayGateway(settings.ray.namespace, executors=len(settings.dispatch.slots_per_executor()))
        else:
            engine = LocalGateway(settings)
        return await open_services(
            settings.database_url,
            settings.redis_url,
            tokens=tokens,
            engine=engine,
            options=self.options or settings.api,
            db_max_size=self.db_max_size,
            concurrency=settings.dispatch.executors,
            rate_limit_per_minute=settings.dispatch.rate_limit_per_minute,
        )
