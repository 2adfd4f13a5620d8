"""The PostgreSQL connection pool every store runs on."""

from __future__ import annotations

import time
import weakref

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


class CheckWhenIdle:
    """Check a connection on checkout only when it has not been used for ``fresh_s``.

    A check is a round trip; checking on every checkout cost one per statement
    on the hot path. A connection returned moments ago is as good as the last
    statement it ran (a broken one is not returned to the pool); one that sat
    idle may have lost its server (a restart), so it is checked, and replaced
    if that fails: a restarted server is still survived transparently.
    """

    def __init__(self, fresh_s: float = 2.0) -> None:
        self.fresh_s = fresh_s
        self._returned: weakref.WeakKeyDictionary[AsyncConnection, float] = weakref.WeakKeyDictionary()
        self.checks = 0

    async def check(self, conn: AsyncConnection) -> None:
        returned = self._returned.get(conn)
        if returned is not None and time.monotonic() - returned < self.fresh_s:
            return
        self.checks += 1
        await AsyncConnectionPool.check_connection(conn)

    async def returned(self, conn: AsyncConnection) -> None:
        self._returned[conn] = time.monotonic()


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
    idle for a while are checked on checkout (:class:`CheckWhenIdle`).
    """
    checker = CheckWhenIdle()
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        name=name,
        open=False,
        kwargs={"autocommit": True},
        check=checker.check,
        reset=checker.returned,
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except BaseException:
        await pool.close()
        raise
    return pool
