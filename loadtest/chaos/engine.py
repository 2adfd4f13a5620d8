"""The engine chaos runs against, all in this process: PostgreSQL and Redis from the
pip wheels in a temporary data dir, a local Ray of its own, the actors, Serve.

:func:`start_engine` is the one place that brings it up (servers -> schema ->
Ray -> actors -> Serve) and :func:`stop_engine` the one that takes it down.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loadtest.engine_process import free_port, healthy

if TYPE_CHECKING:
    from actors.system import EngineActors
    from engine.settings import EngineSettings
    from localservers import LocalServers
    from runtime.root import RunningEngine

HEALTHY_WITHIN_S = 180


@dataclass
class ChaosEngine:
    """PostgreSQL, Redis, Ray, the actors and Serve, all owned by this process."""

    running: RunningEngine
    exit_stack: contextlib.ExitStack
    # held while the actors are replaced, so that stopping never sees half an engine
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def settings(self) -> EngineSettings:
        return self.running.settings

    @property
    def servers(self) -> LocalServers:  # the faults restart them
        return self.running.servers

    @property
    def actors(self) -> EngineActors:
        return self.running.actors

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api.port}"


def isolate_ray() -> Path:
    """A Ray of our own: never join a cluster someone started with `ray start`."""
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rc-", dir="/tmp")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    return Path(os.environ["RAY_TMPDIR"])


def chaos_settings(root: Path, seed: int, *, chain: bool = False) -> EngineSettings:
    """The seed's shape ten times faster, no rate limit, the market moving fast; ``chain``: orders land
    through the simulated chain (its default 400 ms slots and the calm preset) instead of the seed's sleeps."""
    from engine.settings import EngineSettings

    return EngineSettings(
        data_dir=root / "servers",
        latency={"quote_s": 0.02, "quote_jitter_s": 0.01, "execution_min_s": 0.2, "execution_max_s": 0.4},
        retry={"max_retries": 3, "base_delay_s": 0.5, "factor": 2.0},
        dispatch={"rate_limit_per_minute": 0, "sweep_interval_s": 2.0},
        market={"enabled": True, "tick_s": 0.5},
        chain={"enabled": "on" if chain else "off"},
        api={"port": free_port()},
        ray={"namespace": f"chaos-{uuid.uuid4().hex[:8]}", "dashboard": False, "object_store_mb": 256,
             "metrics_export_port": 0},  # Ray picks: never a fixed port another engine holds
        seed=seed,
    )


def start_engine(root: Path, seed: int, *, chain: bool = False) -> ChaosEngine:
    """The engine from the composition root (servers -> schema -> Ray -> actors -> Serve), healthy.

    On failure whatever was started is stopped again before the error goes on.
    """
    from runtime.root import running_engine

    stack = contextlib.ExitStack()
    try:
        running = stack.enter_context(running_engine(chaos_settings(root, seed, chain=chain), dashboard=False, durable=False))
        engine = ChaosEngine(running, stack)
        _wait_healthy(engine.base_url, HEALTHY_WITHIN_S)
    except BaseException:
        with contextlib.suppress(Exception):
            stack.close()
        raise
    return engine


def stop_engine(engine: ChaosEngine) -> None:
    """Serve, then the actors, then Ray, then Redis and PostgreSQL."""
    with engine.lock:
        engine.exit_stack.close()


def _wait_healthy(base: str, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if healthy(base, timeout=3):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the API at {base} did not become healthy in {timeout_s:g}s")
