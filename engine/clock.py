"""The wall clock, as the lifecycle's ``Clock`` port (tests use a fake one)."""

from __future__ import annotations

import asyncio
import time


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
