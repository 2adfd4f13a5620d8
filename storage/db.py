"""The PostgreSQL connection pool every store runs on."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool



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
