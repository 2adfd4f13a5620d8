"""Orders counted by current status and DEX, for ``/metrics`` (the ``OrderFigures`` port)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

NOT_ROUTED = "none"  # the DEX label of an order no route has been chosen for yet

_BY_STATUS_AND_DEX = f"""
SELECT status, coalesce(nullif(dex, ''), '{NOT_ROUTED}') AS dex, count(*)
FROM orders GROUP BY 1, 2
"""


async def count_by_status_and_dex(pool: AsyncConnectionPool) -> dict[tuple[str, str], int]:
    """``{(status, dex): orders}``, only the pairs that have orders (one scan of ``orders``)."""
    async with pool.connection() as conn:
        cur = await conn.execute(_BY_STATUS_AND_DEX)
        return {(status, dex): int(n) for status, dex, n in await cur.fetchall()}


class OrderFiguresQuery:
    """The ``OrderFigures`` port on a connection pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def count_by_status_and_dex(self) -> dict[tuple[str, str], int]:
        return await count_by_status_and_dex(self._pool)
