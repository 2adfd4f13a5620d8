"""GET /api/pools/{poolId}/candles through the ASGI app, on a real PostgreSQL and Redis (no mocks).

The engine port is ``LocalGateway`` (its pools are the market config's); the
trades are written with ``PoolTradeStore`` as the pool actors write them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from engine.local_gateway import LocalGateway
from serve.app import create_app
from serve.services import Services
from storage.connect import StoreHealthChecks
from storage.events import EventBus
from storage.orders import OrderStore
from storage.queue import OrderQueue
from storage.ratelimit import RedisRateWindows
from storage.trades import PoolTradeStore

pytestmark = pytest.mark.integration

POOL = "raydium:SOL-USDC"
NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def api_on(db: AsyncConnectionPool, redis: aioredis.Redis, rkey: str, gateway: LocalGateway,
                 **overrides: object) -> AsyncIterator[httpx.AsyncClient]:  # fmt: skip
    values: dict[str, object] = {
        "store": OrderStore(db), "queue": OrderQueue(redis, stream=f"{rkey}queue", delayed_key=f"{rkey}delayed"),
        "bus": EventBus(redis), "health": StoreHealthChecks(db, redis), "windows": RedisRateWindows(redis),
        "tokens": gateway.tokens, "engine": gateway, "trades": PoolTradeStore(db),
    }  # fmt: skip
    values.update(overrides)
    services = Services(**values)  # type: ignore[arg-type]

    async def factory() -> Services:
        return services

    app = create_app(factory)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    return LocalGateway()


@pytest.fixture
async def api(db: AsyncConnectionPool, redis_client: aioredis.Redis, rkey: str,
              gateway: LocalGateway) -> AsyncIterator[httpx.AsyncClient]:  # fmt: skip
    async with api_on(db, redis_client, rkey, gateway) as client:
        yield client


async def record(db: AsyncConnectionPool, gateway: LocalGateway, pool_id: str, token_in: str, amount_in: int,
                 at: datetime | None = None) -> tuple[int, int]:  # fmt: skip
    """A real swap on the in-process pool, recorded as its actor records one; (amount_in, amount_out)."""
    pool = gateway.pools[pool_id]
    trades = PoolTradeStore(db)
    await trades.ensure_genesis(pool_id, pool.snapshot())
    seq, _ = await trades.latest(pool_id)
    quote = pool.swap_exact_in(token_in, amount_in, 0, time.time())
    await trades.record_trade(
        pool_id, seq=seq + 1, kind="noise", order_id=None, token_in=quote.token_in, amount_in=quote.amount_in,
        token_out=quote.token_out, amount_out=quote.amount_out, fee=quote.fee, sim_time=time.time(),
        state_after=pool.snapshot(),
    )  # fmt: skip
    if at is not None:
        async with db.connection() as conn:
            await conn.execute("UPDATE pool_trades SET created_at = %s WHERE pool_id = %s AND seq = %s",
                               (at, pool_id, seq + 1))  # fmt: skip
    return quote.amount_in, quote.amount_out


def assert_error(reply: httpx.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code
    return error


async def test_candles_of_recorded_trades_in_the_pools_own_price_units(
    api: httpx.AsyncClient, db: AsyncConnectionPool, gateway: LocalGateway
) -> None:
    spot = next(p for p in (await api.get("/api/pools")).json()["pools"] if p["poolId"] == POOL)["spotPrice"]
    sold_sol, got_usdc = await record(db, gateway, POOL, "SOL", 2 * 10**9, at=NOON + timedelta(seconds=10))
    paid_usdc, got_sol = await record(db, gateway, POOL, "USDC", 300 * 10**6, at=NOON + timedelta(seconds=50))

    reply = await api.get(f"/api/pools/{POOL}/candles", params={"interval": "1m", "from": "2030-01-01T11:59:30Z",
                                                                "to": "2030-01-01T12:05:00Z"})  # fmt: skip

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert {k: body[k] for k in ("poolId", "base", "quote", "interval", "intervalS", "from", "to")} == {
        "poolId": POOL, "base": "SOL", "quote": "USDC", "interval": "1m", "intervalS": 60,
        "from": "2030-01-01T11:59:00Z", "to": "2030-01-01T12:05:00Z",
    }  # fmt: skip
    (candle,) = body["candles"]
    sell_price = (Decimal(got_usdc) / 10**6) / (Decimal(sold_sol) / 10**9)
    buy_price = (Decimal(paid_usdc) / 10**6) / (Decimal(got_sol) / 10**9)
    assert candle["time"] == "2030-01-01T12:00:00Z" and candle["trades"] == 2
    assert candle["open"] == pytest.approx(float(sell_price), rel=1e-12)
    assert candle["close"] == pytest.approx(float(buy_price), rel=1e-12)
    assert (candle["low"], candle["high"]) == (candle["open"], candle["close"])  # a sale pays less than a purchase
    assert Decimal(candle["volumeBase"]) == (Decimal(sold_sol) + got_sol) / 10**9
    assert Decimal(candle["volumeQuote"]) == (Decimal(got_usdc) + paid_usdc) / 10**6
    # Quote per base, as spotPrice: a sale pays a little less than the spot price before it (fee and impact).
    assert 0.98 * spot < candle["open"] < spot
    assert abs(candle["close"] / spot - 1) < 0.02


async def test_by_default_the_last_two_hours_and_epoch_seconds_work(
    api: httpx.AsyncClient, db: AsyncConnectionPool, gateway: LocalGateway
) -> None:
    await record(db, gateway, POOL, "SOL", 10**9)
    await record(db, gateway, POOL, "SOL", 10**9, at=datetime.now(UTC) - timedelta(hours=3))  # too old

    default = (await api.get(f"/api/pools/{POOL}/candles")).json()
    since = int(time.time()) - 600
    by_epoch = (await api.get(f"/api/pools/{POOL}/candles", params={"from": str(since), "interval": "5m"})).json()

    assert sum(c["trades"] for c in default["candles"]) == 1 and default["interval"] == "1m"
    span = datetime.fromisoformat(default["to"]) - datetime.fromisoformat(default["from"])
    assert timedelta(hours=2) <= span < timedelta(hours=2, minutes=1)
    assert sum(c["trades"] for c in by_epoch["candles"]) == 1
    assert datetime.fromisoformat(by_epoch["from"]).timestamp() % 300 == 0


async def test_a_pool_without_trades_in_range_has_no_candles(api: httpx.AsyncClient, db: AsyncConnectionPool,
                                                              gateway: LocalGateway) -> None:  # fmt: skip
    await record(db, gateway, POOL, "SOL", 10**9, at=NOON)

    reply = await api.get(f"/api/pools/{POOL}/candles", params={"from": "2030-01-01T13:00:00Z",
                                                                "to": "2030-01-01T14:00:00Z"})  # fmt: skip

    assert reply.status_code == 200 and reply.json()["candles"] == []


async def test_an_unknown_pool_is_404_pool_not_found(api: httpx.AsyncClient) -> None:
    error = assert_error(await api.get("/api/pools/raydium:DOGE-USDC/candles"), 404, "POOL_NOT_FOUND")
    assert error["details"] == {"poolId": "raydium:DOGE-USDC"}


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"interval": "2m"}, "INVALID_INTERVAL", "interval"),
        ({"interval": ""}, "INVALID_INTERVAL", "interval"),
        ({"from": "yesterday"}, "INVALID_TIME", "from"),
        ({"to": "1893499200000"}, "INVALID_TIME", "to"),  # milliseconds: year 61970
        ({"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "INVALID_RANGE", "from"),
        ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-03T00:00:00Z"}, "TOO_MANY_CANDLES", "from"),
        ({"from": "x" * 65}, "VALIDATION_ERROR", "from"),
    ],
)
async def test_bad_ranges_are_422_in_the_error_shape(api: httpx.AsyncClient, db: AsyncConnectionPool,
                                                      gateway: LocalGateway, params: dict, code: str,
                                                      field: str) -> None:  # fmt: skip
    await record(db, gateway, POOL, "SOL", 10**9)
    error = assert_error(await api.get(f"/api/pools/{POOL}/candles", params=params), 422, code)
    assert error["details"][0]["field"] == field and error["details"][0]["location"] == "query"


async def test_without_a_trade_history_wired_it_is_503_not_500(db: AsyncConnectionPool, redis_client: aioredis.Redis,
                                                                rkey: str, gateway: LocalGateway) -> None:  # fmt: skip
    async with api_on(db, redis_client, rkey, gateway, trades=None) as client:
        assert_error(await client.get(f"/api/pools/{POOL}/candles"), 503, "SERVICE_UNAVAILABLE")


async def test_pools_say_each_tokens_decimals(api: httpx.AsyncClient) -> None:
    pool = next(p for p in (await api.get("/api/pools")).json()["pools"] if p["poolId"] == POOL)
    assert pool["decimals"] == {"SOL": 9, "USDC": 6}


def test_the_endpoint_is_documented_with_an_example() -> None:
    async def never() -> Services:  # pragma: no cover - the schema is built without starting the app
        raise AssertionError

    operation = create_app(never).openapi()["paths"]["/api/pools/{poolId}/candles"]["get"]
    example = operation["responses"]["200"]["content"]["application/json"]["example"]
    assert example["candles"] and {"open", "high", "low", "close", "volumeBase", "volumeQuote"} <= set(
        example["candles"][0])  # fmt: skip
    assert {"404", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"poolId", "interval", "from", "to"}
