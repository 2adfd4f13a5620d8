"""Orders that wait, end to end: through Serve's HTTP API and the WebSocket, on the live engine.

The market simulator is off, so prices move only when a test shocks a pool
(``POST /api/sim/shock``, a real trade through the pool's actor): every
trigger here is tripped by a pool event, never by a timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
import ray

from actors.trigger_book import TRIGGER_BOOK_NAME
from engine.settings import EngineSettings
from localservers.ports import free_port
from tests.e2e.serve_harness import serving, stream
from tests.integration.engine_harness import base_settings

pytestmark = pytest.mark.e2e

PAIR = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, ray_session: None) -> EngineSettings:
    return base_settings(database_url, redis_url, api={"port": free_port()})


@pytest.fixture(scope="module")
def api(settings: EngineSettings) -> Iterator[str]:
    with serving(settings) as base:
        yield base


@pytest.fixture(scope="module")
def sol_usdc_pools(api: str) -> list[str]:
    pools = httpx.get(f"{api}/api/pools").json()["pools"]
    found = [p["poolId"] for p in pools if {p["base"], p["quote"]} == {"SOL", "USDC"}]
    assert len(found) >= 2
    return found


@pytest.fixture(autouse=True)
def level_market(api: str, sol_usdc_pools: list[str]) -> Iterator[None]:
    """Each test starts from the pools' opening prices: what one test moved, the next does not inherit."""
    def spots() -> dict[str, float]:
        return {p["poolId"]: p["spotPrice"] for p in httpx.get(f"{api}/api/pools").json()["pools"]}

    opening = spots()
    yield
    now = spots()
    for pool_id in sol_usdc_pools:
        bps = round((opening[pool_id] / now[pool_id] - 1) * 10_000)
        if bps:
            httpx.post(f"{api}/api/sim/shock", json={"poolId": pool_id, "moveBps": bps}, timeout=30)


def price_now(api: str) -> Decimal:
    """What the best route pays now for 1 SOL, in USDC per SOL."""
    quote = httpx.get(f"{api}/api/quote", params=PAIR).json()
    return Decimal(quote["route"]["amountOut"]) / Decimal(PAIR["amountIn"])


async def shock(http: httpx.AsyncClient, pools: list[str], move_bps: int) -> None:
    """Move every pool of the pair by about ``move_bps`` (each shock checked to have moved its pool)."""
    for pool_id in pools:
        reply = await http.post("/api/sim/shock", json={"poolId": pool_id, "moveBps": move_bps})
        assert reply.status_code == 200, reply.text
        moved = reply.json()
        change_bps = (moved["priceAfter"] / moved["priceBefore"] - 1) * 10_000
        assert change_bps * move_bps > 0 and abs(change_bps) >= abs(move_bps) * 0.9, (pool_id, moved)


async def submit(http: httpx.AsyncClient, **order: object) -> str:
    reply = await http.post("/api/orders/execute", json={**PAIR, **order})
    assert reply.status_code == 202, reply.text
    return reply.json()["orderId"]


