"""Candles in SQL (``PoolTradeStore.candles``) on a real PostgreSQL: known trades in, exact OHLCV out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from storage.trades import PoolTradeStore

pytestmark = pytest.mark.integration

POOL = "raydium:SOL-USDC"
NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SOL, USDC, BONK = 10**9, 10**6, 10**5  # base units per token


def token(symbol: str, decimals: int) -> dict[str, object]:
    return {"symbol": symbol, "mint": f"{symbol}-mint", "decimals": decimals}


class Tape:
    """Trades of one pool written at chosen times (``created_at`` set afterwards)."""

    def __init__(self, db: AsyncConnectionPool, pool_id: str, base: tuple[str, int], quote: tuple[str, int]) -> None:
        self.db, self.pool_id, self.base, self.quote = db, pool_id, base, quote
        self.store = PoolTradeStore(db)
        self.seq = 0

    async def open(self) -> Tape:
        snapshot = {"type": "cpmm", "token_x": token(*self.base), "token_y": token(*self.quote)}
        await self.store.ensure_genesis(self.pool_id, snapshot)
        return self

    async def trade(self, at: datetime, *, sells_base: bool, base_units: int, quote_units: int) -> None:
        self.seq += 1
        base, quote = self.base[0], self.quote[0]
        sides = (base, base_units, quote, quote_units) if sells_base else (quote, quote_units, base, base_units)
        await self.store.record_trade(
            self.pool_id, seq=self.seq, kind="noise", order_id=None, token_in=sides[0], amount_in=sides[1],
            token_out=sides[2], amount_out=sides[3], fee=0, sim_time=at.timestamp(), state_after={},
        )  # fmt: skip
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE pool_trades SET created_at = %s WHERE pool_id = %s AND seq = %s", (at, self.pool_id, self.seq)
            )


async def sol_usdc(db: AsyncConnectionPool, pool_id: str = POOL) -> Tape:
    return await Tape(db, pool_id, ("SOL", 9), ("USDC", 6)).open()


async def candles(db: AsyncConnectionPool, pool_id: str = POOL, *, interval: timedelta = MINUTE,
                  start: datetime = NOON - timedelta(hours=1), end: datetime = NOON + timedelta(hours=1)):  # fmt: skip
    return await PoolTradeStore(db).candles(pool_id, interval=interval, start=start, end=end)


async def test_ohlc_and_volumes_of_known_trades_in_quote_per_base(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    await tape.trade(NOON, sells_base=True, base_units=1 * SOL, quote_units=150 * USDC)  # 150, on the edge
    await tape.trade(NOON + timedelta(seconds=20), sells_base=False, base_units=2 * SOL, quote_units=302 * USDC)  # 151
    await tape.trade(NOON + timedelta(seconds=40), sells_base=True, base_units=SOL // 2, quote_units=74_500_000)  # 149
    await tape.trade(NOON + timedelta(seconds=59, microseconds=999_999), sells_base=True,
                     base_units=SOL // 4, quote_units=37_500_000)  # 150, last of the minute  # fmt: skip
    await tape.trade(NOON + MINUTE, sells_base=False, base_units=SOL, quote_units=152 * USDC)  # 152, the next minute

    found = await candles(db)

    assert found is not None
    assert (found.pool_id, found.base, found.quote) == (POOL, "SOL", "USDC")
    first, second = found.candles
    assert first.start == NOON and second.start == NOON + MINUTE
    assert (first.open, first.high, first.low, first.close) == (150, 151, 149, 150)
    assert first.volume_base == Decimal("3.75") and first.volume_quote == Decimal("564")
    assert first.trades == 4
    assert (second.open, second.high, second.low, second.close) == (152, 152, 152, 152)
    assert (second.volume_base, second.volume_quote, second.trades) == (1, 152, 1)


async def test_open_and_close_follow_the_pools_trade_order_when_times_tie(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    at = NOON + timedelta(seconds=5)
    for quote_units in (160, 150, 155):
        await tape.trade(at, sells_base=True, base_units=SOL, quote_units=quote_units * USDC)

    (candle,) = (await candles(db)).candles

    assert (candle.open, candle.high, candle.low, candle.close) == (160, 160, 150, 155)


async def test_the_range_includes_its_start_and_excludes_its_end(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    await tape.trade(NOON, sells_base=True, base_units=SOL, quote_units=150 * USDC)
    await tape.trade(NOON + timedelta(seconds=30), sells_base=True, base_units=SOL, quote_units=151 * USDC)
    await tape.trade(NOON + MINUTE, sells_base=True, base_units=SOL, quote_units=152 * USDC)

    found = await candles(db, start=NOON + timedelta(seconds=1), end=NOON + MINUTE)

    (candle,) = found.candles
    assert candle.start == NOON  # the bucket is the whole minute; only the trades in range count
    assert (candle.open, candle.close, candle.trades) == (151, 151, 1)
    at_start = await candles(db, start=NOON, end=NOON + timedelta(seconds=1))
    assert [c.close for c in at_start.candles] == [150]


async def test_buckets_start_on_multiples_of_the_interval(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    await tape.trade(NOON + timedelta(minutes=4, seconds=59), sells_base=True, base_units=SOL, quote_units=150 * USDC)
    await tape.trade(NOON + timedelta(minutes=5), sells_base=True, base_units=SOL, quote_units=151 * USDC)
    await tape.trade(NOON + timedelta(minutes=59), sells_base=True, base_units=SOL, quote_units=152 * USDC)

    five = await candles(db, interval=timedelta(minutes=5))
    hour = await candles(db, interval=timedelta(hours=1))
    day = await candles(db, interval=timedelta(days=1), start=NOON - timedelta(days=1), end=NOON + timedelta(days=1))

    assert [c.start for c in five.candles] == [NOON, NOON + timedelta(minutes=5), NOON + timedelta(minutes=55)]
    assert [(c.start, c.open, c.close, c.trades) for c in hour.candles] == [(NOON, 150, 152, 3)]
    assert [c.start for c in day.candles] == [datetime(2030, 1, 1, tzinfo=UTC)]  # midnight UTC


async def test_an_empty_range_and_an_unknown_pool(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    await tape.trade(NOON, sells_base=True, base_units=SOL, quote_units=150 * USDC)

    later = await candles(db, start=NOON + timedelta(hours=2), end=NOON + timedelta(hours=3))

    assert later is not None and later.candles == () and (later.base, later.quote) == ("SOL", "USDC")
    assert await candles(db, "raydium:DOGE-USDC") is None


async def test_only_the_pools_own_trades_and_small_prices_stay_exact(db: AsyncConnectionPool) -> None:
    tape = await sol_usdc(db)
    await tape.trade(NOON, sells_base=True, base_units=SOL, quote_units=150 * USDC)
    bonk = await Tape(db, "raydium:BONK-SOL", ("BONK", 5), ("SOL", 9)).open()
    # 1,000,000 BONK for 0.02 SOL: 2e-8 SOL per BONK
    await bonk.trade(NOON, sells_base=True, base_units=1_000_000 * BONK, quote_units=20_000_000)
    await bonk.trade(NOON + timedelta(seconds=1), sells_base=False, base_units=3_000_000 * BONK, quote_units=66_000_000)

    (candle,) = (await candles(db, "raydium:BONK-SOL")).candles

    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("2E-8"), Decimal("2.2E-8"), Decimal("2E-8"), Decimal("2.2E-8"))  # fmt: skip
    assert (candle.volume_base, candle.volume_quote, candle.trades) == (4_000_000, Decimal("0.086"), 2)
