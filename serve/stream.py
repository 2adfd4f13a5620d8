"""An order's status stream over a WebSocket: replay, then live, no gaps, no duplicates.

1. Subscribe to the order's live events (the process's one Redis subscription,
   ``storage.event_hub``, confirmed by Redis before going on).
2. Replay the history from PostgreSQL.
3. Forward live events. An event whose ``seq`` was already sent is dropped;
   one that skips ahead makes the stream re-read PostgreSQL from the last
   ``seq`` sent (events are committed before they are published, so the gap
   is there). When no live event came for ``poll_s`` the stream re-reads
   PostgreSQL anyway, so an event whose publish was lost (Redis restarting)
   still arrives, late.
4. After the final event (confirmed or failed) close with 1000.

Redis failing at any point, or a client too slow to keep up with its live
events, degrades the stream to polling PostgreSQL; it never loses an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from engine.errors import SubscriptionLost
from serve.auth import accepted_subprotocol
from sim.orders import FINAL_STATUSES

log = logging.getLogger("serve.stream")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_CONFLICT = 4409
CLOSE_RATE_LIMITED = 4429

_FINAL = {str(s) for s in FINAL_STATUSES}


def event_message(event: dict[str, Any]) -> dict[str, Any]:
    """What a client receives for one status event."""
    return {"type": "status", **event}


def close_reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    raw = text.encode()
    if len(raw) <= 123:
        return text
    return raw[:120].decode(errors="ignore") + "..."


LIVE_BUFFER = 1000  # live events waiting for a slow client; past it the stream re-reads PostgreSQL


class _Live:
    """Pumps a Redis subscription into a queue (bounded: ``LIVE_BUFFER``); ``None`` in it means it ended."""

    def __init__(self, bus: Any, order_id: str) -> None:
        self.bus = bus
        self.order_id = order_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.ok = False
        self._task: asyncio.Task | None = None

    async def start(self, timeout_s: float) -> bool:
        self._task = asyncio.ensure_future(self._pump())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        return self.ok

    async def _pump(self) -> None:
        try:
            async with self.bus.subscribe(self.order_id) as events:
                self.ok = True
                self.ready.set()
                async for event in events:
                    if self.queue.qsize() >= LIVE_BUFFER:
                        log.info("order %s: the client is %d events behind; re-reading PostgreSQL",
                                 self.order_id, LIVE_BUFFER)  # fmt: skip
                        break
                    self.queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except SubscriptionLost as exc:  # the process's subscription went (its hub says so, once)
            log.info("order %s: %s; polling PostgreSQL", self.order_id, exc)
        except Exception as exc:  # noqa: BLE001 — Redis down: the stream polls PostgreSQL
            log.warning("order %s: live events unavailable (%s); polling PostgreSQL", self.order_id, exc)
        finally:
            self.ready.set()
            self.queue.put_nowait(None)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the subscription's task and wait for it, a bounded time (a Redis client unwinding on a
        dead connection must not hold the stream)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout_s)


async def order_events(
    store: Any,
    bus: Any,
    order_id: str,
    *,
    after_seq: int = 0,
    poll_s: float = 2.0,
    max_poll_s: float = 15.0,
    resubscribe_s: float = 10.0,
    subscribe_timeout_s: float = 5.0,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every event of the order after ``after_seq``, in seq order, once each, ending after the final one.

    With a live subscription PostgreSQL is re-read after ``poll_s`` of
    silence, then less and less often (doubling up to ``max_poll_s``) while
    nothing happens. Without one (Redis down) it is read every ``poll_s``,
    and a new subscription is tried every ``resubscribe_s``.
    """
    live = _Live(bus, order_id)
    last = after_seq
    wait = poll_s
    loop = asyncio.get_running_loop()
    retry_at = loop.time() + resubscribe_s
    try:
        # inside the try: a client that leaves while the subscription is being confirmed (the first
        # __anext__ cancelled) must not leave the subscription's task behind
        await live.start(subscribe_timeout_s)
        # replay
        for stored in await store.history(order_id, after_seq=last):
            data = stored.to_json()
            last = data["seq"]
            yield data
            if data["status"] in _FINAL:
                return
        while True:
            event: dict[str, Any] | None = {}
            if live.ok:
                try:
                    async with asyncio.timeout(wait):  # not wait_for: that makes a task per event
                        event = await live.queue.get()
                except TimeoutError:
                    event = {}  # nothing for a while: check PostgreSQL
                if event is None:  # the subscription ended (Redis went away)
                    live.ok = False
                    event = {}
                    retry_at = loop.time() + resubscribe_s
            else:
                await asyncio.sleep(poll_s)
                if loop.time() >= retry_at:
                    await live.stop()
                    live = _Live(bus, order_id)
                    await live.start(min(subscribe_timeout_s, poll_s))
                    retry_at = loop.time() + resubscribe_s
                    wait = poll_s  # then read PostgreSQL: it covers the time without a subscription
            seq = event.get("seq") if event else None
            if isinstance(seq, int) and seq == last + 1 and str(event.get("orderId")) == order_id:
                last = seq
                wait = poll_s
                yield event
                if event.get("status") in _FINAL:
                    return
                continue
            if isinstance(seq, int) and seq <= last:
                continue  # a duplicate of what was already sent
            # a gap, a quiet spell, or the subscription failing: PostgreSQL has the truth
            missed = await store.history(order_id, after_seq=last)
            if not missed and not event:
                wait = min(wait * 2, max_poll_s)
            for item in missed:
                data = item.to_json()
                last = data["seq"]
                wait = poll_s
                yield data
                if data["status"] in _FINAL:
                    return
    finally:
        await live.stop()


