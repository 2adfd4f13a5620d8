"""Session-wide fixtures: one real PostgreSQL, one real Redis and one local Ray per test session.

Given ``DATABASE_URL`` / ``REDIS_URL`` the tests use those servers (and only
create, then drop, a database of their own, and only touch Redis keys under a
per-test prefix); otherwise they start a ``LocalPostgres`` and a
``LocalRedis`` from the pip wheels in a temporary folder and stop them (and
remove the folder) at the end of the session.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from localservers import LocalServers, local_servers
from storage.db import open_pool
from storage.redis_client import open_redis
from storage.schema import apply_schema

TABLES = (
    "pool_trades", "order_status_history", "pool_genesis", "orders", "launched_pools", "launched_tokens", "api_keys",
)


@pytest.fixture(scope="session")
def storage_tmp() -> Iterator[Path]:
    """A private temporary folder for server data (outside pytest's 0700 tree)."""
    root = Path(tempfile.mkdtemp(prefix="dexengine-it-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def servers(storage_tmp: Path) -> Iterator[LocalServers]:
    with local_servers(
        storage_tmp / "servers",
        os.environ.get("DATABASE_URL") or None,
        os.environ.get("REDIS_URL") or None,
        durable=False,
    ) as running:
        yield running


def _with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (kept a URL when it was one)."""
    if "://" in url:
        return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    return make_conninfo(url, dbname=name)


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await apply_schema(conn)


@pytest.fixture(scope="session")
def database_url(servers: LocalServers) -> Iterator[str]:
    """A fresh database for this session, with the schema applied; dropped at the end."""
    name = f"dexengine_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(servers.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _with_database(servers.database_url, name)
        # in a thread of its own: this sync fixture must not touch the session's event loop
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, _migrate(url)).result()
        yield url
    finally:
        with psycopg.connect(servers.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
async def pg_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(database_url, min_size=2, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def db(pg_pool: AsyncConnectionPool) -> AsyncConnectionPool:
    """The session pool on empty tables."""
    async with pg_pool.connection() as conn:
        await conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, TABLES))
            )
        )
    return pg_pool


@pytest.fixture(scope="session")
def redis_url(servers: LocalServers) -> str:
    return servers.redis_url


@pytest.fixture(scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def rkey(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A unique key prefix for this test; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)

@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray, sized for this 2-core machine, shut down at the end."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        namespace="dexengine-tests",
        logging_level=logging.WARNING,
        log_to_driver=True,
        # a node killed by a test (test_two_nodes) is declared dead in ~3-4 s rather than ~15 s
        _system_config={"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
    )
    try:
        yield
    finally:
        from tests.integration.engine_harness import KEEPER

        KEEPER.release()
        ray.shutdown()


def _engine_group(item: pytest.Item | None) -> str | None:
    return getattr(getattr(item, "module", None), "ENGINE_GROUP", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of one ``ENGINE_GROUP`` run one after another, where the group's first one was, so
    that they share one engine (``tests.integration.engine_harness.EngineKeeper``)."""
    first: dict[str, int] = {}
    ranked = []
    for index, item in enumerate(items):
        group = _engine_group(item)
        if group is not None:
            first.setdefault(group, index)
        ranked.append((first[group] if group is not None else index, index, item))
    items[:] = [item for _, _, item in sorted(ranked, key=lambda rank: rank[:2])]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the kept engine once the next test is not of the same group (nor of the same module)."""
    if nextitem is not None and getattr(nextitem, "module", None) is getattr(item, "module", None):
        return
    group = _engine_group(item)
    if group is None or group != _engine_group(nextitem):
        from tests.integration.engine_harness import KEEPER

        KEEPER.release()
