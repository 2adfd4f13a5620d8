"""End to end through Ray Serve's HTTP proxy: real clients, the live engine.

The engine (actors on the session's Ray, real PostgreSQL and Redis) runs
with its seed latencies scaled down, and the market moving; the API is the
production Serve deployment on a free port of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.e2e.serve_harness import market_settings, shared_serving, stream

pytestmark = pytest.mark.e2e

FINAL = {"confirmed", "failed"}
DEMO = [
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"type": "market", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 100},
    {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 20, "slippage": 0.01},
    {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"type": "market", "tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
]


ENGINE_GROUP = "serve, market"  # shares its engine and API with the console's test


@pytest.fixture(scope="module")
def api(database_url: str, redis_url: str, ray_session: None) -> str:
    _, base = shared_serving(market_settings(database_url, redis_url))
    return base


def assert_gapless(events: list[dict]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["status"] == "pending" and events[-1]["status"] in FINAL


async def submit_and_follow(base: str, order: dict) -> tuple[str, list[dict], int | None]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        reply = await http.post("/api/orders/execute", json=order)
    assert reply.status_code == 202, reply.text
    body = reply.json()
    events, code = await stream(base.replace("http", "ws", 1) + f"/api/orders/{body['orderId']}/ws")
    return body["orderId"], events, code


async def test_five_orders_at_once_are_each_followed_to_the_end(api: str):
    results = await asyncio.gather(*(submit_and_follow(api, o) for o in DEMO))
    for order_id, events, code in results:
        assert code == 1000
        assert_gapless(events)
        assert all(e["orderId"] == order_id for e in events)
        routing = next(e for e in events if e["status"] == "routing")
        assert routing["details"]["quotes"] or routing["details"]["chosen"]
    assert sum(events[-1]["status"] == "confirmed" for _, events, _ in results) >= 4


async def test_a_late_watcher_gets_the_whole_story_then_the_socket_closes(api: str):
    order_id, live, _ = await submit_and_follow(api, DEMO[0])
    replayed, code = await stream(api.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws")
    assert code == 1000
    assert [(e["seq"], e["status"]) for e in replayed] == [(e["seq"], e["status"]) for e in live]
    async with httpx.AsyncClient(base_url=api) as http:
        history = (await http.get(f"/api/orders/{order_id}/history")).json()
        order = (await http.get(f"/api/orders/{order_id}")).json()
    assert len(history["events"] if isinstance(history, dict) else history) == len(live)
    assert order["status"] == live[-1]["status"]


async def test_the_seed_upgrade_on_execute_streams_on_the_same_socket(api: str):
    ws_url = api.replace("http", "ws", 1) + "/api/orders/execute"
    events = []
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps(DEMO[0]))
        accepted = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert accepted["orderId"]
        try:
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if "seq" in event:
                    events.append(event)
        except websockets.ConnectionClosed:
            pass
    assert_gapless(events)


async def test_idempotent_resubmission_and_a_conflicting_body(api: str):
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        headers = {"Idempotency-Key": f"e2e-{time.time_ns()}"}
        first = await http.post("/api/orders/execute", json=DEMO[0], headers=headers)
        again = await http.post("/api/orders/execute", json=DEMO[0], headers=headers)
        other = await http.post("/api/orders/execute", json=DEMO[1], headers=headers)
    assert first.status_code == 202
    assert again.status_code in (200, 202) and again.json()["orderId"] == first.json()["orderId"]
    assert other.status_code == 409 and other.json()["error"]["code"]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"tokenIn": "SOL", "tokenOut": "SOL", "amountIn": "1"}, 422),
        ({"tokenIn": "SOL", "tokenOut": "DOGE", "amountIn": "1"}, 422),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "-1"}, 422),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.0000000001"}, 422),
        ({"tokenIn": "SOL", "tokenOut": "USDC"}, 422),
    ],
)
async def test_bad_orders_get_a_4xx_in_the_one_error_shape(api: str, body: dict, status: int):
    async with httpx.AsyncClient(base_url=api) as http:
        reply = await http.post("/api/orders/execute", json=body)
    assert reply.status_code == status
    assert set(reply.json()["error"]) >= {"code", "message"}


async def test_reads_pools_quotes_metrics_and_health(api: str):
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        pools = (await http.get("/api/pools")).json()
        quote = await http.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "3"})
        metrics = (await http.get("/api/queue/metrics")).json()
        health = await http.get("/health")
        docs = await http.get("/docs")
        unknown = await http.get("/api/nope")
        scraped = await http.get("/metrics")
    assert len(pools["pools"] if isinstance(pools, dict) else pools) >= 7
    assert quote.status_code == 200 and len(quote.json()["quotes"]) >= 2
    assert metrics["concurrency"] == 10
    assert health.status_code == 200
    assert docs.status_code == 200
    assert unknown.status_code == 404 and unknown.json()["error"]["code"]
    assert scraped.status_code == 200 and "dex_engine_up 1.0" in scraped.text
    assert 'dex_trigger_book{figure="armed"}' in scraped.text and 'dex_dispatcher{figure="started"}' in scraped.text


async def test_the_demo_client_follows_its_orders_to_the_end(api: str, capsys):
    from runtime.demo import run_demo_client

    assert await run_demo_client(api, 5) == 0
    out = capsys.readouterr().out
    assert "summary" in out and out.count("routing") >= 5
