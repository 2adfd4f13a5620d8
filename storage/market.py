"""Launched tokens and their pools in PostgreSQL: what every process learns the market's new tokens from."""

from __future__ import annotations

from typing import Any

from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from engine.errors import TokenExists
from sim.launches import Launch
from sim.tokens import Token
from storage._codec import jsonb


class LaunchStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def record_launch(self, launch: Launch) -> None:
        """The token and its first pool, in one transaction; :class:`TokenExists` when taken."""
        details: dict[str, Any] = {
            "liquidity": format(launch.liquidity, "f"), "price": format(launch.price, "f"), "afterS": launch.after_s,
        }  # fmt: skip
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO launched_tokens (symbol, mint, decimals) VALUES (%s, %s, %s)",
                    (launch.symbol, launch.mint, launch.decimals),
                )
                await conn.execute(
                    "INSERT INTO launched_pools (pool_id, token_x, token_y, dex, launch) VALUES (%s, %s, %s, %s, %s)",
                    (launch.pool_id, launch.symbol, launch.pair_with, launch.dex, jsonb(details)),
                )
        except errors.UniqueViolation:
            raise TokenExists(launch.symbol) from None

    async def tokens(self) -> list[Token]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute("SELECT symbol, mint, decimals FROM launched_tokens ORDER BY created_at")).fetchall()
        return [Token(symbol, mint, decimals) for symbol, mint, decimals in rows]

    async def pools(self) -> list[tuple[str, str, str]]:
        """(pool id, token x, token y) of every launched pool, oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT pool_id, token_x, token_y FROM launched_pools ORDER BY created_at")
            return [(pool_id, x, y) for pool_id, x, y in await cur.fetchall()]

    async def genesis(self, pool_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,))).fetchone()
        return None if row is None else row[0]
