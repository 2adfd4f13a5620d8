"""Status events over Redis pub/sub, on one channel: ``orders:all``.

An event is published once, there; a follower of one order takes that order's
events from it (the API's replicas listen through one subscription each:
``storage.event_hub``). A channel per order used to be published beside it,
a second PUBLISH for every event that nothing in production read.

Pub/sub is fire-and-forget: an event is published only after it is committed
to PostgreSQL, and a late or reconnecting subscriber fills the gap from
``OrderStore.history(order_id, after_seq=...)`` (subscribe first, then read
history, then drop live events whose ``seq`` was already seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from storage._codec import dumps
from engine.records import StatusEvent

ALL_CHANNEL = "orders:all"


class EventBus:
    def __init__(self, redis: aioredis.Redis, *, subscribe_timeout: float = 5.0) -> None:
        self._redis = redis
        self._subscribe_timeout = subscribe_timeout

    async def publish(self, event: StatusEvent | Mapping[str, Any]) -> int:
        """Publish on ``orders:all``; returns the subscriptions reached."""
        data = event.to_json() if isinstance(event, StatusEvent) else dict(event)
        return int(await self._redis.publish(ALL_CHANNEL, dumps(data)))

    @asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Events of one order, as decoded ``to_json()`` dicts.

        The subscription is confirmed by Redis before this yields, so anything
        published afterwards is delivered.
        """
        async with self._subscription(ALL_CHANNEL) as events:
            yield (event async for event in events if event.get("orderId") == order_id)

    @asynccontextmanager
    async def subscribe_all(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Events of every order."""
        async with self._subscription(ALL_CHANNEL) as events:
            yield events

    @asynccontextmanager
    async def _subscription(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            await self._confirmed(pubsub)
            yield _messages(pubsub)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _confirmed(self, pubsub: PubSub) -> None:
        async with asyncio.timeout(self._subscribe_timeout):
            while True:
                message = await pubsub.get_message(timeout=self._subscribe_timeout)
                if message is not None and message["type"] == "subscribe":
                    return


async def _messages(pubsub: PubSub) -> AsyncIterator[dict[str, Any]]:
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        data = json.loads(message["data"])
        if isinstance(data, dict):
            yield data
