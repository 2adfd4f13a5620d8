"""Fault tests: orders flowing through the real API app into a live engine while something breaks.

Every test here drives orders with :class:`Flow` (the production FastAPI app,
in-process, on a thread and event loop of its own, real PostgreSQL and
Redis), injects one fault while they flow, waits until every accepted order
is final, and ends with ``assert_invariants`` of the engine harness (every
accepted order ended exactly once, no double fill, gapless ordered history,
every pool's reserves == genesis + recorded flows).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import ray

from engine.settings import EngineSettings
from serve.app import create_app
from runtime.api_services import ServicesFromSettings
from engine.settings import ApiSettings
from loadtest.chaos.books import call_until_back  # noqa: F401 — the fault tests use it too
from tests.integration.engine_harness import base_settings, merged, running_engine, wait_final

# A mix the default market can fill: both SOL/USDC venues, the reverse side,
# a stable pair, a single-venue pair and a two-hop route.
ORDERS: list[dict[str, Any]] = [
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 100},
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "3", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "1000", "slippageBps": 100},
    {"tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
    {"tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
]
SOL_USDC = [ORDERS[0], ORDERS[1], ORDERS[2]]
FAST_WS = ApiSettings(ws_poll_s=0.3, ws_resubscribe_s=0.5)


def fault_settings(database_url: str, redis_url: str, **overrides: Any) -> EngineSettings:
    """Executions take 0.1-0.3 s, so a kill lands mid-order; retries wait 0.3, 0.6, 1.2 s,
    long enough for Ray to bring a killed actor back (~1 s)."""
    values: dict[str, Any] = dict(
        latency={"quote_s": 0.01, "quote_jitter_s": 0.01, "execution_min_s": 0.1, "execution_max_s": 0.3},
        retry={"max_retries": 3, "base_delay_s": 0.3, "factor": 2.0},
        dispatch={"sweep_interval_s": 1.0},
        # the router follows the pools (as it does with no quote latency): a killed pool is skipped
        # as its followed call fails, and followed again once it is back
        routing={"follow_pools": "on"},
    )
    values = merged(values, overrides)
    return base_settings(database_url, redis_url, **values)


@dataclass
class FlowResult:
    accepted: list[str] = field(default_factory=list)  # order ids answered 2xx
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (status, code, message)
    errors: list[str] = field(default_factory=list)  # transport errors (no answer at all)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # order id -> request body


class Flow:
    """Submits orders through the API app at a steady pace, on a thread of its own.

    Bounded: at most ``max_orders`` and ``max_s`` seconds, ``workers``
    submitters in parallel, one order per worker every ``1 / rate_per_s *
    workers`` seconds. A 2xx answer means accepted (the API's promise); any
    other answer is recorded with its error code. ``stop()`` ends it early.
    """

    def __init__(
        self,
        settings: EngineSettings,
        orders: list[dict[str, Any]] = ORDERS,
        *,
        rate_per_s: float = 8.0,
        max_orders: int = 60,
        max_s: float = 30.0,
        workers: int = 2,
        client_id: str = "faults",
        request_timeout_s: float = 20.0,
    ) -> None:
        self.settings = settings
        self.orders = orders
        self.rate_per_s = rate_per_s
        self.max_orders = max_orders
        self.max_s = max_s
        self.workers = workers
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        self.result = FlowResult()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._sent = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Flow:
        self._thread = threading.Thread(target=self._main, name="fault-flow", daemon=True)
        self._thread.start()
        assert self._ready.wait(60), "the API app did not start"
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_accepted(self, count: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.result.accepted) < count:
            assert time.monotonic() < deadline, f"only {len(self.result.accepted)} orders accepted"
            assert self._thread is not None and self._thread.is_alive(), "the flow ended early"
            time.sleep(0.05)

    def stop(self) -> FlowResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.request_timeout_s + 30)
            assert not self._thread.is_alive(), "the flow did not stop"
        if self._failure is not None:
            raise self._failure
        return self.result

    def join(self) -> FlowResult:
        """Wait until the budget is spent (``max_orders`` or ``max_s``)."""
        if self._thread is not None:
            self._thread.join(self.max_s + self.request_timeout_s + 30)
        return self.stop()

    # ------------------------------------------------------------------ the thread

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 — reported by stop()
            self._failure = exc
            self._ready.set()

    async def _run(self) -> None:
        app = create_app(ServicesFromSettings(self.settings, gateway="local", options=FAST_WS))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://faults", timeout=self.request_timeout_s
            ) as client:
                self._ready.set()
                deadline = time.monotonic() + self.max_s
                await asyncio.gather(*(self._worker(client, i, deadline) for i in range(self.workers)))

    def _next(self) -> int | None:
        with self._lock:
            if self._sent >= self.max_orders:
                return None
            self._sent += 1
            return self._sent - 1

    async def _worker(self, client: httpx.AsyncClient, index: int, deadline: float) -> None:
        period = self.workers / self.rate_per_s
        await asyncio.sleep(index * period / self.workers)
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            n = self._next()
            if n is None:
                return
            body = self.orders[n % len(self.orders)]
            try:
                reply = await client.post(
                    "/api/orders/execute", json=body, headers={"X-Client-Id": self.client_id}
                )
            except httpx.HTTPError as exc:
                self.result.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                if reply.status_code in (200, 202):
                    order_id = reply.json()["orderId"]
                    self.result.accepted.append(order_id)
                    self.result.bodies[order_id] = body
                else:
                    try:
                        error = reply.json()["error"]
                        self.result.rejected.append((reply.status_code, error["code"], error["message"]))
                    except (ValueError, KeyError, TypeError):
                        self.result.rejected.append((reply.status_code, "?", reply.text[:200]))
            await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))


def pid_of(handle: Any, timeout_s: float = 60.0) -> int:
    """The OS process of an actor (waits while Ray restarts it)."""
    import os

    return call_until_back(lambda: handle.__ray_call__.remote(lambda _self: os.getpid()), timeout_s)


def kill_and_wait_restart(handle: Any, timeout_s: float = 60.0) -> int:
    """``ray.kill`` (Ray restarts it) and wait until the new process answers; its pid."""
    old = pid_of(handle)
    ray.kill(handle, no_restart=False)
    end = time.monotonic() + timeout_s
    while (pid := pid_of(handle, timeout_s)) == old:
        assert time.monotonic() < end, "the actor was not restarted"
        time.sleep(0.1)
    return pid


def queue_state(redis_url: str) -> dict[str, Any]:
    """The engine's queue as Redis holds it (for failure messages)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        state: dict[str, Any] = {
            "stream": client.xrange("orders:queue"),
            "delayed": client.zrange("orders:delayed", 0, -1, withscores=True),
        }
        try:
            state["pending"] = client.xpending_range("orders:queue", "executors", "-", "+", 100)
        except redis.ResponseError as exc:
            state["pending"] = str(exc)
        return state
    finally:
        client.close()


