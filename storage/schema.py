"""Applies ``storage/sql/*.sql`` in name order, once each, under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("storage.schema")

# pg_advisory_xact_lock key: any constant bigint unique to this application
SCHEMA_LOCK_KEY = 0x6465_7865_6E67_0001  # "dexeng" + 1

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename   text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """Every ``.sql`` file shipped in ``storage/sql``, in name order."""
    folder = resources.files("storage") / "sql"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name, f.read_text(encoding="utf-8")) for f in files]


async def apply_schema(target: AsyncConnection | AsyncConnectionPool) -> list[str]:
    """Apply the migrations not applied yet; return the names applied now.

    One transaction for the whole run, serialised across processes by a
    transaction-level advisory lock, so concurrent starters are safe and a
    failing file leaves nothing half-applied.
    """
    if isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            return await _apply(conn)
    return await _apply(target)


async def _apply(conn: AsyncConnection) -> list[str]:
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        await conn.execute(_MIGRATIONS_TABLE)
        cur = await conn.execute("SELECT filename, checksum FROM schema_migrations")
        done = {name: checksum for name, checksum in await cur.fetchall()}
        for migration in migrations():
            if migration.filename in done:
                if done[migration.filename] != migration.checksum:
                    log.warning(
                        "migration %s changed after it was applied; not re-applying", migration.filename
                    )
                continue
            log.info("applying %s", migration.filename)
            # no parameters: psycopg sends it with the simple protocol, so a
            # file may hold many statements
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s)",
                (migration.filename, migration.checksum),
            )
            applied_now.append(migration.filename)
    return applied_now
