"""Limits of the API: request body size, and per-client request rates and WebSockets.

A declared ``Content-Length`` over the body limit is refused before anything
is read; a chunked body is read up to the limit and refused as soon as it
passes it. Either way the answer is ``413`` in the API's error shape, and
the application never sees the request (plain ASGI middleware: it works the
same under Serve). :class:`ClientLimits` holds the per-client limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.ports import RateWindows, StartLimiter
from serve.errors import ApiError, error_body

DEFAULT_MAX_BODY_BYTES = 16 * 1024
log = logging.getLogger("serve.limits")


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(send, declared)
            return
        # Read the body up front (it is small by definition), then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self._too_large(send, None)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False
        whole = b"".join(chunks)

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        limit = self.max_body_bytes
        size = f"{declared} bytes" if declared is not None else "more than that"
        payload = json.dumps(
            error_body(
                "PAYLOAD_TOO_LARGE",
                f"the request body is limited to {limit} bytes; this one is {size}",
                {"maxBytes": limit, "declaredBytes": declared},
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# --------------------------------------------------------------------------- per-client limits


def client_key(conn: Any) -> str:
    """Who is asking: the ``X-Client-Id`` header when given, else the client's address."""
    header = (conn.headers.get("x-client-id") or "").strip()[:128]
    if header and header.isprintable():
        return f"id:{header}"
    client = getattr(conn, "client", None)
    return f"ip:{client.host}" if client is not None and client.host else "ip:unknown"


class ClientLimits:
    """Per-client limits of the API.

    * Order submissions (HTTP and the WebSocket upgrade) and other requests:
      sliding windows in Redis, so they hold across every replica. Over the
      limit: 429 ``RATE_LIMITED`` with ``Retry-After``. Redis being away does
      not stop the API: the limit is then not applied (logged).
    * Open WebSockets: counted in this process (per replica); over the cap a
      new socket is closed with 4429 ``TOO_MANY_CONNECTIONS``.

    A limit of 0 turns that limit off.
    """

    def __init__(
        self,
        windows: RateWindows | None,
        *,
        orders_per_window: int,
        reads_per_window: int,
        window_s: float,
        ws_per_client: int,
        timeout_s: float = 1.0,
    ) -> None:
        def limiter(limit: int, kind: str) -> StartLimiter | None:
            if limit <= 0 or windows is None:
                return None
            return windows.window(limit=limit, window_s=window_s, prefix=f"ratelimit:api:{kind}")

        self.window_s = window_s
        self.limits = {"orders": orders_per_window, "reads": reads_per_window}
        self._limiters = {"orders": limiter(orders_per_window, "orders"), "reads": limiter(reads_per_window, "reads")}
        self.ws_per_client = ws_per_client
        self.timeout_s = timeout_s
        self._sockets: dict[str, int] = {}

    async def check(self, kind: str, client: str) -> None:
        """Count one request of ``kind`` ("orders" or "reads"); raises ApiError 429 over the limit."""
        limiter = self._limiters.get(kind)
        if limiter is None:
            return
        try:
            allowed, retry_after = await asyncio.wait_for(limiter.hit(client), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 — Redis away: serve rather than refuse everyone
            log.warning("rate limit not applied (%s: %s)", type(exc).__name__, exc)
            return
        if allowed:
            return
        wait = max(1, math.ceil(retry_after))
        what = "order submissions" if kind == "orders" else "requests"
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"too many {what}: at most {self.limits[kind]} per {self.window_s:g} s for each client; "
            f"retry in {wait} s",
            {"limit": self.limits[kind], "windowS": self.window_s, "retryAfterS": wait, "client": client[:140]},
            {"Retry-After": str(wait)},
        )

    def open_socket(self, client: str) -> bool:
        """Take a WebSocket slot for ``client``; False when it already holds the most it may."""
        held = self._sockets.get(client, 0)
        if 0 < self.ws_per_client <= held:
            return False
        self._sockets[client] = held + 1
        return True

    def close_socket(self, client: str) -> None:
        held = self._sockets.get(client, 0) - 1
        if held > 0:
            self._sockets[client] = held
        else:
            self._sockets.pop(client, None)
