"""An order's stream gives back its subscription whenever it ends, even before the subscription is confirmed.

The event feed here is an in-memory fake whose subscription is never confirmed
(a slow Redis): a client that leaves at that moment cancels the stream's first
step, and the subscription must end with it rather than live on unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from serve.stream import order_events


class UnconfirmedFeed:
    def __init__(self) -> None:
        self.subscribed = asyncio.Event()
        self.open = 0

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        self.open += 1
        self.subscribed.set()
        try:
            await asyncio.Event().wait()  # Redis never confirms
            yield _nothing()
        finally:
            self.open -= 1


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield  # pragma: no cover


class NoHistory:
    async def history(self, order_id: str, after_seq: int = 0) -> list[Any]:
        return []


async def test_a_client_leaving_before_the_subscription_is_confirmed_leaves_none_behind() -> None:
    feed = UnconfirmedFeed()
    events = order_events(NoHistory(), feed, "order-1", subscribe_timeout_s=60)
    first = asyncio.ensure_future(events.__anext__())
    await feed.subscribed.wait()
    assert feed.open == 1
    first.cancel()  # what the WebSocket handler does when the client goes away
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert feed.open == 0
