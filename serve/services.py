"""What the API needs, built once per process (one PostgreSQL pool, one Redis client).

``create_app(services_factory)`` calls the factory at startup (the ASGI
lifespan, which Serve runs on every replica) and closes the result at
shutdown. A factory is any zero-argument async callable returning
:class:`Services`; :class:`ServicesFromSettings` is the standard one and
pickles cleanly (it carries only the settings), so it can travel to a Serve
replica inside the app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from serve.gateway import EngineGateway, LocalGateway, RayGateway
from sim.tokens import TokenRegistry

log = logging.getLogger("serve.services")

ServicesFactory = Callable[[], Awaitable["Services"]]


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Knobs of the HTTP layer (defaults fit the engine's)."""

    default_slippage_bps: int = 50
    max_slippage_bps: int = 5_000
    max_page: int = 200
    default_page: int = 50
    # A WebSocket re-reads PostgreSQL when no live event came for this long,
    # so an event whose publish was lost (Redis down) still arrives.
    ws_poll_s: float = 2.0
    ws_max_poll_s: float = 15.0  # ...doubling while nothing happens, up to this
    ws_resubscribe_s: float = 10.0  # without a subscription (Redis down), try again this often
    # The upgrade on /api/orders/execute waits this long for the order message.
    ws_first_message_timeout_s: float = 30.0
    probe_timeout_s: float = 2.0
    # Publishing the first event and queueing a stored order wait at most this
    # long; past it the order is still accepted (clients replay, the sweep queues).
    redis_timeout_s: float = 2.0
    # Per client (X-Client-Id, else address); 0 turns a limit off. See serve.limits.
    order_limit_per_minute: int = 600
    read_limit_per_minute: int = 0
    limit_window_s: float = 60.0
    ws_max_per_client: int = 200


@dataclass
class Services:
    """Everything an endpoint uses. ``closers`` run at shutdown, last first."""

    store: Any  # storage.orders.OrderStore
    queue: Any  # storage.queue.OrderQueue
    bus: Any  # storage.events.EventBus
    redis: Any  # redis.asyncio.Redis
    db: Any  # psycopg_pool.AsyncConnectionPool
    tokens: TokenRegistry
    engine: EngineGateway
    options: ApiOptions = field(default_factory=ApiOptions)
    # fallbacks for /api/queue/metrics when the dispatcher does not answer
    concurrency: int = 10
    rate_limit_per_minute: int = 100
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def aclose(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("closing a service failed")


async def open_services(
    database_url: str,
    redis_url: str,
    *,
    tokens: TokenRegistry,
    engine: EngineGateway,
    options: ApiOptions | None = None,
    db_min_size: int = 1,
    db_max_size: int = 8,
    db_timeout_s: float = 5.0,
    concurrency: int = 10,
    rate_limit_per_minute: int = 100,
) -> Services:
    """Open the pool and the Redis client, and wire the stores on them."""
    import redis.asyncio as aioredis

    from storage.db import open_pool
    from storage.events import EventBus
    from storage.orders import OrderStore
    from storage.queue import OrderQueue

    closers: list[Callable[[], Awaitable[Any]]] = [engine.close]
    # Commands get a socket timeout (a hung Redis must not hang a request);
    # subscriptions get a client of their own without one, because a
    # subscriber legitimately waits for minutes (older redis-py applies
    # socket_timeout to pub/sub reads too).
    redis = aioredis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=30)
    closers.append(redis.aclose)
    pubsub_redis = aioredis.from_url(redis_url, socket_connect_timeout=2.0, health_check_interval=30)
    closers.append(pubsub_redis.aclose)
    try:
        db = await open_pool(database_url, min_size=db_min_size, max_size=db_max_size, timeout=db_timeout_s)
    except BaseException:
        for closer in reversed(closers):
            await closer()
        raise
    closers.append(db.close)
    return Services(
        store=OrderStore(db),
        queue=OrderQueue(redis),
        bus=EventBus(pubsub_redis),
        redis=redis,
        db=db,
        tokens=tokens,
        engine=engine,
        options=options or ApiOptions(),
        concurrency=concurrency,
        rate_limit_per_minute=rate_limit_per_minute,
        closers=closers,
    )


class ServicesFromSettings:
    """The standard factory: engine settings in, :class:`Services` out.

    ``gateway="ray"`` (the default, for Serve) uses the live actors in
    ``settings.namespace``; ``gateway="local"`` runs routing in-process.
    Holds only plain data, so it pickles into a Serve replica.
    """

    def __init__(
        self,
        settings: Any = None,
        *,
        gateway: str = "ray",
        options: ApiOptions | None = None,
        db_max_size: int = 8,
    ) -> None:
        if gateway not in ("ray", "local"):
            raise ValueError("gateway must be 'ray' or 'local'")
        if settings is not None and not isinstance(settings, dict):
            settings = settings.for_actors()
        self.settings = settings  # a plain dict, or None: read the environment at startup
        self.gateway = gateway
        self.options = options
        self.db_max_size = db_max_size

    async def __call__(self) -> Services:
        from engine.config import load_market_config
        from engine.settings import EngineSettings

        settings = EngineSettings() if self.settings is None else EngineSettings.from_actor_dict(self.settings)
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("the API needs DATABASE_URL and REDIS_URL (dexengine up sets both)")
        tokens = load_market_config(settings.market_config).registry()
        engine: EngineGateway
        if self.gateway == "ray":
            engine = RayGateway(settings.namespace)
        else:
            engine = LocalGateway.from_settings(settings)
        return await open_services(
            settings.database_url,
            settings.redis_url,
            tokens=tokens,
            engine=engine,
            options=self.options or options_from(settings),
            db_max_size=self.db_max_size,
            concurrency=settings.executors,
            rate_limit_per_minute=settings.rate_limit_per_minute,
        )


def options_from(settings: Any) -> ApiOptions:
    """The API options an engine's settings ask for (the rest at their defaults)."""
    return ApiOptions(
        order_limit_per_minute=settings.api_order_limit_per_minute,
        read_limit_per_minute=settings.api_read_limit_per_minute,
        limit_window_s=settings.api_limit_window_s,
        ws_max_per_client=settings.ws_max_per_client,
    )