def wait_final_or_explain(settings: EngineSettings, ids: list[str], timeout_s: float = 60) -> dict[str, str]:
    """``wait_final``, with the queue's state in the message when it times out."""
    try:
        return wait_final(settings, ids, timeout_s=timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; queue: {queue_state(settings.redis_url)}") from None


def orders_in_db(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return dict(conn.execute("SELECT id::text, status FROM orders").fetchall())


def error_codes(database_url: str, ids: list[str]) -> dict[str, str | None]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id::text, error_code FROM orders WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
    return dict(rows)


def history_codes(database_url: str, ids: list[str]) -> list[str]:
    """Every error code an attempt of these orders recorded (retries included)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT details->'error'->>'code' FROM order_status_history"
            " WHERE order_id = ANY(%s::uuid[]) AND details ? 'error'",
            (ids,),
        ).fetchall()
    return [r[0] for r in rows if r[0]]


@pytest.fixture(scope="module")
def fault_engine(database_url: str, redis_url: str, ray_session: None) -> Iterator[tuple[EngineSettings, Any]]:
    settings = fault_settings(database_url, redis_url)
    with running_engine(settings) as actors:
        yield settings, actors


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    began = time.monotonic()
    yield
    spent = time.monotonic() - began
    assert spent < seconds, f"took {spent:.1f}s (budget {seconds}s)"
