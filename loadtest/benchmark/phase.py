"""An engine of its own for each phase of the benchmark, and its memory samples."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from loadtest.benchmark.processes import memory_by_role
from loadtest.engine_process import NO_CLIENT_LIMITS, EngineProcess

# phase 3 and 4: the seed's latencies, no market, and starts paced at 3 a second
# (the rate limiter as a pacer: 3 starts per 1-s window), so that orders queue
# behind each other and their events come at a steady rate
PACED = {"MARKET__ENABLED": "false", "DISPATCH__RATE_LIMIT_PER_MINUTE": "3", "DISPATCH__RATE_LIMIT_WINDOW_S": "1"}
PACED_RATE = 3.0
# every phase lets a fresh engine settle before its idle memory sample
SETTLE_S = 8


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def effective_settings(engine: EngineProcess) -> Any:
    """The EngineSettings the child engine sees (configs/engine.yaml + its DEXENGINE_*)."""
    from engine.settings import EngineSettings

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(engine.environment())
        return EngineSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Phase:
    """An engine for one phase, with memory samples."""

    def __init__(self, name: str, settings: dict[str, str], out: Path) -> None:
        self.name = name
        # one client process stands for many clients: the API's per-client limits are off
        self.engine = EngineProcess({**NO_CLIENT_LIMITS, **settings}, log_path=out / f"engine-{name}.log",
                                    name=f"bench-{name}")  # fmt: skip
        self.memory: dict[str, Any] = {}

    def __enter__(self) -> Phase:
        log(f"{self.name}: starting the engine ({self.engine.url}) ...")
        self.engine.start()
        log(f"{self.name}: engine up in {self.engine.started_s:.0f}s")
        self.settings = effective_settings(self.engine)
        return self

    def __exit__(self, *exc: object) -> None:
        log(f"{self.name}: stopping the engine ...")
        self.engine.stop()

    async def settle(self) -> None:
        """Let the fresh engine settle, then take its idle memory."""
        await asyncio.sleep(SETTLE_S)
        self.sample_memory("idle")

    def sample_memory(self, label: str) -> dict[str, Any]:
        mem = memory_by_role(self.engine.processes(), self.engine.proc.pid)
        prev = self.memory.get(label)
        if prev is None or mem["totalMB"] > prev["totalMB"]:
            self.memory[label] = mem  # keep the peak of the samples of a label
        return mem

    async def memory_sampler(self, label: str, every_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await asyncio.to_thread(self.sample_memory, label)

    @contextlib.asynccontextmanager
    async def sampling_memory(self, label: str, every_s: float = 5.0) -> AsyncIterator[None]:
        """Memory samples under ``label`` every ``every_s`` seconds while the block runs."""
        sampler = asyncio.ensure_future(self.memory_sampler(label, every_s))
        try:
            yield
        finally:
            sampler.cancel()
