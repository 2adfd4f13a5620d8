"""Reading a subscription's buffer in tests: what it holds now, without waiting for more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from engine.errors import SubscriptionLost


async def buffered(events: AsyncIterator[dict[str, Any]]) -> tuple[list[tuple[str, int]], SubscriptionLost | None]:
    """(order id, seq) of every event buffered now, then the end if it has ended (a subscription that
    has not ended is not waited for)."""
    got: list[tuple[str, int]] = []
    while True:
        step = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        if not step.done():
            step.cancel()
            return got, None
        try:
            item = step.result()
        except SubscriptionLost as lost:
            return got, lost
        got.append((item["orderId"], item["seq"]))
