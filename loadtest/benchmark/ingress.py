"""The ingress's own ceiling, on the ceiling phase's engine (the same Serve proxy and API
replica the orders go through), with the same client concurrency:

* HTTP: ``GET /api/orders/ws`` without an upgrade, answered 426 from memory (no
  storage, no actor call; ``/health`` is not trivial: it probes PostgreSQL, Redis
  and an actor);
* WebSocket: a session on ``/api/orders/execute`` (the upgrade that takes an
  order) whose first message is not JSON: handshake, one message each way (the
  ``MALFORMED_JSON`` error), the close. The API has no echo endpoint; this is its
  cheapest WebSocket round trip.

Orders/s divided by these rates is a ratio that carries over to another machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

from loadtest.benchmark.phase import Phase
from loadtest.benchmark.processes import started_meter
from loadtest.benchmark.stats import rounded, stats_ms

HTTP_PATH = "/api/orders/ws"
HTTP_STATUS = 426
WS_PATH = "/api/orders/execute"


async def closed_loop(call: Callable[[], Awaitable[None]], concurrency: int, duration_s: float) -> dict[str, Any]:
    """``concurrency`` loops each calling ``call`` until the time is up; rate, latency, errors."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    began = time.monotonic()
    stop_at = began + duration_s

    async def one() -> None:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            try:
                await call()
            except Exception as exc:  # noqa: BLE001 — counted, the loop goes on
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.monotonic() - t0)

    await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    return {"perS": rounded(len(latencies) / elapsed, 1), "n": len(latencies), "seconds": round(elapsed, 1),
            "latencyMs": stats_ms(latencies), "errors": errors}  # fmt: skip


async def http_ceiling(base: str, concurrency: int, duration_s: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def call() -> None:
            reply = await http.get(HTTP_PATH)
            if reply.status_code != HTTP_STATUS:
                raise RuntimeError(f"HTTP {reply.status_code}")

        await closed_loop(call, concurrency, 1.0)  # warm the connections
        return await closed_loop(call, concurrency, duration_s)


async def ws_ceiling(ws_base: str, concurrency: int, duration_s: float) -> dict[str, Any]:
    url = ws_base + WS_PATH

    async def call() -> None:
        async with websockets.connect(url, ping_interval=None, open_timeout=30, close_timeout=5) as ws:
            await ws.send("ping")
            reply = await ws.recv()
            if '"error"' not in str(reply):
                raise RuntimeError("no error message")
            await ws.wait_closed()

    return await closed_loop(call, concurrency, duration_s)


async def ingress_ceiling(ph: Phase, concurrency: int, duration_s: float) -> dict[str, Any]:
    """Trivial HTTP requests, then trivial WebSocket sessions, each with the client's CPU beside it."""
    base = ph.engine.url
    out: dict[str, Any] = {"concurrency": concurrency, "durationS": duration_s}
    for key, what, run in (
        ("http", f"GET {HTTP_PATH} (answered {HTTP_STATUS}, no storage)", lambda: http_ceiling(base, concurrency, duration_s)),
        ("ws", f"WebSocket session on {WS_PATH}: handshake, a non-JSON message, its error, the close",
         lambda: ws_ceiling(base.replace("http", "ws", 1), concurrency, duration_s)),
    ):  # fmt: skip
        cpu = started_meter(ph.engine)
        figures = await run()
        out[key] = {"what": what, **figures, "cpu": cpu.stop()}
    return out


def ingress_ratios(orders_per_s: float | None, ingress: dict[str, Any] | None) -> dict[str, Any]:
    """Orders/s over the trivial HTTP rate, and over the rate of one trivial request plus one
    trivial WebSocket session (what an order needs of the ingress at least: a POST and a socket)."""
    if not orders_per_s or not ingress:
        return {}
    http, ws = ingress["http"]["perS"], ingress["ws"]["perS"]
    out: dict[str, Any] = {}
    if http:
        out["perHttp"] = round(orders_per_s / http, 3)
    if http and ws:
        pair = 1 / (1 / http + 1 / ws)
        out["pairPerS"] = round(pair, 1)
        out["perPair"] = round(orders_per_s / pair, 3)
    return out
