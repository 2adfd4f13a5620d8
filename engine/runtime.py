"""Brings up what the engine runs on: PostgreSQL, Redis (ours, unless URLs
are given), the schema, and Ray (local, or an existing cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import ray

from engine.settings import EngineSettings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def servers(settings: EngineSettings) -> Iterator[EngineSettings]:
    """Start the PostgreSQL and Redis that are missing; yield settings with both URLs."""
    from storage.local import local_servers

    with local_servers(settings.data_dir, settings.database_url, settings.redis_url) as (db, rd):
        resolved = settings.model_copy(update={"database_url": db, "redis_url": rd})
        asyncio.run(_apply_schema(db))
        yield resolved


async def _apply_schema(url: str) -> None:
    from storage.db import open_pool
    from storage.schema import apply_schema

    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        await apply_schema(pool)
    finally:
        await pool.close()


def init_ray(settings: EngineSettings, *, dashboard: bool | None = None) -> None:
    """Join ``ray_address`` when given, else start a local Ray sized for this machine."""
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.namespace)
        return
    want_dashboard = settings.dashboard if dashboard is None else dashboard
    ray.init(
        num_cpus=settings.num_cpus,
        namespace=settings.namespace,
        include_dashboard=want_dashboard,
        dashboard_host=settings.dashboard_host,
        dashboard_port=settings.dashboard_port,
        object_store_memory=settings.object_store_mb * 1024 * 1024,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
