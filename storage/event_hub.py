"""One Redis subscriber per API process, fanning status events out to its WebSockets.

The hub holds one pub/sub connection, subscribed (confirmed) to
``orders:all``, and one reader task that hands each event to the local
listeners of its order and to the every-order ones (:mod:`storage.fanout`).
``subscribe(order_id)`` and ``subscribe_all()`` keep
:class:`storage.events.EventBus`'s contract: once the context yields, every
event published afterwards is delivered. Subscribing and unsubscribing are
local (no Redis round trip) once the hub is up.

The connection never retries: a redis-py client with retries resubscribes
silently, and the events published meanwhile would be lost unseen. When it
breaks, every listener ends with ``SubscriptionLost`` (its follower re-reads
PostgreSQL), and the next subscribe opens a new connection, one for all the
subscribers that ask at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from engine.errors import SubscriptionLost
from engine.ports import EventFeed
from engine.records import StatusEvent
from storage.events import ALL_CHANNEL
from storage.fanout import Fanout

log = logging.getLogger("storage.event_hub")

HUB_CLIENT_NAME = "dexengine-event-hub"  # how the hub's connection shows in CLIENT LIST


class EventHub:
    """The process's one subscription to ``orders:all``, opened on first use."""

    def __init__(
        self,
        url: str,
        *,
        buffer: int = 1000,
        subscribe_timeout: float = 5.0,
        retry_after_s: float = 1.0,
        health_check_s: float = 30.0,
    ) -> None:
        self._redis = aioredis.from_url(
            url, socket_connect_timeout=min(subscribe_timeout, 2.0), socket_keepalive=True,
            health_check_interval=health_check_s, retry=Retry(NoBackoff(), 0), client_name=HUB_CLIENT_NAME,
        )  # fmt: skip
        self._fanout = Fanout(buffer)
        self._subscribe_timeout = subscribe_timeout
        self._retry_after_s = retry_after_s
        self._read_s = health_check_s  # the reader wakes this often, so the health check's PING goes out
        self._up = False
        self._reader: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._failed_at = float("-inf")
        self._failure: BaseException | None = None
        self._closed = False
        self.connections = 0  # connections tried so far (a figure for tests and benchmarks)

    @property
    def listeners(self) -> int:
        return len(self._fanout)

    @asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Events of one order, as decoded ``to_json()`` dicts."""
        async with self._listening(order_id) as events:
            yield events

    @asynccontextmanager
    async def subscribe_all(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Events of every order."""
        async with self._listening(None) as events:
            yield events

    @asynccontextmanager
    async def _listening(self, order_id: str | None) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        await self._ensure_up()
        listener = self._fanout.listen(order_id)
        try:
            yield listener
        finally:
            self._fanout.drop(listener)

    async def _ensure_up(self) -> None:
        if self._closed:
            raise SubscriptionLost("the event hub is closed")
        if self._up:
            return
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            if loop.time() - self._failed_at < self._retry_after_s:
                raise SubscriptionLost(f"Redis did not take the subscription: {self._failure!r}")
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        try:
            # shielded: a subscriber that leaves must not cancel the connection the others wait for
            await asyncio.shield(self._connecting)
        except (RedisError, OSError, TimeoutError) as exc:
            raise SubscriptionLost(f"Redis did not take the subscription: {exc!r}") from exc

    def _connected(self, attempt: asyncio.Future[None]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is not None:
            self._failed_at = asyncio.get_running_loop().time()
            self._failure = attempt.exception()
            log.warning("the event hub could not subscribe to %s: %r", ALL_CHANNEL, self._failure)

    async def _connect(self) -> None:
        pubsub = self._redis.pubsub()
        self.connections += 1
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                await pubsub.subscribe(ALL_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=self._subscribe_timeout)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._up = True
        self._reader = asyncio.ensure_future(self._read(pubsub))

    async def _read(self, pubsub: PubSub) -> None:
        reason = "the event hub closed"
        try:
            while True:
                message = await pubsub.get_message(timeout=self._read_s)
                if message is not None and message["type"] == "message" and self._fanout.listening:
                    self._dispatch(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — the connection is gone, whatever broke it
            reason = f"the Redis subscription was lost ({type(exc).__name__}: {exc})"
            log.warning("%s; %d listeners fall back to PostgreSQL", reason, len(self._fanout))
        finally:
            # at once, before any await: no one may subscribe to a connection that is gone
            self._up = False
            self._fanout.end_all(SubscriptionLost(reason))
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, data: bytes | str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("an event that is not JSON on %s: %.80r", ALL_CHANNEL, data)
            return
        if isinstance(event, dict):
            self._fanout.dispatch(event)

    async def aclose(self) -> None:
        """End every listener and close the connection."""
        self._closed = True
        for task in (self._connecting, self._reader):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)
        self._fanout.end_all(SubscriptionLost("the event hub closed"))
        await self._redis.aclose()


class HubFeed:
    """The API's event feed: publishes through ``publisher``, follows through the process's hub."""

    def __init__(self, publisher: EventFeed, hub: EventHub) -> None:
        self.publisher = publisher
        self.hub = hub

    async def publish(self, event: StatusEvent) -> int:
        return await self.publisher.publish(event)

    def subscribe(self, order_id: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        return self.hub.subscribe(order_id)

    def subscribe_all(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        return self.hub.subscribe_all()