CLIENT_LEFT: Any = object()


async def next_unless_left(events: AsyncIterator[dict[str, Any]], watcher: asyncio.Future[None]) -> Any:
    """The next event, or :data:`CLIENT_LEFT` when ``watcher`` (:func:`watch_disconnect`) ends first;
    raises StopAsyncIteration when the events end."""
    next_event = asyncio.ensure_future(events.__anext__())
    done, _ = await asyncio.wait({next_event, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher in done:
        next_event.cancel()
        with contextlib.suppress(BaseException):
            await next_event
        return CLIENT_LEFT
    return next_event.result()


async def watch_disconnect(ws: WebSocket) -> None:
    """Returns when the client goes away (messages it sends are ignored)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def stream_order(ws: WebSocket, services: Any, order_id: str, *, after_seq: int = 0) -> None:
    """Send the order's events on an accepted socket; close 1000 after the final one."""
    opts = services.options
    watcher = asyncio.ensure_future(watch_disconnect(ws))
    events = order_events(
        services.store,
        services.bus,
        order_id,
        after_seq=after_seq,
        poll_s=opts.ws_poll_s,
        max_poll_s=max(opts.ws_poll_s, opts.ws_max_poll_s),
        resubscribe_s=opts.ws_resubscribe_s,
    )
    final: str | None = None
    try:
        while True:
            try:
                event = await next_unless_left(events, watcher)
            except StopAsyncIteration:
                break
            if event is CLIENT_LEFT:
                return
            await ws.send_json(event_message(event))
            if event.get("status") in _FINAL:
                final = event["status"]
        await close(ws, CLOSE_NORMAL, f"order {final}" if final else "stream ended")
    except WebSocketDisconnect:
        return
    except Exception as exc:
        log.exception("order %s: stream failed", order_id)
        await close(ws, CLOSE_TRY_AGAIN, close_reason(f"stream interrupted ({type(exc).__name__}); reconnect"))
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        with contextlib.suppress(BaseException):
            await events.aclose()


async def close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.client_state == WebSocketState.CONNECTED and ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=close_reason(reason))


async def reject(ws: WebSocket, code: int, reason: str, error: dict[str, Any] | None = None) -> None:
    """Accept (so the client sees the code and reason), say why, and close."""
    if ws.application_state == WebSocketState.CONNECTING:
        await ws.accept(subprotocol=accepted_subprotocol(ws))
    if error is not None and ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.send_json({"type": "error", **error})
    await close(ws, code, reason)
