"""The storage adapters wired for each engine process, behind ``engine.ports.Connector``.

The composition root hands a :class:`StorageConnector` to every actor; it
carries only the two addresses, so it pickles into Ray workers, and each
process opens the connections it needs there.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from engine.ports import DispatcherStores, ExecutorStores, TriggerStores
from storage.db import open_pool
from storage.events import EventBus
from storage.market import LaunchStore
from storage.orders import OrderStore
from storage.queue import OrderQueue
from storage.ratelimit import SlidingWindowLimiter
from storage.redis_client import open_redis
from storage.trades import PoolTradeStore


@dataclass(frozen=True, slots=True)
class StorageConnector:
    database_url: str
    redis_url: str

    async def executor_stores(self, slots: int = 1) -> ExecutorStores:
        db = await open_pool(self.database_url, min_size=1, max_size=slots + 1)
        return ExecutorStores(
            orders=OrderStore(db), trades=PoolTradeStore(db), events=EventBus(open_redis(self.redis_url)),
            launches=LaunchStore(db),
        )

    async def pool_ledger(self) -> PoolTradeStore:
        return PoolTradeStore(await open_pool(self.database_url, min_size=1, max_size=2))

    async def dispatcher_stores(self, *, starts_per_window: int, window_s: float) -> DispatcherStores:
        redis = open_redis(self.redis_url)
        queue = OrderQueue(redis)
        await queue.ensure_group()
        starts = SlidingWindowLimiter(redis, limit=starts_per_window, window_s=window_s, prefix="engine:starts")
        db = await open_pool(self.database_url, min_size=1, max_size=2)
        return DispatcherStores(orders=OrderStore(db), queue=queue, starts=starts)

    async def trigger_stores(self) -> TriggerStores:
        redis = open_redis(self.redis_url)
        queue = OrderQueue(redis)
        await queue.ensure_group()
        db = await open_pool(self.database_url, min_size=1, max_size=4)
        return TriggerStores(orders=OrderStore(db), events=EventBus(redis), queue=queue, launches=LaunchStore(db))

    async def launch_store(self) -> LaunchStore:
        return LaunchStore(await open_pool(self.database_url, min_size=1, max_size=2))


class StoreHealthChecks:
    """``engine.ports.StoreHealth`` on a PostgreSQL pool and a Redis client."""

    def __init__(self, pool: AsyncConnectionPool, redis: aioredis.Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def ping_database(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def ping_redis(self) -> None:
        await self.redis.ping()
