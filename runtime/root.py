"""The composition root: the one place that builds the whole engine.

servers (ours, unless URLs are given) → schema → Ray (local, or a cluster)
→ actors → the Serve API. The ``dexengine`` command, the Serve config's app
builder, the tests, the chaos command and the benchmarks all come through
here; nothing else wires adapters to ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import ray
from ray import serve

from actors.system import EngineActors, start_actors, stop_actors
from engine.config import load_market_config
from engine.settings import EngineSettings
from localservers import LocalServers, local_servers
from runtime.api_services import ServicesFromSettings
from serve.deployment import run_serve
from storage.connect import StorageConnector

log = logging.getLogger(__name__)


@contextlib.contextmanager
def servers(settings: EngineSettings, *, durable: bool = True) -> Iterator[tuple[EngineSettings, LocalServers]]:
    """Start the PostgreSQL and Redis that are missing, apply the schema; yield settings with both URLs.

    ``durable=False`` trades PostgreSQL's fsync for speed: for throwaway data dirs only.
    """
    with local_servers(settings.data_dir, settings.database_url, settings.redis_url, durable=durable) as local:
        resolved = settings.model_copy(update={"database_url": local.database_url, "redis_url": local.redis_url})
        asyncio.run(apply_schema(local.database_url))
        yield resolved, local


async def apply_schema(url: str) -> None:
    from storage.db import open_pool
    from storage.schema import apply_schema as apply

    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        await apply(pool)
    finally:
        await pool.close()


def init_ray(settings: EngineSettings, *, dashboard: bool | None = None) -> bool:
    """Join ``ray_address`` when given, else start a local Ray sized for this machine.

    True when this call started (and so owns) the Ray it connected to.
    """
    if ray.is_initialized():
        return False
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray.namespace)
        return False
    want_dashboard = settings.ray.dashboard if dashboard is None else dashboard
    # read by Serve's controller, which inherits the environment of the Ray we start
    os.environ.setdefault("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", f"{settings.ray.serve_control_loop_s:g}")
    ray.init(
        num_cpus=settings.ray.num_cpus,
        namespace=settings.ray.namespace,
        include_dashboard=want_dashboard,
        dashboard_host=settings.ray.dashboard_host,
        dashboard_port=settings.ray.dashboard_port,
        object_store_memory=settings.ray.object_store_mb * 1024 * 1024,
        _metrics_export_port=settings.ray.metrics_export_port,  # Prometheus scrapes ray_* here; 0: Ray picks
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def connector_for(settings: EngineSettings) -> StorageConnector:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("the engine needs both a database URL and a Redis URL (servers() resolves them)")
    return StorageConnector(settings.database_url, settings.redis_url)


def start_engine_actors(
    settings: EngineSettings, *, start_dispatcher: bool = True, detached: bool = False
) -> EngineActors:
    """Every actor of the engine on the connected Ray, wired to the stores."""
    tokens = load_market_config(settings.market.config).registry()
    connector = connector_for(settings)
    return start_actors(settings, connector, tokens, start_dispatcher=start_dispatcher, detached=detached)


def start_api(settings: EngineSettings, *, blocking: bool = False) -> None:
    """The Serve API on the engine's actors, on ``settings.api.host:port``."""
    run_serve(settings, ServicesFromSettings(settings), blocking=blocking)


@dataclass
class RunningEngine:
    settings: EngineSettings  # with the URLs resolved
    actors: EngineActors  # replaced when a fault test restarts them
    servers: LocalServers


@contextlib.contextmanager
def running_engine(
    settings: EngineSettings, *, api: bool = True, dashboard: bool | None = None, durable: bool = True
) -> Iterator[RunningEngine]:
    """The whole engine, up until the block ends; then stopped in reverse order. An API beyond loopback
    with no API key to require is refused before anything else starts (:func:`runtime.keys.check_exposure`)."""
    from runtime.keys import check_exposure

    with servers(settings, durable=durable) as (resolved, local):
        if api:
            check_exposure(resolved)
        owns_ray = init_ray(resolved, dashboard=dashboard)
        try:
            engine = RunningEngine(resolved, start_engine_actors(resolved), local)
            try:
                if api:
                    start_api(resolved)
                yield engine
            finally:
                if api:
                    serve.shutdown()
                stop_actors(engine.actors)
        finally:
            if owns_ray:
                ray.shutdown()