async def until_status(http: httpx.AsyncClient, order_id: str, status: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        order = (await http.get(f"/api/orders/{order_id}")).json()
        if order["status"] == status:
            return order
        assert time.monotonic() < deadline, f"order {order_id} is {order['status']}, not {status}"
        await asyncio.sleep(0.05)


def follow(api: str, order_id: str) -> asyncio.Task:
    return asyncio.ensure_future(stream(api.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws", timeout=60))


def statuses(events: list[dict]) -> list[str]:
    return [e["status"] for e in events]


async def test_a_limit_waits_then_fills_after_a_shock_at_no_worse_than_its_limit(api: str, sol_usdc_pools: list[str]):
    limit = (price_now(api) * Decimal("1.01")).quantize(Decimal("0.000001"))
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        order_id = await submit(http, type="limit", limitPrice=str(limit))
        watched = follow(api, order_id)
        opened = await until_status(http, order_id, "open")
        assert opened["waitingFor"]["limitPrice"] == str(limit)
        assert opened["waitingFor"]["minAmountOut"] == format(limit, "f").rstrip("0").rstrip(".")
        await asyncio.sleep(0.3)
        assert (await http.get(f"/api/orders/{order_id}")).json()["status"] == "open"  # not before the move
        await shock(http, sol_usdc_pools, 300)
        events, code = await watched
        order = (await http.get(f"/api/orders/{order_id}")).json()
    assert code == 1000
    assert statuses(events) == ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"]
    assert [e["seq"] for e in events] == list(range(1, 8))
    seen = events[2]["details"]
    assert Decimal(seen["priceSeen"]) >= limit and seen["poolId"] and seen["seenAt"]
    assert Decimal(order["amountOut"]) >= limit * Decimal(PAIR["amountIn"])


async def test_a_limit_the_market_never_pays_is_listed_as_open_then_cancelled(api: str):
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        order_id = await submit(http, type="limit", limitPrice=str(price_now(api) * 2))
        watched = follow(api, order_id)
        await until_status(http, order_id, "open")
        listed = (await http.get("/api/orders", params={"status": "open"})).json()["orders"]
        assert order_id in [o["orderId"] for o in listed]
        cancelled = await http.delete(f"/api/orders/{order_id}")
        again = await http.delete(f"/api/orders/{order_id}")
        events, code = await watched
        listed = (await http.get("/api/orders", params={"status": "open"})).json()["orders"]
        market = await submit(http, type="market")
        await until_status(http, market, "confirmed")
        refused = await http.delete(f"/api/orders/{market}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert statuses(events) == ["pending", "open", "cancelled"] and code == 1000
    assert order_id not in [o["orderId"] for o in listed]
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ORDER_NOT_CANCELLABLE"


async def test_an_order_that_is_not_paid_in_time_expires(api: str):
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        order_id = await submit(http, type="limit", limitPrice=str(price_now(api) * 2), expiresAt=expires)
        events, code = await follow(api, order_id)
    assert statuses(events) == ["pending", "open", "expired"] and code == 1000


async def test_a_stop_loss_and_a_take_profit_are_tripped_by_shocks(api: str, sol_usdc_pools: list[str]):
    now = price_now(api)
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        stop = await submit(http, type="stop_loss", triggerPrice=str(now * Decimal("0.98")))
        take = await submit(http, type="take_profit", triggerPrice=str(now * Decimal("1.02")), slippageBps=300)
        stop_events, take_events = follow(api, stop), follow(api, take)
        await until_status(http, stop, "open")
        await until_status(http, take, "open")
        await shock(http, sol_usdc_pools, -400)
        stopped, _ = await stop_events
        await until_status(http, take, "open")  # the fall does not take profit
        await shock(http, sol_usdc_pools, 700)
        taken, _ = await take_events
    assert statuses(stopped)[-5:] == ["triggered", "routing", "building", "submitted", "confirmed"]
    assert Decimal(stopped[2]["details"]["priceSeen"]) <= now * Decimal("0.98")
    assert stopped[4]["details"]["slippageBps"] == 500
    assert statuses(taken)[-5:] == ["triggered", "routing", "building", "submitted", "confirmed"]
    assert Decimal(taken[2]["details"]["priceSeen"]) >= now * Decimal("1.02")


async def test_a_trailing_stop_follows_the_price_up_and_fires_on_the_way_down(api: str, sol_usdc_pools: list[str]):
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        order_id = await submit(http, type="trailing_stop", trailingBps=300)
        watched = follow(api, order_id)
        await until_status(http, order_id, "open")
        await shock(http, sol_usdc_pools, 100)
        await asyncio.sleep(1.5)  # the book keeps the high in PostgreSQL about once a second
        first = (await http.get(f"/api/orders/{order_id}")).json()["waitingFor"]
        await shock(http, sol_usdc_pools, 400)
        await asyncio.sleep(1.5)
        higher = (await http.get(f"/api/orders/{order_id}")).json()
        assert higher["status"] == "open"  # a rise never fires it
        await shock(http, sol_usdc_pools, -200)  # less than 3 % off the high
        await asyncio.sleep(0.5)
        assert (await http.get(f"/api/orders/{order_id}")).json()["status"] == "open"
        await shock(http, sol_usdc_pools, -400)
        events, _ = await watched
    assert Decimal(higher["waitingFor"]["highPrice"]) > Decimal(first["highPrice"])
    assert Decimal(higher["waitingFor"]["triggerPrice"]) < Decimal(higher["waitingFor"]["highPrice"])
    assert statuses(events)[-5:] == ["triggered", "routing", "building", "submitted", "confirmed"]
    fired = events[2]["details"]
    assert Decimal(fired["priceSeen"]) <= Decimal(fired["highPrice"]) * Decimal("0.97")


async def test_a_restarted_book_rebuilds_from_the_store_and_fires_each_order_once(
    api: str, settings: EngineSettings, sol_usdc_pools: list[str]
):
    limit = price_now(api) * Decimal("1.01")
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        ids = [await submit(http, type="limit", limitPrice=str(limit)) for _ in range(3)]
        for order_id in ids:
            await until_status(http, order_id, "open")
        book = ray.get_actor(TRIGGER_BOOK_NAME, namespace=settings.ray.namespace)
        await kill_and_await_restart(book)
        assert await asyncio.wait_for(book.ready.remote(), 30)  # rebuilt from PostgreSQL by then
        assert (await book.stats.remote())["armed"] == 3
        watched = [follow(api, order_id) for order_id in ids]
        await shock(http, sol_usdc_pools, 300)
        results = await asyncio.gather(*watched)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        fired = conn.execute(
            "SELECT order_id::text, count(*) FROM order_status_history WHERE order_id = ANY(%s::uuid[])"
            " AND status = 'triggered' GROUP BY order_id", (ids,),
        ).fetchall()  # fmt: skip
    assert [statuses(events)[-1] for events, _ in results] == ["confirmed"] * 3
    assert sorted(count for _, count in fired) == [1, 1, 1]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "limit"}, "MISSING_PRICE"),
        ({"type": "limit", "limitPrice": "0"}, "INVALID_PRICE"),
        ({"type": "market", "limitPrice": "150"}, "PRICE_ON_MARKET_ORDER"),
        ({"type": "limit", "limitPrice": "150", "tokenOut": "SOL"}, "SAME_TOKEN"),
        ({"type": "stop_loss", "triggerPrice": "100", "expiresAt": "2001-01-01T00:00:00Z"}, "INVALID_EXPIRY"),
        ({"type": "trailing_stop", "trailingBps": 10}, "INVALID_TRAILING_BPS"),
    ],
)
async def test_a_bad_waiting_order_is_a_clear_422_and_nothing_is_stored(
    api: str, settings: EngineSettings, body: dict, code: str
):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        async with httpx.AsyncClient(base_url=api, timeout=30) as http:
            reply = await http.post("/api/orders/execute", json={**PAIR, **body})
        after = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    assert reply.status_code == 422 and reply.json()["error"]["code"] == code
    assert after == before


