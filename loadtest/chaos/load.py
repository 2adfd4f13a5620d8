"""The order load: a few API clients submitting at a steady rate over HTTP, and a
sample of the orders followed on their WebSockets to the end."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx

from loadtest.chaos.tally import Steps, Tally

ORDERS: list[dict[str, Any]] = [
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 100},
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "4", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "1000", "slippageBps": 100},
    {"tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
    {"tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"tokenIn": "SOL", "tokenOut": "USDT", "amountIn": "2", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "JUP", "amountIn": "200", "slippageBps": 100},
]
WATCHERS_AT_ONCE = 40
# the stream re-reads PostgreSQL at least every 15 s: a socket silent for
# longer is dead (its replica gone): reconnect
SILENT_SOCKET_S = 45


class OrderLoad:
    """``clients`` API clients sharing ``rate`` orders a second until ``until``."""

    def __init__(self, base: str, tally: Tally, *, until: float, rate: float, clients: int, watch_every: int,
                 watch_until: list[float], seed: int) -> None:  # fmt: skip
        self.base = base
        self.tally = tally
        self.until = until
        self.clients = clients
        self.watch_every = watch_every
        self.watch_until = watch_until  # one cell: moved on when the load ends
        self.rng = random.Random(seed)
        self.watchers: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(WATCHERS_AT_ONCE)
        self.period = clients / rate
        self.count = 0

    async def run(self) -> set[asyncio.Task]:
        async with httpx.AsyncClient(base_url=self.base, timeout=20) as http:
            await asyncio.gather(*(self.client_loop(i, http) for i in range(self.clients)))
        return self.watchers

    async def client_loop(self, index: int, http: httpx.AsyncClient) -> None:
        headers = {"X-Client-Id": f"chaos-{index}"}
        await asyncio.sleep(index * self.period / self.clients)
        while time.monotonic() < self.until:
            began = time.monotonic()
            body = self.rng.choice(ORDERS)
            try:
                reply = await http.post("/api/orders/execute", json=body, headers=headers)
            except httpx.HTTPError as exc:
                self.tally.transport_errors[type(exc).__name__] += 1
            else:
                self.record(reply)
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - began)))

    def record(self, reply: httpx.Response) -> None:
        """An accepted order (followed if its turn), or the refusal's status and code."""
        if reply.status_code in (200, 202):
            order_id = reply.json()["orderId"]
            self.tally.accepted.append(order_id)
            self.count += 1
            if self.count % self.watch_every == 0 and not self.slots.locked():
                task = asyncio.ensure_future(self.watch(order_id))
                self.watchers.add(task)
                task.add_done_callback(self.watchers.discard)
            return
        try:
            code = reply.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        self.tally.rejected[f"{reply.status_code} {code}"] += 1

    async def watch(self, order_id: str) -> None:
        """Follow one order to its final event, reconnecting (from the replay) when dropped."""
        async with self.slots:
            url = self.base.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws"
            seen: Steps = []
            self.tally.watched[order_id] = seen
            first, done = True, False
            try:
                while not done and time.monotonic() < self.watch_until[0]:
                    if not first:
                        self.tally.ws_reconnects += 1
                    first = False
                    done = await self.follow(url, seen)
                    if not done:
                        await asyncio.sleep(0.5)
            finally:
                if not done:
                    self.tally.ws_incomplete.append(order_id)

    async def follow(self, url: str, seen: Steps) -> bool:
        """One connection's worth of events; True when the server closed it normally (final)."""
        import websockets

        try:
            async with websockets.connect(
                url, open_timeout=10, additional_headers={"X-Client-Id": "chaos-ws"}
            ) as ws:
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), SILENT_SOCKET_S))
                    if event.get("type") != "status":
                        continue
                    last = seen[-1][0] if seen else 0
                    if event["seq"] > last:
                        seen.append((event["seq"], event["status"]))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd is not None and closed.rcvd.code == 1000
        except asyncio.TimeoutError:
            self.tally.ws_stalls += 1
        except (OSError, websockets.WebSocketException):
            pass
        return False


async def drive_load(base: str, tally: Tally, *, until: float, rate: float, clients: int, watch_every: int,
                     watch_until: list[float], seed: int) -> set[asyncio.Task]:  # fmt: skip
    """Submit orders until ``until``; returns the WebSocket watchers still running."""
    load = OrderLoad(base, tally, until=until, rate=rate, clients=clients, watch_every=watch_every,
                     watch_until=watch_until, seed=seed)  # fmt: skip
    return await load.run()
