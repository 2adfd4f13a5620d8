"""The HTTP API and the WebSocket feed, on a real PostgreSQL and a real Redis (no mocks).

HTTP goes through the ASGI app with ``httpx.ASGITransport``; WebSockets
through a real uvicorn server on 127.0.0.1 (a free port) in the test's event
loop, with the ``websockets`` client. The engine port is ``LocalGateway``:
the same ``sim`` routing the router actor runs, on in-process pools; an
executor is simulated by committing transitions with ``OrderStore`` and
publishing them with ``EventBus``, exactly as the executor actors do; the app
follows them through its ``EventHub``, as a replica does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
import websockets
from psycopg_pool import AsyncConnectionPool
from websockets.exceptions import ConnectionClosed

from serve.app import create_app
from engine.event_details import routing_details
from engine.local_gateway import LocalGateway
from engine.settings import ApiSettings
from serve.services import Services
from sim.orders import OrderStatus
from storage.event_hub import EventHub, HubFeed
from storage.events import EventBus
from storage.orders import OrderStore
from storage.connect import StoreHealthChecks
from storage.queue import OrderQueue
from storage.ratelimit import RedisRateWindows

pytestmark = pytest.mark.integration

S = OrderStatus
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
ORDER = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}
FAST = ApiSettings(ws_poll_s=0.2, ws_resubscribe_s=0.5, ws_first_message_timeout_s=5.0)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    return LocalGateway()


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Env:
    """The services of one test, and helpers to look at what they stored."""

    def __init__(self, db: AsyncConnectionPool, redis: aioredis.Redis, prefix: str, gateway: LocalGateway,
                 redis_url: str | None = None) -> None:  # fmt: skip
        self.db = db
        self.redis = redis
        self.redis_url = redis_url  # given: the app follows events through a hub of its own on it
        self.gateway = gateway
        self.store = OrderStore(db)
        self.bus = EventBus(redis)
        self.queue = OrderQueue(redis, stream=f"{prefix}queue", delayed_key=f"{prefix}delayed")

    def services(self, options: ApiSettings = FAST, **overrides: Any) -> Services:
        values: dict[str, Any] = {
            "store": self.store,
            "queue": self.queue,
            "bus": self.bus,
            "health": StoreHealthChecks(self.db, self.redis),
            "windows": RedisRateWindows(self.redis),
            "tokens": self.gateway.tokens,
            "engine": self.gateway,
            "options": options,
        }
        if self.redis_url is not None and "bus" not in overrides:
            hub = EventHub(self.redis_url)
            values["bus"], values["closers"] = HubFeed(self.bus, hub), [hub.aclose]
        values.update(overrides)
        return Services(**values)

    async def rows(self) -> tuple[int, int]:
        """(orders, history rows)."""
        async with self.db.connection() as conn:
            orders = await (await conn.execute("SELECT count(*) FROM orders")).fetchone()
            events = await (await conn.execute("SELECT count(*) FROM order_status_history")).fetchone()
        return orders[0], events[0]

    async def queued(self) -> list[str]:
        entries = await self.redis.xrange(self.queue.stream)
        return [fields[b"order_id"].decode() for _id, fields in entries]

    async def step(self, order_id: str, status: OrderStatus, *, publish: bool = True, attempt: int = 1,
                   details: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """What an executor does: commit the transition, then publish it."""
        event = await self.store.transition(order_id, status, attempt=attempt, details=details or {"step": str(status)})
        if publish:
            await self.bus.publish(event)
        return event.to_json()


@pytest.fixture
async def env(db: AsyncConnectionPool, redis_client: aioredis.Redis, rkey: str, gateway: LocalGateway,
              redis_url: str) -> Env:  # fmt: skip
    return Env(db, redis_client, rkey, gateway, redis_url)


def factory(services: Services) -> Callable[[], Awaitable[Services]]:
    async def make() -> Services:
        return services

    return make


@contextlib.asynccontextmanager
async def client_for(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(factory(services))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(env.services()) as client:
        yield client


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the test runner keeps its own signal handlers
        yield


@contextlib.asynccontextmanager
async def live_server(services: Services) -> AsyncIterator[str]:
    """The app on uvicorn at 127.0.0.1:<free port>, in this event loop; yields the base URL."""
    app = create_app(factory(services))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_ping_interval=None)
    server = _Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
async def server(env: Env) -> AsyncIterator[str]:
    async with live_server(env.services()) as host:
        yield host


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


async def submit(api: httpx.AsyncClient, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    response = await api.post("/api/orders/execute", json=body or ORDER, **kwargs)
    assert response.status_code == 202, response.text
    return response.json()


# --------------------------------------------------------------------------- submission


async def test_a_valid_order_is_stored_pending_published_and_queued(env: Env, api: httpx.AsyncClient) -> None:
    async with env.bus.subscribe_all() as live:
        response = await api.post("/api/orders/execute", json=ORDER)
        event = await asyncio.wait_for(anext(aiter(live)), 5)
    assert response.status_code == 202, response.text
    body = response.json()
    order_id = body["orderId"]
    assert uuid.UUID(order_id)
    assert body["status"] == "pending"
    assert body["created"] is True
    assert body["wsPath"] == f"/api/orders/{order_id}/ws"
    assert body["wsUrl"] == f"ws://testserver/api/orders/{order_id}/ws"
    assert body["order"] == {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5",
                             "slippageBps": 100}  # fmt: skip
    assert response.headers["location"] == f"/api/orders/{order_id}"

    record = await env.store.get_order(order_id)
    assert record is not None and record.status == S.PENDING
    assert (record.amount_in, record.mint_in, record.mint_out) == (1_500_000_000, SOL_MINT, USDC_MINT)
    history = await env.store.history(order_id)
    assert [(e.seq, e.status) for e in history] == [(1, S.PENDING)]
    assert event["orderId"] == order_id and event["seq"] == 1 and event["status"] == "pending"
    assert await env.queued() == [order_id]

    got = (await api.get(f"/api/orders/{order_id}")).json()
    assert got["orderId"] == order_id and got["status"] == "pending"
    assert got["amountIn"] == "1.5" and got["amountInBaseUnits"] == "1500000000"
    assert got["seq"] == 1 and got["error"] is None and got["wsPath"] == f"/api/orders/{order_id}/ws"


async def test_default_slippage_and_tokens_by_mint(env: Env, api: httpx.AsyncClient) -> None:
    body = await submit(api, {"tokenIn": USDC_MINT, "tokenOut": SOL_MINT, "amountIn": 250})
    assert body["order"] == {"type": "market", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250",
                             "slippageBps": 50}  # fmt: skip
    record = await env.store.get_order(body["orderId"])
    assert record.amount_in == 250_000_000 and record.slippage_bps == 50


@pytest.mark.parametrize(
    ("payload", "amount", "units", "bps"),
    [
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 2, "slippage": 0.01}, "2", 2_000_000_000, 100),
        ({"tokenIn": "sol", "tokenOut": "usdc", "amount": "0.25", "slippage": "0.005"}, "0.25", 250_000_000, 50),
        ({"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 1.1, "slippageBps": "75"},
         "1.1", 1_100_000_000, 75),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.50", "slippageBps": 100, "slippage": 0.01},
         "1.5", 1_500_000_000, 100),
    ],
)  # fmt: skip
async def test_the_original_specs_aliases_are_accepted(
    env: Env, api: httpx.AsyncClient, payload: dict, amount: str, units: int, bps: int
) -> None:
    body = await submit(api, payload)
    assert body["order"]["amountIn"] == amount and body["order"]["slippageBps"] == bps
    record = await env.store.get_order(body["orderId"])
    assert (record.amount_in, record.slippage_bps, record.token_in, record.token_out) == (units, bps, "SOL", "USDC")


async def test_an_idempotency_key_returns_the_same_order_and_a_different_body_is_409(
    env: Env, api: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await api.post("/api/orders/execute", json=ORDER, headers=key)
    assert first.status_code == 202
    # the same order, written differently: same meaning, same order
    same = {"tokenIn": SOL_MINT, "tokenOut": "usdc", "amount": 1.5, "slippage": 0.01}
    again = await api.post("/api/orders/execute", json=same, headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["orderId"] == first.json()["orderId"]
    assert again.json()["created"] is False
    assert await env.rows() == (1, 1)
    assert await env.queued() == [first.json()["orderId"]]

    other = await api.post("/api/orders/execute", json={**ORDER, "amountIn": "2"}, headers=key)
    error = assert_error_shape(other, 409, "IDEMPOTENCY_CONFLICT")
    assert error["details"]["existingOrderId"] == first.json()["orderId"]
    assert await env.rows() == (1, 1)

    # without a key, the same body is a new order
    await submit(api)
    assert await env.rows() == (2, 2)


async def test_concurrent_submissions_with_one_key_make_one_order(env: Env, api: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    replies = await asyncio.gather(*(api.post("/api/orders/execute", json=ORDER, headers=key) for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [200, 200, 200, 200, 202]
    assert len({r.json()["orderId"] for r in replies}) == 1
    assert await env.rows() == (1, 1)


# --------------------------------------------------------------------------- every bad input


BAD_ORDERS: list[tuple[str, Any, int, str, str | None]] = [
    # (case, body (str = raw bytes), status, code, field named in details)
    ("malformed json", '{"tokenIn": "SOL", ', 400, "MALFORMED_JSON", None),
    ("not an object", "[1, 2, 3]", 422, "VALIDATION_ERROR", "body"),
    ("a string", '"SOL"', 422, "VALIDATION_ERROR", "body"),
    ("empty body", "", 422, "VALIDATION_ERROR", "body"),
    ("missing tokenIn", {"tokenOut": "USDC", "amountIn": "1"}, 422, "VALIDATION_ERROR", "tokenIn"),
    ("missing tokenOut", {"tokenIn": "SOL", "amountIn": "1"}, 422, "VALIDATION_ERROR", "tokenOut"),
    ("missing amount", {"tokenIn": "SOL", "tokenOut": "USDC"}, 422, "VALIDATION_ERROR", "amountIn"),
    ("tokenIn a number", {**ORDER, "tokenIn": 5}, 422, "VALIDATION_ERROR", "tokenIn"),
    ("tokenOut null", {**ORDER, "tokenOut": None}, 422, "VALIDATION_ERROR", "tokenOut"),
    ("amount a bool", {**ORDER, "amountIn": True}, 422, "VALIDATION_ERROR", "amountIn"),
    ("amount a list", {**ORDER, "amountIn": [1]}, 422, "VALIDATION_ERROR", "amountIn"),
    ("amount an object", {**ORDER, "amountIn": {"v": 1}}, 422, "VALIDATION_ERROR", "amountIn"),
    ("type a number", {**ORDER, "type": 1}, 422, "VALIDATION_ERROR", "type"),
    ("unknown tokenIn", {**ORDER, "tokenIn": "DOGE"}, 422, "UNKNOWN_TOKEN", "tokenIn"),
    ("unknown tokenOut mint", {**ORDER, "tokenOut": "11111111111111111111111111111111"}, 422, "UNKNOWN_TOKEN",
     "tokenOut"),
    ("empty token", {**ORDER, "tokenIn": " "}, 422, "VALIDATION_ERROR", "tokenIn"),
    ("same token", {**ORDER, "tokenOut": "SOL"}, 422, "SAME_TOKEN", "tokenOut"),
    ("same token by mint", {**ORDER, "tokenOut": SOL_MINT}, 422, "SAME_TOKEN", "tokenOut"),
    ("zero", {**ORDER, "amountIn": "0"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("zero number", {**ORDER, "amountIn": 0}, 422, "INVALID_AMOUNT", "amountIn"),
    ("negative", {**ORDER, "amountIn": "-1.5"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("negative alias", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": -3}, 422, "INVALID_AMOUNT", "amount"),
    ("not a number", {**ORDER, "amountIn": "1.5 SOL"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("comma decimal", {**ORDER, "amountIn": "1,5"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("empty amount", {**ORDER, "amountIn": ""}, 422, "INVALID_AMOUNT", "amountIn"),
    ("nan", {**ORDER, "amountIn": "NaN"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("infinity", {**ORDER, "amountIn": "Infinity"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("json infinity", '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":Infinity}', 422, "INVALID_AMOUNT", "amountIn"),
    ("huge", {**ORDER, "amountIn": "1e30"}, 422, "AMOUNT_TOO_LARGE", "amountIn"),
    ("above u64", {**ORDER, "amountIn": "18446744074"}, 422, "AMOUNT_TOO_LARGE", "amountIn"),
    ("huge number", {**ORDER, "amountIn": 1e300}, 422, "AMOUNT_TOO_LARGE", "amountIn"),
    ("huge exponent", {**ORDER, "amountIn": "1e999999999"}, 422, "AMOUNT_TOO_LARGE", "amountIn"),
    ("too long", {**ORDER, "amountIn": "1" * 65}, 422, "INVALID_AMOUNT", "amountIn"),
    ("over-precise SOL", {**ORDER, "amountIn": "0.0000000001"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("over-precise USDC", {**ORDER, "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "1.0000001"}, 422,
     "INVALID_AMOUNT", "amountIn"),
    ("tiny exponent", {**ORDER, "amountIn": "1e-999999999"}, 422, "INVALID_AMOUNT", "amountIn"),
    ("two amounts that disagree", {**ORDER, "amount": "2"}, 422, "VALIDATION_ERROR", "amount"),
    ("slippage zero", {**ORDER, "slippageBps": 0}, 422, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage negative", {**ORDER, "slippageBps": -5}, 422, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage too high", {**ORDER, "slippageBps": 5001}, 422, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage fractional bps", {**ORDER, "slippageBps": 10.5}, 422, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage text", {**ORDER, "slippageBps": "lots"}, 422, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage bool", {**ORDER, "slippageBps": True}, 422, "VALIDATION_ERROR", "slippageBps"),
    ("slippage fraction too high", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.6}, 422,
     "INVALID_SLIPPAGE", "slippage"),
    ("slippage as percent", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 1}, 422,
     "INVALID_SLIPPAGE", "slippage"),
    ("slippage below a bp", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.00001}, 422,
     "INVALID_SLIPPAGE", "slippage"),
    ("slippages that disagree", {**ORDER, "slippage": 0.02}, 422, "INVALID_SLIPPAGE", "slippage"),
    ("limit order without its price", {**ORDER, "type": "limit", "slippageBps": None}, 422, "MISSING_PRICE", "limitPrice"),
    ("sniper for a token that trades", {**ORDER, "type": "sniper"}, 422, "TOKEN_ALREADY_TRADES", "tokenOut"),
    ("unknown type", {**ORDER, "type": "stop"}, 422, "UNSUPPORTED_ORDER_TYPE", "type"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "code", "field"), BAD_ORDERS, ids=[c[0] for c in BAD_ORDERS])
async def test_bad_orders_get_a_4xx_in_the_error_shape_and_store_nothing(
    env: Env, api: httpx.AsyncClient, case: str, body: Any, status: int, code: str, field: str | None
) -> None:
    if isinstance(body, str):
        response = await api.post(
            "/api/orders/execute", content=body.encode(), headers={"content-type": "application/json"}
        )
    else:
        response = await api.post("/api/orders/execute", json=body)
    error = assert_error_shape(response, status, code)
    if field is not None:
        assert isinstance(error["details"], list)
        assert field in [d["field"] for d in error["details"]], error
        assert field in error["message"], error
    assert await env.rows() == (0, 0)
    assert await env.queued() == []


async def test_several_bad_fields_are_named_together(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/orders/execute", json={"tokenIn": "DOGE", "tokenOut": "USDC", "amountIn": "-1",
                                                            "slippageBps": 9999})  # fmt: skip
    error = assert_error_shape(response, 422, "UNKNOWN_TOKEN")
    assert [d["field"] for d in error["details"]] == ["tokenIn", "amountIn", "slippageBps"]


async def test_other_malformed_requests(env: Env, api: httpx.AsyncClient) -> None:
    # the body is not declared JSON
    response = await api.post("/api/orders/execute", content=json.dumps(ORDER), headers={"content-type": "text/plain"})
    assert_error_shape(response, 422, "VALIDATION_ERROR")
    # not UTF-8
    response = await api.post("/api/orders/execute", content=b'{"tokenIn": "\xff"}',
                              headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code in (400, 422)
    assert_error_shape(response, response.status_code)
    # nested too deep for the parser, and an integer literal too long to parse
    for raw in ("[" * 5000 + "]" * 5000, '{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 1' + "0" * 5000 + "}"):
        response = await api.post("/api/orders/execute", content=raw, headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), response.text
        assert_error_shape(response, response.status_code)
    # a body over the limit, declared...
    big = {**ORDER, "note": "x" * 20_000}
    error = assert_error_shape(await api.post("/api/orders/execute", json=big), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["maxBytes"] == 16 * 1024

    # ...or streamed without a length
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"tokenIn": "SOL", "note": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    response = await api.post("/api/orders/execute", content=chunks(), headers={"content-type": "application/json"})
    assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    # a bad idempotency key
    response = await api.post("/api/orders/execute", json=ORDER, headers={"Idempotency-Key": "k" * 300})
    assert_error_shape(response, 400, "INVALID_IDEMPOTENCY_KEY")
    assert await env.rows() == (0, 0)
    assert await env.queued() == []


async def test_unknown_routes_methods_and_order_ids(api: httpx.AsyncClient) -> None:
    error = assert_error_shape(await api.get("/api/nothing-here"), 404, "NOT_FOUND")
    assert "/api/nothing-here" in error["message"]
    assert_error_shape(await api.post("/api/orders/execute/now", json=ORDER), 404, "NOT_FOUND")
    assert_error_shape(await api.delete("/api/orders"), 405, "METHOD_NOT_ALLOWED")
    assert_error_shape(await api.put("/api/orders/execute", json=ORDER), 405, "METHOD_NOT_ALLOWED")
    for path in ("/api/orders/not-a-uuid", "/api/orders/not-a-uuid/history", "/api/orders/1234"):
        error = assert_error_shape(await api.get(path), 400, "INVALID_ORDER_ID")
        assert error["details"][0]["field"] == "orderId"
    missing = str(uuid.uuid4())
    for path in (f"/api/orders/{missing}", f"/api/orders/{missing}/history"):
        error = assert_error_shape(await api.get(path), 404, "ORDER_NOT_FOUND")
        assert error["details"]["orderId"] == missing
    # the WebSocket paths answer a plain GET with 426, in the same shape
    assert_error_shape(await api.get(f"/api/orders/{missing}/ws"), 426, "UPGRADE_REQUIRED")
    assert_error_shape(await api.get("/api/orders/execute"), 426, "UPGRADE_REQUIRED")


async def test_an_upper_case_order_id_is_the_same_order(api: httpx.AsyncClient) -> None:
    order_id = (await submit(api))["orderId"]
    assert (await api.get(f"/api/orders/{order_id.upper()}")).json()["orderId"] == order_id


# --------------------------------------------------------------------------- outages


async def test_postgres_down_answers_503_and_stores_nothing(env: Env) -> None:
    dead = AsyncConnectionPool(
        f"postgresql://nobody@127.0.0.1:{dead_port()}/none?connect_timeout=1",
        min_size=0, max_size=1, timeout=1.0, open=False,
    )  # fmt: skip
    await dead.open(wait=False)
    try:
        services = env.services(store=OrderStore(dead), health=StoreHealthChecks(dead, env.redis))
        async with client_for(services) as api:
            response = await api.post("/api/orders/execute", json=ORDER)
            error = assert_error_shape(response, 503, "DATABASE_UNAVAILABLE")
            assert "nothing was stored" in error["message"]
            assert response.headers.get("retry-after") == "1"
            assert_error_shape(await api.get(f"/api/orders/{uuid.uuid4()}"), 503, "DATABASE_UNAVAILABLE")
            assert_error_shape(await api.get("/api/orders"), 503, "DATABASE_UNAVAILABLE")
            health = await api.get("/health")
            assert health.status_code == 503
            assert health.json()["down"] == ["postgres"]
            assert health.json()["error"]["code"] == "UNHEALTHY"
    finally:
        await dead.close()
    assert await env.rows() == (0, 0)
    assert await env.queued() == []


async def test_redis_down_after_the_commit_still_answers_202(env: Env) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=dead_port(), socket_connect_timeout=0.5)
    try:
        services = env.services(
            queue=OrderQueue(dead), bus=EventBus(dead), health=StoreHealthChecks(env.db, dead),
            windows=RedisRateWindows(dead),
        )  # fmt: skip
        async with client_for(services) as api:
            response = await api.post("/api/orders/execute", json=ORDER)
            assert response.status_code == 202, response.text
            order_id = response.json()["orderId"]
            # stored and pending: the engine's sweep queues it from PostgreSQL
            record = await env.store.get_order(order_id)
            assert record is not None and record.status == S.PENDING
            assert [o.id for o in await env.store.unfinished_orders()] == [order_id]
            assert_error_shape(await api.get("/api/queue/metrics"), 503, "REDIS_UNAVAILABLE")
            health = await api.get("/health")
            assert health.status_code == 503 and health.json()["down"] == ["redis"]
            assert health.json()["checks"]["postgres"]["ok"] is True
    finally:
        await dead.aclose()


class _DownEngine(LocalGateway):
    def __init__(self, gateway: LocalGateway) -> None:
        self.__dict__.update(gateway.__dict__)

    async def health(self) -> dict[str, Any]:
        return {"ok": False, "error": "actor 'router' not found in namespace 'dexengine'"}

    async def dispatcher_stats(self) -> dict[str, Any]:
        from serve.errors import EngineUnavailable

        raise EngineUnavailable("actor 'dispatcher' not found")

    async def pool_summaries(self) -> list[dict[str, Any]]:
        from serve.errors import EngineUnavailable

        raise EngineUnavailable("actor 'router' not found")


async def test_engine_down_is_reported_not_hidden(env: Env) -> None:
    async with client_for(env.services(engine=_DownEngine(env.gateway))) as api:
        health = await api.get("/health")
        assert health.status_code == 503 and health.json()["down"] == ["ray"]
        metrics = await api.get("/api/queue/metrics")
        assert metrics.status_code == 200
        assert metrics.json()["engineAvailable"] is False and metrics.json()["running"] is None
        assert metrics.json()["concurrency"] == 10 and metrics.json()["rateLimitPerMinute"] == 100
        assert_error_shape(await api.get("/api/pools"), 503, "ENGINE_UNAVAILABLE")
        # orders are still accepted: they wait in the queue for the engine
        await submit(api)


async def test_the_standard_factory_opens_and_closes_its_own_connections(
    db: AsyncConnectionPool, database_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    from engine.settings import EngineSettings
    from runtime.api_services import ServicesFromSettings

    settings = EngineSettings(database_url=database_url, redis_url=redis_url, dispatch={"rate_limit_per_minute": 42})
    made = ServicesFromSettings(settings, gateway="local", options=FAST)
    app = create_app(made)
    async with app.router.lifespan_context(app):
        services = app.state.services
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine.local:8000") as api:
            reply = await api.post("/api/orders/execute", json=ORDER)
            assert reply.status_code == 202, reply.text
            assert reply.json()["wsUrl"].startswith("ws://engine.local:8000/api/orders/")
            assert (await api.get("/health")).status_code == 200
            assert (await api.get("/api/queue/metrics")).json()["rateLimitPerMinute"] == 42
        assert services.health.pool is not db
    assert app.state.services is None
    assert services.health.pool.closed
    order_id = reply.json()["orderId"]
    assert await OrderStore(db).get_order(order_id) is not None
    # it went to the engine's real queue: take it out again, nothing runs it here
    default = OrderQueue(redis_client)
    mine = [msg_id for msg_id, fields in await redis_client.xrange(default.stream)
            if fields.get(b"order_id") == order_id.encode()]  # fmt: skip
    assert len(mine) == 1
    await redis_client.xdel(default.stream, *mine)


# --------------------------------------------------------------------------- reads


async def test_list_is_recent_first_filters_by_status_and_pages_with_a_cursor(env: Env, api: httpx.AsyncClient) -> None:
    ids = [(await submit(api, {**ORDER, "amountIn": str(i + 1)}))["orderId"] for i in range(5)]
    await env.step(ids[1], S.FAILED, details={"error": {"code": "X", "message": "test"}})
    await env.step(ids[3], S.FAILED)
    await env.step(ids[4], S.ROUTING)

    first = (await api.get("/api/orders", params={"limit": 2})).json()
    assert [o["orderId"] for o in first["orders"]] == [ids[4], ids[3]]
    assert first["limit"] == 2 and first["nextCursor"]
    seen = [o["orderId"] for o in first["orders"]]
    cursor = first["nextCursor"]
    while cursor:
        page = (await api.get("/api/orders", params={"limit": 2, "cursor": cursor})).json()
        seen += [o["orderId"] for o in page["orders"]]
        cursor = page["nextCursor"]
    assert seen == ids[::-1]

    failed = (await api.get("/api/orders", params={"status": "failed"})).json()
    assert [o["orderId"] for o in failed["orders"]] == [ids[3], ids[1]]
    assert failed["nextCursor"] is None
    assert all(o["status"] == "failed" for o in failed["orders"])
    routing = (await api.get("/api/orders?status=routing")).json()["orders"]
    assert [o["orderId"] for o in routing] == [ids[4]]
    assert (await api.get("/api/orders?status=confirmed")).json()["orders"] == []

    assert_error_shape(await api.get("/api/orders?status=bogus"), 422, "VALIDATION_ERROR")
    assert_error_shape(await api.get("/api/orders?limit=201"), 422, "VALIDATION_ERROR")
    assert_error_shape(await api.get("/api/orders?limit=0"), 422, "VALIDATION_ERROR")
    assert_error_shape(await api.get("/api/orders?limit=ten"), 422, "VALIDATION_ERROR")
    assert_error_shape(await api.get("/api/orders?cursor=garbage"), 400, "INVALID_CURSOR")
    assert len((await api.get("/api/orders?limit=200")).json()["orders"]) == 5


async def test_history_and_a_confirmed_order_in_token_units(env: Env, api: httpx.AsyncClient) -> None:
    order_id = (await submit(api))["orderId"]
    decision = await env.gateway.route("SOL", "USDC", 1_500_000_000)
    route = decision.route.to_dict()
    await env.store.transition(order_id, S.ROUTING, attempt=1, details=routing_details(decision, None),
                               fields={"route": route, "dex": route["legs"][0]["dex"]})  # fmt: skip
    await env.store.transition(order_id, S.BUILDING, attempt=1, fields={"route": {**route, "min_out": 222_000_000}})
    await env.store.transition(order_id, S.SUBMITTED, attempt=1, fields={"tx_signature": "5igSig"})
    await env.store.transition(
        order_id, S.CONFIRMED, attempt=1, details={"amountOut": "224.565349"},
        fields={"amount_out": route["amount_out"], "executed_price": "149.710232666667", "fee": 3_000_000,
                "price_impact_bps": 0.5},
    )  # fmt: skip
    history = (await api.get(f"/api/orders/{order_id}/history")).json()
    assert history["orderId"] == order_id and history["status"] == "confirmed" and history["final"] is True
    assert [(e["seq"], e["status"]) for e in history["events"]] == [
        (1, "pending"), (2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")
    ]  # fmt: skip
    for event in history["events"]:
        assert set(event) == {"orderId", "seq", "status", "attempt", "timestamp", "details"}
    later = (await api.get(f"/api/orders/{order_id}/history", params={"afterSeq": 3})).json()
    assert [e["seq"] for e in later["events"]] == [4, 5]

    order = (await api.get(f"/api/orders/{order_id}")).json()
    assert order["status"] == "confirmed"
    assert order["amountOut"] == "224.565349" and order["amountOutBaseUnits"] == "224565349"
    assert order["fee"] == "0.003" and order["feeToken"] == "SOL" and order["executedPrice"] == "149.710232666667"
    assert order["txSignature"] == "5igSig" and order["dex"] == "meteora"
    assert order["route"]["kind"] == "single"
    assert order["route"]["amountIn"] == "1.5" and order["route"]["minAmountOut"] == "222"
    assert order["route"]["legs"][0]["poolId"] == "meteora:SOL-USDC"


async def test_queue_metrics(env: Env, api: httpx.AsyncClient) -> None:
    ids = [(await submit(api))["orderId"] for _ in range(3)]
    await env.step(ids[0], S.FAILED)
    await env.step(ids[1], S.ROUTING)
    await env.redis.zadd(env.queue.delayed_key, {ids[1]: 2e9})
    metrics = (await api.get("/api/queue/metrics")).json()
    assert metrics["waiting"] == 3 and metrics["retrying"] == 1
    assert metrics["running"] == 0 and metrics["engineAvailable"] is True
    assert metrics["completed"] == 0 and metrics["failed"] == 1
    assert metrics["rateLimitPerMinute"] == 100 and metrics["concurrency"] == 10
    assert metrics["byStatus"] == {"pending": 1, "routing": 1, "building": 0, "submitted": 0, "confirmed": 0,
                                   "failed": 1, "open": 0, "triggered": 0, "cancelled": 0, "expired": 0}  # fmt: skip
    oldest = metrics["oldestNonFinal"]  # the first order is final: the second is the oldest open one
    assert oldest["orderId"] == ids[1] and oldest["status"] == "routing"
    assert metrics["oldestNonFinalAgeS"] == oldest["ageS"] >= oldest["idleS"] >= 0


async def test_health_when_everything_is_up(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["down"] == [] and body["error"] is None
    assert set(body["checks"]) == {"postgres", "redis", "ray"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_pools_in_token_units(api: httpx.AsyncClient) -> None:
    pools = (await api.get("/api/pools")).json()["pools"]
    by_id = {p["poolId"]: p for p in pools}
    assert {"raydium:SOL-USDC", "meteora:SOL-USDC"} <= set(by_id)
    ray_pool = by_id["raydium:SOL-USDC"]
    assert ray_pool["dex"] == "raydium" and ray_pool["kind"] == "cpmm" and ray_pool["pair"] == "SOL/USDC"
    assert ray_pool["feeBps"] == 30 and 140 < ray_pool["spotPrice"] < 160
    assert ray_pool["reserves"] == {"SOL": "333.333333333", "USDC": "50000"}
    met = by_id["meteora:SOL-USDC"]
    assert met["kind"] == "dlmm" and met["bins"] == 139 and met["activeBin"] is not None
    assert all(isinstance(v, str) for p in pools for v in p["reserves"].values())


async def test_quote_previews_the_route_with_every_venue(api: httpx.AsyncClient) -> None:
    quote = (await api.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"})).json()
    assert quote["tokenIn"] == "SOL" and quote["amountIn"] == "1.5" and quote["slippageBps"] == 50
    assert quote["route"]["kind"] == "single"
    venues = {q["dex"]: q for q in quote["quotes"]}
    assert set(venues) == {"raydium", "meteora"}
    best = max(venues.values(), key=lambda q: float(q["amountOut"]))
    assert quote["bestDex"] == best["dex"] and quote["route"]["amountOut"] == best["amountOut"]
    assert "." in best["amountOut"] and float(best["amountOut"]) > 200
    assert float(quote["route"]["minAmountOut"]) < float(quote["route"]["amountOut"])
    assert quote["reason"].startswith("best output")

    two_hop = (await api.get("/api/quote?tokenIn=BONK&tokenOut=USDC&amount=5000000&slippageBps=150")).json()
    assert two_hop["route"]["kind"] == "two_hop"
    assert [leg["tokenOut"] for leg in two_hop["route"]["legs"]] == ["SOL", "USDC"]

    error = assert_error_shape(await api.get("/api/quote?tokenIn=JUP&tokenOut=USDC&amountIn=100000000"), 422,
                               "INSUFFICIENT_LIQUIDITY")  # fmt: skip
    assert error["details"]["quotes"][0]["error"] == "INSUFFICIENT_LIQUIDITY"
    error = assert_error_shape(await api.get("/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=100000"), 422,
                               "INSUFFICIENT_LIQUIDITY")  # fmt: skip
    assert "move the price" in error["message"]
    assert_error_shape(await api.get("/api/quote?tokenIn=BONK&tokenOut=JUP&amountIn=100"), 422, "NO_ROUTE")
    assert_error_shape(await api.get("/api/quote?tokenIn=DOGE&tokenOut=USDC&amountIn=1"), 422, "UNKNOWN_TOKEN")
    assert_error_shape(await api.get("/api/quote?tokenIn=SOL&tokenOut=SOL&amountIn=1"), 422, "SAME_TOKEN")
    assert_error_shape(await api.get("/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=-1"), 422, "INVALID_AMOUNT")
    assert_error_shape(await api.get("/api/quote?tokenIn=SOL&tokenOut=USDC"), 422, "VALIDATION_ERROR")
    assert_error_shape(await api.get("/api/quote?tokenIn=SOL&amountIn=1"), 422, "VALIDATION_ERROR")


async def test_openapi_documents_every_endpoint_with_examples(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]
    expected = {
        ("post", "/api/orders/execute"), ("get", "/api/orders/{orderId}/ws"), ("get", "/api/orders/{orderId}"),
        ("get", "/api/orders/{orderId}/history"), ("get", "/api/orders"), ("get", "/api/queue/metrics"),
        ("get", "/health"), ("get", "/api/pools"), ("get", "/api/quote"),
    }  # fmt: skip
    assert expected <= {(m, p) for p, ops in paths.items() for m in ops}
    execute = paths["/api/orders/execute"]["post"]
    examples = execute["requestBody"]["content"]["application/json"]["examples"]
    assert {"market", "seed_aliases"} <= set(examples)
    assert {"202", "409", "413", "422", "503"} <= set(execute["responses"])
    props = schema["components"]["schemas"]["ExecuteOrderRequest"]["properties"]
    assert {"type", "tokenIn", "tokenOut", "amountIn", "amount", "slippageBps", "slippage"} <= set(props)
    assert (await api.get("/docs")).status_code == 200


# --------------------------------------------------------------------------- WebSockets


async def receive_all(ws: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    messages = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return messages


async def receive(ws: Any, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in range(n)]


def statuses(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(m["seq"], m["status"]) for m in messages if m.get("type") == "status"]


async def test_ws_replays_then_streams_live_without_gaps_or_duplicates(env: Env, server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        reply = (await http.post("/api/orders/execute", json=ORDER)).json()
    order_id = reply["orderId"]
    assert reply["wsUrl"] == f"ws://{server}/api/orders/{order_id}/ws"
    routing = await env.step(order_id, S.ROUTING)
    async with websockets.connect(reply["wsUrl"]) as ws:
        replay = await receive(ws, 2)
        assert statuses(replay) == [(1, "pending"), (2, "routing")]
        first = replay[0]
        assert set(first) == {"type", "orderId", "seq", "status", "attempt", "timestamp", "details"}
        assert first["orderId"] == order_id and first["attempt"] == 1
        await env.bus.publish(routing)  # a duplicate of an event already replayed
        await env.step(order_id, S.BUILDING)
        building = await receive(ws, 1)
        assert statuses(building) == [(3, "building")]
        # a lost publish (Redis blip): the next live event reveals the gap, PostgreSQL fills it
        await env.step(order_id, S.SUBMITTED, publish=False, details={"txSignature": "sig"})
        confirmed = await env.step(order_id, S.CONFIRMED, publish=False, details={"amountOut": "224.5"})
        await env.bus.publish(confirmed)
        await env.bus.publish(confirmed)  # and a duplicate of the last one
        rest = await receive_all(ws)
        assert statuses(rest) == [(4, "submitted"), (5, "confirmed")]
        assert rest[0]["details"] == {"txSignature": "sig"}
        assert ws.close_code == 1000
        assert "confirmed" in ws.close_reason


async def test_ws_a_lost_last_event_still_arrives_by_polling(env: Env, server: str) -> None:
    order = await env.store.create_order(_new_order())
    order_id = order[0].id
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        assert statuses(await receive(ws, 1)) == [(1, "pending")]
        await env.step(order_id, S.FAILED, publish=False, details={"error": {"code": "NO_ROUTE"}})
        rest = await receive_all(ws, timeout=5)
    assert statuses(rest) == [(2, "failed")]
    assert ws.close_code == 1000


@pytest.mark.parametrize("follow", ["hub", "bus"])
async def test_ws_without_redis_streams_from_postgresql(env: Env, follow: str) -> None:
    port = dead_port()
    dead = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    hub = EventHub(f"redis://127.0.0.1:{port}")
    bus = HubFeed(EventBus(dead), hub) if follow == "hub" else EventBus(dead)
    try:
        async with live_server(env.services(bus=bus, closers=[hub.aclose])) as host:
            order_id = (await env.store.create_order(_new_order()))[0].id
            async with websockets.connect(f"ws://{host}/api/orders/{order_id}/ws") as ws:
                assert statuses(await receive(ws, 1)) == [(1, "pending")]
                for status in (S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED):
                    await env.step(order_id, status, publish=False)
                    await asyncio.sleep(0.05)
                rest = await receive_all(ws)
    finally:
        await dead.aclose()
    assert statuses(rest) == [(2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")]
    assert ws.close_code == 1000


class _FlakyBus(EventBus):
    """The real bus, whose first subscription fails (Redis restarting)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.attempts = 0

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        self.attempts += 1
        if self.attempts == 1:
            raise aioredis.ConnectionError("Redis is restarting")
        async with super().subscribe(order_id) as events:
            yield events


