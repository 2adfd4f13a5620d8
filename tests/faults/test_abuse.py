"""Abuse: per-client rate limits, a cap on WebSockets per client, and SQL injection in every string.

Real PostgreSQL and Redis, the API app over ASGI (and on uvicorn for the
WebSockets), ``LocalGateway`` for routing, as in tests/integration/test_api.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from serve.app import create_app
from engine.settings import ApiSettings
from serve.services import Services
from storage.events import EventBus
from storage.connect import StoreHealthChecks
from storage.queue import OrderQueue
from storage.ratelimit import RedisRateWindows
from tests.integration import test_api as T
from tests.integration.test_api import ORDER, assert_error_shape, dead_port, factory, live_server, receive, receive_all

pytestmark = pytest.mark.faults

gateway, env = T.gateway, T.env


@contextlib.asynccontextmanager
async def client_for(services: Services, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(factory(services))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def limited(**limits: Any) -> ApiSettings:
    return ApiSettings(ws_poll_s=0.2, ws_resubscribe_s=0.5, ws_first_message_timeout_s=5.0, **limits)


def a_client() -> dict[str, str]:
    return {"X-Client-Id": f"abuse-{uuid.uuid4().hex[:12]}"}


# --------------------------------------------------------------------------- rate limits


async def test_order_submissions_over_the_limit_get_429_with_retry_after_and_store_nothing(env: T.Env) -> None:
    me, other = a_client(), a_client()
    async with client_for(env.services(limited(order_limit_per_minute=5))) as api:
        for _ in range(5):
            assert (await api.post("/api/orders/execute", json=ORDER, headers=me)).status_code == 202
        refused = await api.post("/api/orders/execute", json=ORDER, headers=me)
        error = assert_error_shape(refused, 429, "RATE_LIMITED")
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert "at most 5 per 60 s" in error["message"] and f"retry in {retry_after} s" in error["message"]
        assert error["details"]["limit"] == 5 and error["details"]["retryAfterS"] == retry_after
        # junk counts too (the limit comes before validation), and is refused the same way
        assert_error_shape(await api.post("/api/orders/execute", content=b"{", headers=me), 429, "RATE_LIMITED")
        # another client is not affected, and reads are not limited by default
        assert (await api.post("/api/orders/execute", json=ORDER, headers=other)).status_code == 202
        for _ in range(20):
            assert (await api.get("/api/orders", params={"limit": 1}, headers=me)).status_code == 200
    assert await env.rows() == (6, 6)
    assert len(await env.queued()) == 6


async def test_without_a_client_id_the_address_is_the_client(env: T.Env) -> None:
    services = env.services(limited(order_limit_per_minute=2))
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    async with client_for(services, address) as api:
        assert [(await api.post("/api/orders/execute", json=ORDER)).status_code for _ in range(3)] == [202, 202, 429]
    async with client_for(services, "10.255.0.1" if not address.startswith("10.255.") else "10.254.0.1") as api:
        assert (await api.post("/api/orders/execute", json=ORDER)).status_code == 202


async def test_the_window_slides(env: T.Env) -> None:
    me = a_client()
    async with client_for(env.services(limited(order_limit_per_minute=2, limit_window_s=1.0))) as api:
        codes = [(await api.post("/api/orders/execute", json=ORDER, headers=me)).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        await asyncio.sleep(1.2)
        assert (await api.post("/api/orders/execute", json=ORDER, headers=me)).status_code == 202


async def test_reads_can_be_limited_and_health_never_is(env: T.Env) -> None:
    me = a_client()
    async with client_for(env.services(limited(read_limit_per_minute=3))) as api:
        for path in ("/api/pools", "/api/orders", f"/api/orders/{uuid.uuid4()}"):
            assert (await api.get(path, headers=me)).status_code in (200, 404)
        refused = await api.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"},
                                headers=me)  # fmt: skip
        assert_error_shape(refused, 429, "RATE_LIMITED")
        assert "requests" in refused.json()["error"]["message"] and refused.headers["retry-after"]
        for _ in range(5):
            assert (await api.get("/health", headers=me)).status_code == 200
        # order submissions have their own budget
        assert (await api.post("/api/orders/execute", json=ORDER, headers=me)).status_code == 202


async def test_a_redis_outage_does_not_turn_the_limit_into_an_outage(env: T.Env) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=dead_port(), socket_connect_timeout=0.5)
    try:
        options = limited(order_limit_per_minute=1, redis_timeout_s=0.5)
        services = env.services(
            options, queue=OrderQueue(dead), bus=EventBus(dead), health=StoreHealthChecks(env.db, dead),
            windows=RedisRateWindows(dead),
        )  # fmt: skip
        async with client_for(services) as api:
            me = a_client()
            for _ in range(2):  # not enforceable without Redis: served, not refused
                assert (await api.post("/api/orders/execute", json=ORDER, headers=me)).status_code == 202
    finally:
        await dead.aclose()


async def test_the_ws_upgrade_counts_against_the_order_limit(env: T.Env) -> None:
    me = a_client()
    async with live_server(env.services(limited(order_limit_per_minute=1))) as host:
        url = f"ws://{host}/api/orders/execute"
        async with websockets.connect(url, additional_headers=me) as ws:
            await ws.send(json.dumps(ORDER))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "accepted"
        async with websockets.connect(url, additional_headers=me) as ws:
            await ws.send(json.dumps(ORDER))
            messages = await receive_all(ws)
    assert ws.close_code == 4429 and "RATE_LIMITED" in ws.close_reason
    assert messages[0]["error"]["code"] == "RATE_LIMITED" and messages[0]["error"]["details"]["retryAfterS"] >= 1
    assert await env.rows() == (1, 1)


# --------------------------------------------------------------------------- WebSockets per client


async def test_websockets_per_client_are_capped(env: T.Env) -> None:
    order_id = (await env.store.create_order(T._new_order()))[0].id
    me, other = a_client(), a_client()
    async with live_server(env.services(limited(ws_max_per_client=2))) as host:
        url = f"ws://{host}/api/orders/{order_id}/ws"
        async with contextlib.AsyncExitStack() as stack:
            held = [await stack.enter_async_context(websockets.connect(url, additional_headers=me)) for _ in range(2)]
            for ws in held:
                assert T.statuses(await receive(ws, 1)) == [(1, "pending")]
            async with websockets.connect(url, additional_headers=me) as third:
                refused = await receive_all(third)
            assert third.close_code == 4429 and "too many WebSockets" in third.close_reason
            assert refused[0]["error"]["code"] == "TOO_MANY_CONNECTIONS"
            assert refused[0]["error"]["details"]["limit"] == 2
            # the upgrade path shares the cap
            async with websockets.connect(f"ws://{host}/api/orders/execute", additional_headers=me) as fourth:
                assert (await receive_all(fourth))[0]["error"]["code"] == "TOO_MANY_CONNECTIONS"
            # another client is not affected
            async with websockets.connect(url, additional_headers=other) as theirs:
                assert T.statuses(await receive(theirs, 1)) == [(1, "pending")]
            await held[0].close()
        # closed sockets give their slot back
        for _ in range(50):
            async with websockets.connect(url, additional_headers=me) as again:
                first = json.loads(await asyncio.wait_for(again.recv(), 5))
            if first.get("type") == "status":
                break
            await asyncio.sleep(0.05)
        assert first["type"] == "status"
    assert await env.rows() == (1, 1)


# --------------------------------------------------------------------------- SQL injection

INJECTIONS = [
    "'; DROP TABLE orders; --",
    "\" OR \"1\"=\"1",
    "x'); DELETE FROM order_status_history; --",
    "1; UPDATE orders SET status='confirmed'",
    "' UNION SELECT id, NULL FROM orders --",
    "%' OR '1'='1",
    "$$; TRUNCATE pool_trades; $$",
    "\\'; SELECT pg_sleep(5); --",
    "Robert'); DROP TABLE pool_genesis;-- ünïcødé ✓",
]


async def _table_counts(env: T.Env) -> dict[str, int | None]:
    async with env.db.connection() as conn:
        counts: dict[str, int | None] = {}
        for table in ("orders", "order_status_history", "pool_trades", "pool_genesis"):
            exists = await (await conn.execute("SELECT to_regclass(%s)", (table,))).fetchone()
            counts[table] = None if exists[0] is None else (
                await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()  # noqa: S608 - fixed names
            )[0]
        return counts


async def test_injection_in_every_string_field_is_stored_verbatim_or_refused_and_nothing_else_happens(
    env: T.Env,
) -> None:
    started = time.monotonic()
    async with client_for(env.services(limited(order_limit_per_minute=0))) as api:
        accepted: dict[str, str] = {}
        for payload in INJECTIONS:
            # stored verbatim: the Idempotency-Key (returned as given) and the X-Client-Id (kept
            # with the order); HTTP headers are ASCII, so the Unicode payload goes in a body only
            if payload.isascii():
                reply = await api.post("/api/orders/execute", json=ORDER,
                                       headers={"Idempotency-Key": payload, "X-Client-Id": payload})  # fmt: skip
                assert reply.status_code == 202, reply.text
                order_id = reply.json()["orderId"]
                accepted[order_id] = payload
                assert (await api.get(f"/api/orders/{order_id}")).json()["idempotencyKey"] == payload
                again = await api.post("/api/orders/execute", json=ORDER, headers={"Idempotency-Key": payload})
                assert again.status_code == 200 and again.json()["orderId"] == order_id
            # refused with a 4xx naming the field: every string field of the order
            for field in ("tokenIn", "tokenOut", "amountIn", "amount", "type", "orderType", "slippageBps", "slippage"):
                body = {**ORDER, field: payload}
                if field == "amount":
                    body.pop("amountIn")
                if field == "slippage":
                    body.pop("slippageBps")
                if field == "orderType":
                    body.pop("type")
                response = await api.post("/api/orders/execute", json=body)
                assert 400 <= response.status_code < 500, (field, payload, response.text)
                assert_error_shape(response, response.status_code)
            # and every string in a query or a path
            for path, params in (
                ("/api/quote", {"tokenIn": payload, "tokenOut": "USDC", "amountIn": "1"}),
                ("/api/quote", {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": payload}),
                ("/api/orders", {"status": payload}),
                ("/api/orders", {"cursor": payload}),
                (f"/api/orders/{payload}", {}),
                (f"/api/orders/{payload}/history", {}),
                (f"/api/orders/{uuid.uuid4()}/history", {"afterSeq": payload}),
            ):
                response = await api.get(path, params=params)
                assert 400 <= response.status_code < 500, (path, params, response.text)
                assert_error_shape(response, response.status_code)
    async with env.db.connection() as conn:
        rows = await (await conn.execute(
            "SELECT id::text, idempotency_key, client_id, status FROM orders")).fetchall()  # fmt: skip
    assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
        order_id: (payload, payload.strip()[:128], "pending") for order_id, payload in accepted.items()
    }
    assert await _table_counts(env) == {
        "orders": len(accepted), "order_status_history": len(accepted), "pool_trades": 0, "pool_genesis": 0,
    }  # fmt: skip
    assert len(accepted) == len(INJECTIONS) - 1
    assert time.monotonic() - started < 60  # no pg_sleep ran


def test_every_statement_the_stores_run_is_parameterised() -> None:
    """No store builds SQL from values: every query is a constant or composed with psycopg.sql."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "storage"
    offenders = []
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("execute", "executemany"):
                if node.args and isinstance(node.args[0], (ast.JoinedStr, ast.BinOp)):
                    offenders.append(f"{path.name}:{node.lineno}")
                if node.args and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "attr", "") == "format":
                    if not isinstance(node.args[0].func.value, ast.Call):  # "...".format(...), not sql.SQL(...).format
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
