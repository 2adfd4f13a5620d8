"""The production Serve API on a live engine, for end-to-end modules: one per module, and a WebSocket reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import websockets
from ray import serve

from engine.settings import EngineSettings
from runtime.root import start_api
from tests.integration.engine_harness import KEEPER, base_settings, running_engine, settings_key


def wait_healthy(base: str, timeout_s: float = 60) -> None:
    """Until the API at ``base`` answers /health with 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not come up"
        time.sleep(0.3)


@contextlib.contextmanager
def serving(settings: EngineSettings) -> Iterator[str]:
    """The engine and the API on ``settings``; yields the API's base URL once it answers."""
    with running_engine(settings):
        try:  # an API that never came up is shut down too, or the next module's cannot start
            start_api(settings)
            base = f"http://127.0.0.1:{settings.api.port}"
            wait_healthy(base)
            yield base
        finally:
            serve.shutdown()


def shared_serving(settings: EngineSettings) -> tuple[EngineSettings, str]:
    """The kept engine and API if they run on the same settings, else new ones, kept (see ``EngineKeeper``)."""
    return KEEPER.get(settings_key(settings, "serve"),
                      lambda stack: (settings, stack.enter_context(serving(settings))))  # fmt: skip


def market_settings(database_url: str, redis_url: str) -> EngineSettings:
    """The seed's shape ten times faster with the market moving, through Serve on a free port (the modules
    of ``ENGINE_GROUP = "serve, market"`` share one such engine)."""
    from localservers.ports import free_port

    return base_settings(
        database_url, redis_url,
        latency={"quote_s": 0.02, "quote_jitter_s": 0.01, "execution_min_s": 0.2, "execution_max_s": 0.3},
        market={"enabled": True, "tick_s": 0.2}, api={"port": free_port()},
    )  # fmt: skip


async def stream(url: str, timeout: float = 60) -> tuple[list[dict], int | None]:
    """Every status event until the server closes; (events, close code)."""
    events = []
    async with websockets.connect(url) as ws:
        try:
            while True:
                raw = await asyncio.wait_for(ws.recv(), timeout)
                event = json.loads(raw)
                if "status" in event and "seq" in event:
                    events.append(event)
        except websockets.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd else None
