"""The live feed: every order's status events on one WebSocket, as they are published.

Live only, by design: a console that connects reads ``GET /api/orders`` for
what came before (an order's own stream replays; the feed does not). A caller
who may not see every order gets only the events of orders they own: the
owner of each order is read once from the store and remembered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from serve.stream import CLIENT_LEFT, CLOSE_TRY_AGAIN, close, event_message, next_unless_left, watch_disconnect

log = logging.getLogger("serve.feed")

_REMEMBERED = 10_000  # order owners kept per socket


class _OwnedOrders:
    """Whether an order is the caller's, read from the store once per order (bounded memory)."""

    def __init__(self, store: Any, may_see: Callable[[str | None], bool]) -> None:
        self._store, self._may_see = store, may_see
        self._known: OrderedDict[str, bool] = OrderedDict()

    async def visible(self, order_id: str) -> bool:
        seen = self._known.get(order_id)
        if seen is not None:
            self._known.move_to_end(order_id)
            return seen
        record = await self._store.get_order(order_id)
        seen = record is not None and self._may_see(record.owner)
        self._known[order_id] = seen
        if len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)
        return seen


async def stream_feed(ws: WebSocket, services: Any, *, every_order: bool, may_see: Callable[[str | None], bool]) -> None:
    """Forward every published status event the caller may see, until the client leaves."""
    owned = None if every_order else _OwnedOrders(services.store, may_see)
    watcher = asyncio.ensure_future(watch_disconnect(ws))
    try:
        async with services.bus.subscribe_all() as events:
            await ws.send_json({"type": "subscribed"})
            iterator = events.__aiter__()
            while (event := await next_unless_left(iterator, watcher)) is not CLIENT_LEFT:
                if owned is None or await owned.visible(str(event.get("orderId"))):
                    await ws.send_json(event_message(event))
    except (WebSocketDisconnect, StopAsyncIteration):
        return
    except Exception as exc:  # noqa: BLE001 — Redis away: the client reconnects (and re-reads the list)
        log.warning("the live feed stopped: %s: %s", type(exc).__name__, exc)
        await close(ws, CLOSE_TRY_AGAIN, "live feed interrupted; reconnect")
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
