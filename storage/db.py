"""The PostgreSQL connection pool, and a small ``Database`` bundle of the stores."""

from __future__ import annotations

from types import TracebackType

from psycopg_pool import AsyncConnectionPool

from storage.orders import OrderStore
from storage.schema import apply_schema
from storage.trades import PoolTradeStore


async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout: float = 30.0,
    name: str = "dexengine",
) -> AsyncConnectionPool:
    """An opened pool of autocommit connections, ready (``min_size`` connected).

    Autocommit: every store method opens its own explicit transaction, and a
    plain read never leaves a connection idle in a transaction. Connections
    are checked on checkout, so a restarted server is survived transparently.
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        name=name,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except BaseException:
        await pool.close()
        raise
    return pool


class Database:
    """The pool plus the stores on it: ``async with await Database.connect(url) as db``."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.orders = OrderStore(pool)
        self.trades = PoolTradeStore(pool)

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = 1, max_size: int = 4, migrate: bool = True
    ) -> Database:
        pool = await open_pool(url, min_size=min_size, max_size=max_size)
        if migrate:
            try:
                await apply_schema(pool)
            except BaseException:
                await pool.close()
                raise
        return cls(pool)

    async def ping(self) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1")
            return (await cur.fetchone()) == (1,)

    async def close(self) -> None:
        await self.pool.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