async def test_ws_subscribes_again_once_redis_is_back(env: Env) -> None:
    bus = _FlakyBus(env.redis)
    async with live_server(env.services(bus=bus, options=ApiSettings(ws_poll_s=0.3, ws_resubscribe_s=0.3))) as host:
        order_id = (await env.store.create_order(_new_order()))[0].id
        async with websockets.connect(f"ws://{host}/api/orders/{order_id}/ws") as ws:
            assert statuses(await receive(ws, 1)) == [(1, "pending")]
            for _ in range(100):
                if bus.attempts >= 2:
                    break
                await asyncio.sleep(0.05)
            assert bus.attempts == 2
            await asyncio.sleep(0.1)
            for status in (S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED):
                await env.step(order_id, status)
            rest = await receive_all(ws)
    assert statuses(rest) == [(2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")]
    assert ws.close_code == 1000


async def test_ws_rides_out_the_loss_of_its_hubs_subscription_and_follows_through_a_new_one(env: Env) -> None:
    from tests.integration.test_event_hub import kill_hub_connections

    services = env.services(options=ApiSettings(ws_poll_s=0.3, ws_resubscribe_s=0.3))
    hub = services.bus.hub
    async with live_server(services) as host:
        order_id = (await env.store.create_order(_new_order()))[0].id
        async with websockets.connect(f"ws://{host}/api/orders/{order_id}/ws") as ws:
            assert statuses(await receive(ws, 1)) == [(1, "pending")]
            await env.step(order_id, S.ROUTING)
            assert statuses(await receive(ws, 1)) == [(2, "routing")]
            assert (hub.connections, hub.listeners) == (1, 1)
            assert await kill_hub_connections(env.redis) == 1
            for _ in range(100):  # the stream polls PostgreSQL, then subscribes again: a new connection
                if hub.connections == 2 and hub.listeners == 1:
                    break
                await asyncio.sleep(0.05)
            assert (hub.connections, hub.listeners) == (2, 1)
            for status in (S.BUILDING, S.SUBMITTED, S.CONFIRMED):
                await env.step(order_id, status)
            rest = await receive_all(ws)
    assert statuses(rest) == [(3, "building"), (4, "submitted"), (5, "confirmed")]
    assert ws.close_code == 1000


async def test_ws_late_join_gets_the_whole_history_then_1000(env: Env, server: str) -> None:
    order_id = (await env.store.create_order(_new_order()))[0].id
    for status in (S.ROUTING, S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED):
        await env.step(order_id, status)
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        messages = await receive_all(ws)
    assert statuses(messages) == [(1, "pending"), (2, "routing"), (3, "pending"), (4, "routing"), (5, "building"),
                                  (6, "submitted"), (7, "confirmed")]  # fmt: skip
    assert ws.close_code == 1000


async def test_ws_many_clients_each_get_every_event_once(env: Env, server: str) -> None:
    order_id = (await env.store.create_order(_new_order()))[0].id
    url = f"ws://{server}/api/orders/{order_id}/ws"
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(websockets.connect(url)) for _ in range(5)]
        for ws in sockets:
            assert statuses(await receive(ws, 1)) == [(1, "pending")]
        for status in (S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED):
            await env.step(order_id, status)
        results = await asyncio.gather(*(receive_all(ws) for ws in sockets))
    for messages in results:
        assert statuses(messages) == [(2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")]
    assert {ws.close_code for ws in sockets} == {1000}


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1234"])
async def test_ws_unknown_or_malformed_order_is_closed_4404(server: str, order_id: str) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        messages = await receive_all(ws)
    assert ws.close_code == 4404
    assert ws.close_reason and ("not found" in ws.close_reason or "not a UUID" in ws.close_reason)
    assert messages and messages[0]["type"] == "error"
    assert messages[0]["error"]["code"] in ("ORDER_NOT_FOUND", "INVALID_ORDER_ID")


async def test_ws_client_leaving_early_is_fine(env: Env, server: str) -> None:
    order_id = (await env.store.create_order(_new_order()))[0].id
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        await receive(ws, 1)
    await env.step(order_id, S.ROUTING)
    # the server is still healthy and serves the next client
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        assert statuses(await receive(ws, 2)) == [(1, "pending"), (2, "routing")]


async def test_ws_upgrade_on_execute_accepts_the_order_and_streams_it(env: Env, server: str) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/execute") as ws:
        await ws.send(json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1.5, "slippage": 0.01}))
        accepted = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert accepted["type"] == "accepted" and accepted["status"] == "pending" and accepted["created"] is True
        order_id = accepted["orderId"]
        assert accepted["wsUrl"] == f"ws://{server}/api/orders/{order_id}/ws"
        assert accepted["order"]["slippageBps"] == 100
        assert statuses(await receive(ws, 1)) == [(1, "pending")]
        assert await env.queued() == [order_id]
        for status in (S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED):
            await env.step(order_id, status)
        rest = await receive_all(ws)
    assert statuses(rest) == [(2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")]
    assert ws.close_code == 1000
    assert await env.rows() == (1, 5)


@pytest.mark.parametrize(
    ("message", "code", "error"),
    [
        ("{not json", 4400, "MALFORMED_JSON"),
        ("[1, 2]", 4400, "VALIDATION_ERROR"),
        (json.dumps({"tokenIn": "SOL", "tokenOut": "USDC"}), 4400, "VALIDATION_ERROR"),
        (json.dumps({**ORDER, "tokenIn": "DOGE"}), 4400, "UNKNOWN_TOKEN"),
        (json.dumps({**ORDER, "amountIn": "0"}), 4400, "INVALID_AMOUNT"),
        (json.dumps({**ORDER, "type": "twap"}), 4400, "UNSUPPORTED_ORDER_TYPE"),
        (json.dumps({**ORDER, "note": "x" * 20_000}), 4400, "PAYLOAD_TOO_LARGE"),
    ],
)
async def test_ws_upgrade_with_a_bad_order_says_why_and_closes(
    env: Env, server: str, message: str, code: int, error: str
) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/execute") as ws:
        await ws.send(message)
        messages = await receive_all(ws)
    assert ws.close_code == code
    assert error in ws.close_reason
    assert messages[0]["type"] == "error" and messages[0]["error"]["code"] == error
    assert set(messages[0]["error"]) == {"code", "message", "details"}
    assert await env.rows() == (0, 0)


async def test_ws_upgrade_idempotency_key_from_the_handshake(env: Env, server: str) -> None:
    key = f"ws-{uuid.uuid4()}"
    ids = []
    for _ in range(2):
        async with websockets.connect(f"ws://{server}/api/orders/execute",
                                      additional_headers={"Idempotency-Key": key}) as ws:  # fmt: skip
            await ws.send(json.dumps(ORDER))
            accepted = json.loads(await asyncio.wait_for(ws.recv(), 10))
            ids.append((accepted["orderId"], accepted["created"]))
    assert ids[0][0] == ids[1][0] and [c for _, c in ids] == [True, False]
    async with websockets.connect(f"ws://{server}/api/orders/execute", additional_headers={"Idempotency-Key": key}) as ws:
        await ws.send(json.dumps({**ORDER, "amountIn": "3"}))
        messages = await receive_all(ws)
    assert ws.close_code == 4409 and messages[0]["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert await env.rows() == (1, 1)


def _new_order() -> Any:
    from storage.orders import NewOrder

    return NewOrder(
        token_in="SOL", token_out="USDC", mint_in=SOL_MINT, mint_out=USDC_MINT,
        amount_in=1_500_000_000, amount_in_decimal="1.5", slippage_bps=100,
    )  # fmt: skip



def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


async def test_metrics_count_requests_by_route_template_and_show_the_engine(env: Env, api: httpx.AsyncClient) -> None:
    scraped = await api.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    before = _samples(scraped.text)
    for _ in range(3):
        assert (await api.post("/api/orders/execute", json=ORDER)).status_code == 202
    assert (await api.get("/api/orders/00000000-0000-4000-8000-000000000000")).status_code == 404
    after = _samples((await api.get("/metrics")).text)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("dex_api_requests_total", route="/api/orders/execute", method="POST", code="202") == 3
    assert moved("dex_api_requests_total", route="/api/orders/{orderId}", method="GET", code="404") == 1
    assert moved("dex_api_request_seconds_count", route="/api/orders/execute", method="POST") == 3
    assert moved("dex_api_requests_total", route="/metrics", method="GET", code="200") == 1  # the first scrape
    counts = await env.store.count_by_status()
    assert after[("dex_orders", (("status", "pending"),))] == counts["pending"] >= 3
    assert after[("dex_queue_orders", (("state", "waiting"),))] == (await env.queue.depth()).waiting
    assert after[("dex_engine_up", ())] == 1
    assert after[("dex_pool_price", (("pool", "raydium:SOL-USDC"),))] > 0
    assert after[("dex_api_websockets_open", ())] == 0