async def test_shocks_answer_what_they_moved_and_refuse_what_they_cannot(api: str, sol_usdc_pools: list[str]):
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        moved = await http.post("/api/sim/shock", json={"poolId": sol_usdc_pools[0], "moveBps": -100})
        token = await http.post("/api/sim/shock", json={"token": "SOL", "moveBps": -100})
        unknown = await http.post("/api/sim/shock", json={"poolId": "raydium:DOGE-USDC", "moveBps": 100})
        both = await http.post("/api/sim/shock", json={"token": "SOL", "poolId": sol_usdc_pools[0], "moveBps": 1})
    assert moved.status_code == 200
    body = moved.json()
    assert body["priceAfter"] < body["priceBefore"] * 0.995
    assert token.status_code == 409 and token.json()["error"]["code"] == "MARKET_OFF"  # the market is off here
    assert unknown.status_code == 404
    assert both.status_code == 422


def _pid(handle) -> object:
    return handle.__ray_call__.remote(lambda self: __import__("os").getpid())


async def kill_and_await_restart(handle, timeout_s: float = 60) -> None:
    """Kill an actor and wait until a new process answers for it (ray.kill returns before the old one is
    gone: it may still answer a call or two)."""
    old_pid = await _pid(handle)
    ray.kill(handle, no_restart=False)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await asyncio.wait_for(_pid(handle), 10) != old_pid:
                return
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError, TimeoutError):
            pass
        assert time.monotonic() < deadline, "the actor did not come back"
        await asyncio.sleep(0.2)


