"""The app builder behind ``serve run configs/serve.yaml`` (and ``serve deploy``).

Serve imports and calls it on the cluster, and it returns at once; so what
it starts must outlive it: PostgreSQL and Redis run detached from the data
dir (reused when already running there; ``dexengine servers stop`` stops
them), and the actors are detached, named in the engine's namespace. The
engine is the same as ``dexengine up`` builds: this goes through the same
composition root.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.settings import EngineSettings
from localservers import ensure_running
from runtime.api_services import ServicesFromSettings
from runtime.root import apply_schema, start_engine_actors
from serve.deployment import build_application


def app_builder(args: dict[str, Any]) -> Any:
    settings = EngineSettings(**args)
    database_url, redis_url = ensure_running(settings.data_dir, settings.database_url, settings.redis_url)
    resolved = settings.model_copy(update={"database_url": database_url, "redis_url": redis_url})
    with ThreadPoolExecutor(max_workers=1) as thread:  # the builder may run inside an event loop
        thread.submit(asyncio.run, apply_schema(database_url)).result()
    start_engine_actors(resolved, detached=True)
    return build_application(ServicesFromSettings(resolved))
