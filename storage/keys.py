"""API keys in PostgreSQL: one row per key, its secret only as an argon2id hash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from engine.api_keys import IssuedKey, KeyRecord
from engine.records import utc

_COLUMNS = "name, key_id, secret_hash, admin, created_at, revoked_at"
# constants only: nothing a caller sends becomes SQL
_INSERT = f"INSERT INTO api_keys (name, key_id, secret_hash, admin) VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}"
_ALL = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, name"
_REVOKE = (f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE name = %s "
           f"RETURNING {_COLUMNS}")  # fmt: skip
_BY_ID = f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s"


class KeyNameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a key named {name!r} exists already (names stay taken after a revoke)")
        self.name = name


def _record(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(
        name=row["name"],
        key_id=row["key_id"],
        secret_hash=row["secret_hash"],
        admin=row["admin"],
        created_at=utc(row["created_at"]),
        revoked_at=None if row["revoked_at"] is None else utc(row["revoked_at"]),
    )


class KeyStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def add(self, issued: IssuedKey) -> KeyRecord:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                await cur.execute(_INSERT, (issued.name, issued.key_id, issued.secret_hash, issued.admin))
            except errors.UniqueViolation:
                raise KeyNameTaken(issued.name) from None
            row = await cur.fetchone()
        assert row is not None
        return _record(row)

    async def keys(self) -> list[KeyRecord]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_ALL)
            return [_record(row) for row in await cur.fetchall()]

    async def revoke(self, name: str) -> KeyRecord | None:
        """Revoke ``name`` (a revoked key stays revoked); None when there is no such key."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_REVOKE, (name,))
            row = await cur.fetchone()
        return None if row is None else _record(row)

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_BY_ID, (key_id,))
            row = await cur.fetchone()
        return None if row is None else _record(row)

    async def any_active(self) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)")
            row = await cur.fetchone()
        return bool(row and row[0])