async def test_a_sniper_fires_on_its_token_s_launch_and_not_before(api: str, settings: EngineSettings):
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        sniper = await submit(http, type="sniper", tokenOut="MEOW", amountIn="0.5", minLiquidity="100",
                              maxPriceImpactBps=2000)  # fmt: skip
        deep = await submit(http, type="sniper", tokenOut="meow", amountIn="0.5", minLiquidity="100000")
        watched = follow(api, sniper)
        opened = await until_status(http, sniper, "open")
        assert opened["waitingFor"]["token"] == "MEOW" and opened["tokenOut"] == "MEOW"
        other = await http.post("/api/sim/launch", json={"symbol": "WOOF", "pairWith": "SOL", "liquidity": "150",
                                                         "price": "0.001"})  # fmt: skip
        assert other.status_code == 201, other.text
        await asyncio.sleep(0.5)
        assert (await http.get(f"/api/orders/{sniper}")).json()["status"] == "open"  # not another token's pool
        launched = await http.post("/api/sim/launch", json={"symbol": "MEOW", "pairWith": "SOL", "dex": "meteora",
                                                            "liquidity": "300", "price": "0.0001"})  # fmt: skip
        events, code = await watched
        again = await http.post("/api/sim/launch", json={"symbol": "MEOW", "pairWith": "SOL", "liquidity": "1",
                                                         "price": "1"})  # fmt: skip
        late = await http.post("/api/orders/execute", json={**PAIR, "type": "sniper", "tokenOut": "MEOW",
                                                            "minLiquidity": "1"})  # fmt: skip
        quote = await http.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "MEOW", "amountIn": "0.1"})
        still = (await http.get(f"/api/orders/{deep}")).json()["status"]
        cancelled = await http.delete(f"/api/orders/{deep}")
        order = (await http.get(f"/api/orders/{sniper}")).json()
    assert launched.status_code == 201 and launched.json()["poolId"] == "meteora:MEOW-SOL"
    assert statuses(events) == ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"]
    assert events[2]["details"]["poolId"] == "meteora:MEOW-SOL" and code == 1000
    assert Decimal(events[2]["details"]["liquiditySeen"]) >= 100
    assert order["tokenOut"] == "MEOW" and order["mintOut"] == launched.json()["token"]["mint"]
    assert Decimal(order["amountOut"]) > 0 and order["dex"] == "meteora"
    assert again.status_code == 409 and again.json()["error"]["code"] == "TOKEN_EXISTS"
    assert late.status_code == 422 and late.json()["error"]["code"] == "TOKEN_ALREADY_TRADES"
    assert quote.status_code == 200, quote.text
    assert still == "open" and cancelled.json()["status"] == "cancelled"  # too little liquidity for it


async def test_a_restarted_router_still_routes_to_the_pools_launched_before(api: str, settings: EngineSettings):
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        launched = await http.post("/api/sim/launch", json={"symbol": "HISS", "pairWith": "USDC", "liquidity": "5000",
                                                            "price": "0.5"})  # fmt: skip
        assert launched.status_code == 201, launched.text
        router = ray.get_actor("router", namespace=settings.ray.namespace)
        await kill_and_await_restart(router)
        assert "raydium:HISS-USDC" in await router.pool_ids.remote()  # asked the launchpad
        order_id = await submit(http, tokenIn="USDC", tokenOut="HISS", amountIn="10", type="market")
        events, _ = await follow(api, order_id)
    assert statuses(events)[-1] == "confirmed", events[-1]
