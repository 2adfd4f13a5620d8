"""The benchmark's order client: POST an order, follow its WebSocket to the end.

Plain asyncio (httpx for HTTP, ``websockets`` for the status stream): one
process, one event loop, no Locust, so that timestamps are taken right where
a message arrives. The engine's event timestamps are set by PostgreSQL
(``clock_timestamp()`` at the insert of the history row, just before commit)
and the client reads ``time.time()``: the same machine, the same clock.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import websockets

FINAL = ("confirmed", "failed")

# small orders both ways, so the pools stay balanced when the market is off
BALANCED = [
    ("SOL", "USDC", (0.2, 1.5)),
    ("USDC", "SOL", (30.0, 225.0)),
    ("SOL", "USDC", (0.2, 1.5)),
    ("USDC", "SOL", (30.0, 225.0)),
    ("JUP", "USDC", (30.0, 250.0)),
    ("USDC", "JUP", (25.0, 200.0)),
]


def ts(text: str) -> float:
    """An event's ISO timestamp as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def order_body(rng: random.Random, i: int, slippage_bps: int = 300) -> dict[str, Any]:
    token_in, token_out, (low, high) = BALANCED[i % len(BALANCED)]
    amount = f"{rng.uniform(low, high):.4f}"
    return {"type": "market", "tokenIn": token_in, "tokenOut": token_out, "amountIn": amount,
            "slippageBps": slippage_bps}  # fmt: skip


def order_ws_url(ws_base: str, order_id: str) -> str:
    return f"{ws_base}/api/orders/{order_id}/ws"


async def status_events(ws: Any) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """(arrival time, event) of each status event on an order's socket; other messages skipped."""
    async for raw in ws:
        received = time.time()
        data = json.loads(raw)
        if data.get("type") == "status":
            yield received, data


@dataclass
class Event:
    seq: int
    status: str
    committed: float  # server timestamp (commit in PostgreSQL)
    received: float  # client time.time() on arrival
    details: dict[str, Any]


@dataclass
class OrderRun:
    """One order, followed from POST to its final event."""

    body: dict[str, Any]
    posted: float = 0.0  # before the POST
    accepted: float = 0.0  # the 202 arrived
    opened: float = 0.0  # the WebSocket handshake completed
    done: float = 0.0  # the final event arrived
    order_id: str | None = None
    events: list[Event] = field(default_factory=list)
    error: str | None = None

    @property
    def final(self) -> Event | None:
        return self.events[-1] if self.events and self.events[-1].status in FINAL else None

    @property
    def started_at(self) -> float | None:
        """When the dispatcher started it (the first routing event says)."""
        for e in self.events:
            if e.status == "routing" and isinstance(e.details.get("startedAt"), int | float):
                return float(e.details["startedAt"])
        return None

    @property
    def pending_at(self) -> float | None:
        return self.events[0].committed if self.events and self.events[0].seq == 1 else None

    def live(self) -> list[Event]:
        """Events committed after the socket was open: their delivery is a latency."""
        return [e for e in self.events if e.committed >= self.opened]


class OrderClient:
    """POST an order, then follow its WebSocket to the end."""

    def __init__(self, base: str, *, max_connections: int = 200) -> None:
        self.base = base.rstrip("/")
        self.ws_base = self.base.replace("http", "ws", 1)
        self.http = httpx.AsyncClient(
            base_url=self.base,
            timeout=60,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self, body: dict[str, Any]) -> OrderRun:
        run = OrderRun(body=body, posted=time.time())
        reply = await self.http.post("/api/orders/execute", json=body)
        run.accepted = time.time()
        if reply.status_code != 202:
            run.error = f"HTTP {reply.status_code}: {reply.text[:200]}"
            return run
        run.order_id = reply.json()["orderId"]
        return run

    async def follow(self, run: OrderRun, timeout_s: float = 180.0) -> OrderRun:
        if run.order_id is None:
            return run
        try:
            async with asyncio.timeout(timeout_s):
                async with websockets.connect(
                    order_ws_url(self.ws_base, run.order_id), ping_interval=None, open_timeout=60,
                    close_timeout=2, max_size=2**20,
                ) as ws:  # fmt: skip
                    run.opened = time.time()
                    async for received, data in status_events(ws):
                        run.events.append(
                            Event(data["seq"], data["status"], ts(data["timestamp"]), received,
                                  data.get("details") or {})  # fmt: skip
                        )
                        if data["status"] in FINAL:
                            run.done = received
                            break
        except TimeoutError:
            run.error = f"not final within {timeout_s:g}s"
        except (OSError, websockets.WebSocketException) as exc:
            run.error = f"{type(exc).__name__}: {exc}"[:200]
        return run

    async def order(self, body: dict[str, Any], timeout_s: float = 180.0) -> OrderRun:
        run = await self.submit(body)
        return await self.follow(run, timeout_s)
