"""Bad input that tests/integration/test_api.py does not already cover.

That file covers the order body of POST /api/orders/execute in depth, the
WebSocket upgrade's common mistakes, unknown routes and order ids. Here: the
same mistakes on the other endpoints (quote, history, list), the order
WebSocket and the upgrade's remaining cases, over-long and odd ids and
parameters, wrong methods on every endpoint, and oversized bodies on routes
other than execute. Each answer is a 4xx in the one error shape that names
the problem, and nothing is stored or queued.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import websockets

from tests.integration import test_api as T
from tests.integration.test_api import ORDER, assert_error_shape, receive_all

pytestmark = pytest.mark.faults

# the fixtures of the API tests (real PostgreSQL and Redis, LocalGateway)
gateway, env, api, server = T.gateway, T.env, T.api, T.server

QUOTE = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}

BAD_QUOTES: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, query, code, field named)
    ("zero", {**QUOTE, "amountIn": "0"}, "INVALID_AMOUNT", "amountIn"),
    ("huge", {**QUOTE, "amountIn": "1e30"}, "AMOUNT_TOO_LARGE", "amountIn"),
    ("over-precise", {**QUOTE, "amountIn": "0.0000000001"}, "INVALID_AMOUNT", "amountIn"),
    ("not a number", {**QUOTE, "amountIn": "one"}, "INVALID_AMOUNT", "amountIn"),
    ("nan", {**QUOTE, "amountIn": "NaN"}, "INVALID_AMOUNT", "amountIn"),
    ("empty amount", {**QUOTE, "amountIn": ""}, "INVALID_AMOUNT", "amountIn"),
    ("alias negative", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "-2"}, "INVALID_AMOUNT", "amount"),
    ("too long amount", {**QUOTE, "amountIn": "1" * 65}, "VALIDATION_ERROR", "amountIn"),
    ("too long token", {**QUOTE, "tokenIn": "S" * 65}, "VALIDATION_ERROR", "tokenIn"),
    ("unknown tokenOut", {**QUOTE, "tokenOut": "DOGE"}, "UNKNOWN_TOKEN", "tokenOut"),
    ("same token by mint", {**QUOTE, "tokenOut": T.SOL_MINT}, "SAME_TOKEN", "tokenOut"),
    ("slippage zero", {**QUOTE, "slippageBps": "0"}, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage too high", {**QUOTE, "slippageBps": "5001"}, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage negative", {**QUOTE, "slippageBps": "-1"}, "INVALID_SLIPPAGE", "slippageBps"),
    ("slippage text", {**QUOTE, "slippageBps": "lots"}, "VALIDATION_ERROR", "slippageBps"),
    ("slippage fraction", {**QUOTE, "slippageBps": "1.5"}, "VALIDATION_ERROR", "slippageBps"),
    ("slippage huge int", {**QUOTE, "slippageBps": "9" * 40}, "INVALID_SLIPPAGE", "slippageBps"),
]


@pytest.mark.parametrize(("case", "query", "code", "field"), BAD_QUOTES, ids=[c[0] for c in BAD_QUOTES])
async def test_bad_quotes_are_a_422_naming_the_field(
    api: httpx.AsyncClient, case: str, query: dict[str, Any], code: str, field: str
) -> None:
    error = assert_error_shape(await api.get("/api/quote", params=query), 422, code)
    assert field in [d["field"] for d in error["details"]], error
    assert field in error["message"], error


BAD_READS: list[tuple[str, str, int, str, str | None]] = [
    # (case, path, status, code, field named in details)
    ("history afterSeq negative", "/api/orders/{id}/history?afterSeq=-1", 422, "VALIDATION_ERROR", "afterSeq"),
    ("history afterSeq text", "/api/orders/{id}/history?afterSeq=ten", 422, "VALIDATION_ERROR", "afterSeq"),
    ("history afterSeq huge", "/api/orders/{id}/history?afterSeq=" + "9" * 30, 422, "VALIDATION_ERROR",
     "afterSeq"),
    ("history afterSeq float", "/api/orders/{id}/history?afterSeq=1.5", 422, "VALIDATION_ERROR", "afterSeq"),
    ("list limit huge", "/api/orders?limit=" + "9" * 30, 422, "VALIDATION_ERROR", "limit"),
    ("list limit negative", "/api/orders?limit=-5", 422, "VALIDATION_ERROR", "limit"),
    ("list status empty", "/api/orders?status=", 422, "VALIDATION_ERROR", "status"),
    ("list status case", "/api/orders?status=CONFIRMED", 422, "VALIDATION_ERROR", "status"),
    ("list cursor too long", "/api/orders?cursor=" + "a" * 600, 422, "VALIDATION_ERROR", "cursor"),
    ("list cursor of a uuid", "/api/orders?cursor=" + str(uuid.uuid4()), 400, "INVALID_CURSOR", "cursor"),
    ("list cursor base64 junk", "/api/orders?cursor=eyJhIjoxfQ", 400, "INVALID_CURSOR", "cursor"),
    ("order id too long", "/api/orders/" + "a" * 300, 422, "VALIDATION_ERROR", "orderId"),
    ("order id 65 hex", "/api/orders/" + "a" * 65, 400, "INVALID_ORDER_ID", "orderId"),
    ("order id with a NUL", "/api/orders/%00", 400, "INVALID_ORDER_ID", "orderId"),
    ("order id unicode", "/api/orders/%E2%98%83", 400, "INVALID_ORDER_ID", "orderId"),
    ("order id 31 hex", "/api/orders/" + "0" * 31, 400, "INVALID_ORDER_ID", "orderId"),
    ("order id sql", "/api/orders/1'%20OR%20'1'='1", 400, "INVALID_ORDER_ID", "orderId"),
    ("history id malformed", "/api/orders/zzz/history?afterSeq=2", 400, "INVALID_ORDER_ID", "orderId"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "path", "status", "code", "field"), BAD_READS, ids=[c[0] for c in BAD_READS])
async def test_bad_reads_are_a_4xx_naming_the_parameter(
    env: T.Env, api: httpx.AsyncClient, case: str, path: str, status: int, code: str, field: str | None
) -> None:
    error = assert_error_shape(await api.get(path.replace("{id}", str(uuid.uuid4()))), status, code)
    if field is not None:
        assert isinstance(error["details"], list) and field in [d["field"] for d in error["details"]], error
    assert await env.rows() == (0, 0)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/pools"), ("DELETE", "/api/pools"), ("POST", "/api/quote"), ("PUT", "/api/queue/metrics"),
        ("POST", "/health"), ("PATCH", "/api/orders/{id}"), ("PUT", "/api/orders/{id}"), ("GET", "/api/sim/shock"),
        ("POST", "/api/orders/{id}/history"), ("PUT", "/api/orders"), ("POST", "/api/orders/{id}/ws"),
    ],
)  # fmt: skip
async def test_wrong_methods_are_a_405_in_the_error_shape(
    env: T.Env, api: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await api.request(method, path.replace("{id}", str(uuid.uuid4())), json=ORDER)
    error = assert_error_shape(response, 405, "METHOD_NOT_ALLOWED")
    assert method in error["message"]
    assert await env.rows() == (0, 0)


async def test_oversized_bodies_anywhere_are_a_413_before_routing(env: T.Env, api: httpx.AsyncClient) -> None:
    big = {"note": "x" * 20_000}
    for method, path in (("POST", "/api/nothing-here"), ("PUT", "/api/orders"), ("POST", "/api/pools")):
        assert_error_shape(await api.request(method, path, json=big), 413, "PAYLOAD_TOO_LARGE")
    # a lying Content-Length is not trusted either way
    response = await api.post(
        "/api/orders/execute",
        content=json.dumps(ORDER).encode(),
        headers={"content-type": "application/json", "content-length": "999999999"},
    )
    assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    assert await env.rows() == (0, 0)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Idempotency-Key": "bad\tkey"}, 400, "INVALID_IDEMPOTENCY_KEY"),
        ({"Idempotency-Key": " "}, 400, "INVALID_IDEMPOTENCY_KEY"),
        ({"content-type": "application/x-www-form-urlencoded"}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_bad_headers_say_which(
    env: T.Env, api: httpx.AsyncClient, headers: dict[str, str], status: int, code: str
) -> None:
    body = json.dumps(ORDER).encode()
    response = await api.post("/api/orders/execute", content=body, headers={"content-type": "application/json", **headers})
    assert_error_shape(response, status, code)
    assert await env.rows() == (0, 0)
    assert await env.queued() == []


BAD_UPGRADES: list[tuple[str, Any, str]] = [
    ("same token", {**ORDER, "tokenOut": "SOL"}, "SAME_TOKEN"),
    ("negative", {**ORDER, "amountIn": "-1"}, "INVALID_AMOUNT"),
    ("huge", {**ORDER, "amountIn": "1e40"}, "AMOUNT_TOO_LARGE"),
    ("over-precise", {**ORDER, "amountIn": "1.0000000001"}, "INVALID_AMOUNT"),
    ("slippage out of range", {**ORDER, "slippageBps": 9000}, "INVALID_SLIPPAGE"),
    ("wrong type", {**ORDER, "tokenIn": ["SOL"]}, "VALIDATION_ERROR"),
    ("a string", json.dumps("SOL"), "VALIDATION_ERROR"),
    ("empty text", "", "MALFORMED_JSON"),
    ("null", "null", "VALIDATION_ERROR"),
    ("not UTF-8 bytes", b"\xff\xfe{", "MALFORMED_JSON"),
]


@pytest.mark.parametrize(("case", "message", "error"), BAD_UPGRADES, ids=[c[0] for c in BAD_UPGRADES])
async def test_ws_upgrade_rejects_every_other_mistake(
    env: T.Env, server: str, case: str, message: Any, error: str
) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/execute") as ws:
        await ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
        messages = await receive_all(ws)
    assert ws.close_code == 4400, (ws.close_code, ws.close_reason)
    assert error in ws.close_reason
    assert messages[0]["type"] == "error" and messages[0]["error"]["code"] == error
    assert set(messages[0]["error"]) == {"code", "message", "details"}
    assert await env.rows() == (0, 0)
    assert await env.queued() == []


@pytest.mark.parametrize("order_id", ["a" * 300, "%00", "%27%20OR%201%3D1%20--", "0" * 33])
async def test_ws_odd_order_ids_are_closed_4404(server: str, order_id: str) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws") as ws:
        messages = await receive_all(ws)
    assert ws.close_code == 4404
    assert messages and messages[0]["type"] == "error"
    assert messages[0]["error"]["code"] == "INVALID_ORDER_ID"


async def test_another_uuid_notation_is_the_same_id(api: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    for notation in ("{%s}" % missing, missing.hex, f"urn:uuid:{missing}"):
        error = assert_error_shape(await api.get(f"/api/orders/{notation}"), 404, "ORDER_NOT_FOUND")
        assert error["details"]["orderId"] == str(missing)


async def test_ws_unknown_paths_are_refused(server: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"ws://{server}/api/nothing/ws"):
            pass
    assert refused.value.response.status_code in (403, 404)


async def test_ws_messages_on_the_order_stream_are_ignored(env: T.Env, server: str) -> None:
    """A client that talks on the status stream (junk, huge frames) changes nothing."""
    order_id = (await env.store.create_order(T._new_order()))[0].id
    async with websockets.connect(f"ws://{server}/api/orders/{order_id}/ws", max_size=2**20) as ws:
        assert T.statuses(await T.receive(ws, 1)) == [(1, "pending")]
        for junk in ("{not json", json.dumps({"cancel": True}), "x" * 100_000, b"\x00\x01"):
            await ws.send(junk)
        await env.step(order_id, T.S.FAILED, details={"error": {"code": "NO_ROUTE"}})
        rest = await receive_all(ws)
    assert T.statuses(rest) == [(2, "failed")]
    assert ws.close_code == 1000
    assert await env.rows() == (1, 2)
