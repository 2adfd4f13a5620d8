"""The API on the live engine: ``RayGateway`` and real actors on a local Ray.

The app runs on uvicorn in the test's event loop (as in test_api.py) with
the production factory, ``ServicesFromSettings(settings)``, so orders are
routed and filled by the engine's executors and the WebSocket streams what
they commit. Serve's own proxy is exercised by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from engine.settings import EngineSettings
from serve.errors import EngineUnavailable
from actors.gateway import RayGateway
from runtime.api_services import ServicesFromSettings
from tests.integration.engine_harness import base_settings, shared_engine
from tests.integration.test_api import FAST, live_server, receive_all

pytestmark = pytest.mark.integration

DEMO = [
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"type": "market", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 50},
    {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 20, "slippage": 0.01},
    {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"type": "market", "tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
]
LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


ENGINE_GROUP = "plain"  # shares its engine with test_engine_orders


@pytest.fixture(scope="module")
def engine(database_url: str, redis_url: str, ray_session: None) -> EngineSettings:
    settings, _ = shared_engine(base_settings(database_url, redis_url))
    return settings


@pytest.fixture
async def server(engine: EngineSettings) -> AsyncIterator[str]:
    services = await ServicesFromSettings(engine, options=FAST)()
    try:
        async with live_server(services) as host:
            yield host
    finally:
        await services.aclose()


async def follow(host: str, order: dict) -> tuple[str, list[dict], int | None]:
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
        reply = await http.post("/api/orders/execute", json=order)
    assert reply.status_code == 202, reply.text
    async with websockets.connect(reply.json()["wsUrl"]) as ws:
        events = await receive_all(ws, timeout=60)
    return reply.json()["orderId"], events, ws.close_code


async def test_five_concurrent_orders_are_routed_filled_and_streamed(server: str) -> None:
    results = await asyncio.gather(*(follow(server, order) for order in DEMO))
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        for order_id, events, close_code in results:
            assert close_code == 1000
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert [e["status"] for e in events] == LIFECYCLE
            assert all(e["orderId"] == order_id and e["type"] == "status" for e in events)
            routing, building, submitted, confirmed = (e["details"] for e in events[1:])
            assert routing["chosen"]["dex"] and routing["reason"]
            assert routing["quotes"] or routing["chosen"]["kind"] == "two_hop"  # no direct pool: no direct quote
            assert building["minOut"] and building["expectedOut"]
            assert submitted["txSignature"] == confirmed["txSignature"]
            order = (await http.get(f"/api/orders/{order_id}")).json()
            assert order["status"] == "confirmed" and order["amountOut"] == confirmed["amountOut"]
            assert order["txSignature"] == confirmed["txSignature"]
        metrics = (await http.get("/api/queue/metrics")).json()
    assert metrics["engineAvailable"] is True
    assert metrics["completed"] >= 5 and metrics["concurrency"] == 10 and metrics["running"] == 0


async def test_the_upgrade_streams_a_real_fill(server: str) -> None:
    async with websockets.connect(f"ws://{server}/api/orders/execute") as ws:
        await ws.send(json.dumps({"tokenIn": "USDC", "tokenOut": "USDT", "amount": "1000", "slippage": 0.005}))
        messages = await receive_all(ws, timeout=60)
    assert messages[0]["type"] == "accepted"
    assert [m["status"] for m in messages[1:]] == LIFECYCLE
    assert ws.close_code == 1000


async def test_pools_quote_and_health_come_from_the_actors(server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["checks"]["ray"]["ok"] is True
        pools = (await http.get("/api/pools")).json()["pools"]
        assert {p["poolId"] for p in pools} >= {"raydium:SOL-USDC", "meteora:SOL-USDC"}
        quote = (await http.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2"})).json()
        assert {q["dex"] for q in quote["quotes"]} == {"raydium", "meteora"}
        assert quote["route"]["amountOut"] == max((q["amountOut"] for q in quote["quotes"]), key=float)


async def test_an_engine_that_is_not_there_is_unavailable(engine: EngineSettings) -> None:
    gateway = RayGateway("no-such-namespace", timeout_s=1.0)
    assert (await gateway.health())["ok"] is False
    with pytest.raises(EngineUnavailable):
        await gateway.dispatcher_stats()


def _moved(before: dict, after: dict, name: str, **labels: str) -> float:
    """How much the samples named ``name`` with these labels (summed over the others) moved."""

    def total(samples: dict) -> float:
        return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have))

    return total(after) - total(before)


async def test_metrics_after_orders_count_them_by_stage_status_and_dex(server: str) -> None:
    from collections import Counter

    from tests.unit.metrics_fakes import samples

    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=30) as http:
        before = samples((await http.get("/metrics")).text)
        results = await asyncio.gather(*(follow(server, order) for order in DEMO))
        dexes = Counter([(await http.get(f"/api/orders/{order_id}")).json()["dex"] for order_id, _, _ in results])
        n = len(DEMO)
        for _ in range(50):  # an executor counts an order just after publishing its last event
            after = samples((await http.get("/metrics")).text)
            if _moved(before, after, "dex_order_latency_seconds_count") >= n:
                break
            await asyncio.sleep(0.1)
    assert all([e["status"] for e in events] == LIFECYCLE for _, events, _ in results)
    assert _moved(before, after, "dex_api_requests_total", route="/api/orders/execute", method="POST", code="202") == n
    # the executors' histograms, gathered from every executor at the scrape
    for stage in ("pending->routing", "routing->building", "building->submitted", "submitted->confirmed"):
        assert _moved(before, after, "dex_order_stage_seconds_count", stage=stage) == n, stage
        assert _moved(before, after, "dex_order_stage_seconds_bucket", stage=stage, le="+Inf") == n, stage
    assert _moved(before, after, "dex_order_latency_seconds_count", status="confirmed") == n
    for dex, count in dexes.items():
        assert _moved(before, after, "dex_orders_finished_total", status="confirmed", dex=dex) == count, dex
        assert _moved(before, after, "dex_orders_by_dex", status="confirmed", dex=dex) == count, dex  # PostgreSQL
    assert _moved(before, after, "dex_orders", status="confirmed") == n
    assert _moved(before, after, "dex_order_retries_total") == 0
    executors = {labels: v for (name, labels), v in after.items() if name == "dex_executor_up"}
    assert len(executors) == 2 and all(v == 1 for v in executors.values())
    assert sum(v for (name, _), v in after.items() if name == "dex_executor_slots") == 10
    assert sum(v for (name, _), v in after.items() if name == "dex_executor_running") == 0
    assert after[("dex_engine_up", ())] == 1


async def test_an_executor_that_does_not_answer_does_not_fail_the_scrape(engine: EngineSettings) -> None:
    from tests.unit.metrics_fakes import samples

    services = await ServicesFromSettings(engine, options=FAST)()
    services.engine = RayGateway(engine.ray.namespace, executors=3, timeout_s=2.0)  # executor:2 is not there
    try:
        async with live_server(services) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
            scraped = await http.get("/metrics")
    finally:
        await services.aclose()
    assert scraped.status_code == 200
    after = samples(scraped.text)
    assert after[("dex_engine_up", ())] == 0
    assert after[("dex_executor_up", (("executor", "2"),))] == 0
    assert after[("dex_executor_up", (("executor", "0"),))] == after[("dex_executor_up", (("executor", "1"),))] == 1
    assert sum(v for (name, _), v in after.items() if name == "dex_executor_slots") == 10
    assert after[("dex_pool_price", (("pool", "raydium:SOL-USDC"),))] > 0
