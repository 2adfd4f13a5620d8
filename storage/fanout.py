"""Status events fanned out to this process's listeners: each order's, and every-order ones (the feed).

Pure asyncio, no Redis: :class:`storage.event_hub.EventHub` feeds it from its
one subscription. A listener's buffer is bounded: one that fills (a slow
WebSocket) is ended alone with :class:`SubscriptionLost`, and its follower
re-reads PostgreSQL, which has every event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from engine.errors import SubscriptionLost


class Listener:
    """One subscriber's events, in arrival order; iterating raises :class:`SubscriptionLost` once it
    was ended and its buffered events were read."""

    def __init__(self, order_id: str | None, capacity: int) -> None:
        self.order_id = order_id  # None: every order
        self._capacity = capacity
        self._events: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._ended: SubscriptionLost | None = None

    @property
    def ended(self) -> bool:
        return self._ended is not None

    def offer(self, event: dict[str, Any]) -> bool:
        """Buffer ``event``; False when the listener has ended or its buffer is full."""
        if self._ended is not None or len(self._events) >= self._capacity:
            return False
        self._events.append(event)
        self._wake.set()
        return True

    def end(self, error: SubscriptionLost) -> None:
        if self._ended is None:
            self._ended = error
            self._wake.set()

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._events:
            if self._ended is not None:
                raise self._ended
            self._wake.clear()
            await self._wake.wait()
        return self._events.popleft()


class Fanout:
    """The listeners of one process, by order, and the ones that take every order."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("a listener must buffer at least one event")
        self.capacity = capacity
        self._by_order: dict[str, set[Listener]] = {}
        self._every: set[Listener] = set()

    def __len__(self) -> int:
        return len(self._every) + sum(len(group) for group in self._by_order.values())

    def listen(self, order_id: str | None) -> Listener:
        """A new listener of ``order_id``'s events (None: every order's)."""
        listener = Listener(order_id, self.capacity)
        if order_id is None:
            self._every.add(listener)
        else:
            self._by_order.setdefault(order_id, set()).add(listener)
        return listener

    def drop(self, listener: Listener) -> None:
        if listener.order_id is None:
            self._every.discard(listener)
            return
        group = self._by_order.get(listener.order_id)
        if group is not None:
            group.discard(listener)
            if not group:
                del self._by_order[listener.order_id]

    @property
    def listening(self) -> bool:
        return bool(self._every or self._by_order)

    def dispatch(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to its order's listeners and to every-order ones; a full one is ended and dropped."""
        order_id = str(event.get("orderId"))
        for listener in [*self._by_order.get(order_id, ()), *self._every]:
            if not listener.offer(event):
                self.drop(listener)
                listener.end(SubscriptionLost(f"fell {self.capacity} events behind; re-read the store"))

    def end_all(self, error: SubscriptionLost) -> None:
        """End and drop every listener (the subscription behind them is gone)."""
        listeners = [*self._every, *(listener for group in self._by_order.values() for listener in group)]
        self._every.clear()
        self._by_order.clear()
        for listener in listeners:
            listener.end(error)
