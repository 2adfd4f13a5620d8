"""Every trade against a simulated pool, and each pool's genesis state.

A pool's state is its genesis snapshot plus its trades in ``seq`` order; the
last trade's ``state_after`` is the current state, so a restarted pool actor
resumes exactly where it was. An order fills each leg at most once: recording
the same ``(order_id, leg)`` again returns the stored trade (``existing=True``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from psycopg import errors, sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from engine.candles import Candle, PoolCandles
from engine.records import TradeRecord, utc
from engine.records import parse_uuid
from storage._codec import jsonb

TradeKind = Literal["order", "arbitrage", "noise", "shock", "mev"]
TRADE_KINDS: frozenset[str] = frozenset({"order", "arbitrage", "noise", "shock", "mev"})  # mev: a sandwich's legs


_TRADE_COLUMNS = sql.SQL(
    "pool_id, seq, kind, order_id, leg, token_in, amount_in, token_out, amount_out, fee, sim_time, "
    "state_after, details, created_at"
)
_INSERT_TRADE = sql.SQL(
    "INSERT INTO pool_trades (pool_id, seq, kind, order_id, leg, token_in, amount_in, token_out, "
    "amount_out, fee, sim_time, state_after, details) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (order_id, leg) WHERE order_id IS NOT NULL DO NOTHING RETURNING {}"
).format(_TRADE_COLUMNS)
_BY_ORDER_LEG = sql.SQL("SELECT {} FROM pool_trades WHERE order_id = %s AND leg = %s").format(_TRADE_COLUMNS)

_POOL_TOKENS = (
    "SELECT snapshot->'token_x'->>'symbol', (snapshot->'token_x'->>'decimals')::int, "
    "snapshot->'token_y'->>'symbol', (snapshot->'token_y'->>'decimals')::int "
    "FROM pool_genesis WHERE pool_id = %(pool_id)s"
)
# Each trade as base and quote units, priced in quote per base token; then one row per bucket, open and
# close by the pool's trade order (seq). Buckets start on multiples of the interval since the epoch.
_CANDLES = """
SELECT bucket, (array_agg(price ORDER BY seq))[1], max(price), min(price), (array_agg(price ORDER BY seq DESC))[1],
       sum(base_units), sum(quote_units), count(*)
FROM (
    SELECT date_bin(%(interval)s, created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, seq,
           base_units, quote_units, quote_units * %(scale)s / base_units AS price
    FROM (
        SELECT seq, created_at,
               CASE WHEN token_in = %(base)s THEN amount_in ELSE amount_out END AS base_units,
               CASE WHEN token_in = %(base)s THEN amount_out ELSE amount_in END AS quote_units
        FROM pool_trades
        WHERE pool_id = %(pool_id)s AND created_at >= %(start)s AND created_at < %(end)s
    ) AS sides
    WHERE base_units > 0 AND quote_units > 0
) AS priced
GROUP BY bucket
ORDER BY bucket
"""


def trade_from_row(row: Mapping[str, Any]) -> TradeRecord:
    return TradeRecord(
        pool_id=row["pool_id"],
        seq=int(row["seq"]),
        kind=row["kind"],
        order_id=None if row["order_id"] is None else str(row["order_id"]),
        leg=row["leg"],
        token_in=row["token_in"],
        amount_in=int(row["amount_in"]),
        token_out=row["token_out"],
        amount_out=int(row["amount_out"]),
        fee=int(row["fee"]),
        sim_time=float(row["sim_time"]),
        state_after=row["state_after"],
        created_at=utc(row["created_at"]),
        details=row["details"] or {},
    )


def _amount(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of base units")
    return value


class StaleSequence(Exception):
    """The ``seq`` a trade was written with is taken: another writer moved the pool meanwhile."""

    def __init__(self, pool_id: str, seq: int) -> None:
        super().__init__(f"pool {pool_id}: trade seq {seq} is taken")
        self.pool_id, self.seq = pool_id, seq


class PoolTradeStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def ensure_genesis(self, pool_id: str, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``snapshot`` as the pool's genesis unless one exists; return the stored one."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO pool_genesis (pool_id, snapshot) VALUES (%s, %s) ON CONFLICT (pool_id) DO NOTHING",
                (pool_id, jsonb(dict(snapshot))),
            )
            await cur.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,))
            row = await cur.fetchone()
        assert row is not None
        return dict(row[0])

    async def genesis(self, pool_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,))
            row = await cur.fetchone()
        return None if row is None else dict(row[0])

    async def record_trade(
        self,
        pool_id: str,
        *,
        kind: TradeKind | str,
        order_id: str | None,
        leg: int = 0,
        token_in: str,
        amount_in: int,
        token_out: str,
        amount_out: int,
        fee: int,
        sim_time: float,
        state_after: Mapping[str, Any],
        details: Mapping[str, Any] | None = None,
        seq: int,
    ) -> TradeRecord:
        """Append a trade at ``seq``, the pool's next one: one statement, no lock.

        The pool's actor is its only writer and knows its last ``seq``
        (:meth:`latest`); a ``seq`` already taken raises :class:`StaleSequence`
        (someone else wrote to the pool: the writer's view of it is stale). If
        the order already has this ``leg`` the stored trade is returned with
        ``existing=True`` and nothing is written.
        """
        if kind not in TRADE_KINDS:
            raise ValueError(f"unknown trade kind {kind!r}")
        if (kind == "order") != (order_id is not None):
            raise ValueError("order trades need an order_id, and only they have one")
        oid = None
        if order_id is not None:
            oid = parse_uuid(order_id)
            if oid is None:
                raise ValueError(f"order_id {order_id!r} is not a UUID")
        if isinstance(leg, bool) or not isinstance(leg, int) or leg < 0:
            raise ValueError("leg must be a non-negative integer")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError("seq must be a positive integer")
        row = (
            pool_id, seq, kind, oid, leg, token_in, _amount("amount_in", amount_in), token_out,
            _amount("amount_out", amount_out), _amount("fee", fee), float(sim_time),
            jsonb(dict(state_after)), jsonb(dict(details or {})),
        )  # fmt: skip
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                await cur.execute(_INSERT_TRADE, row)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "pool_trades_pkey":
                    raise StaleSequence(pool_id, seq) from None
                raise
            inserted = await cur.fetchone()
            if inserted is not None:
                return trade_from_row(inserted)
            await cur.execute(_BY_ORDER_LEG, (oid, leg))  # the leg was filled already
            found = await cur.fetchone()
        assert found is not None
        return replace(trade_from_row(found), existing=True)

    async def latest(self, pool_id: str) -> tuple[int, dict[str, Any] | None]:
        """The pool's last ``seq`` (0: no trade yet) and its state then (else its genesis, else None)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT seq, state_after FROM pool_trades WHERE pool_id = %s ORDER BY seq DESC LIMIT 1", (pool_id,)
            )
            row = await cur.fetchone()
            if row is not None:
                return int(row[0]), dict(row[1])
            cur = await conn.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,))
            row = await cur.fetchone()
        return 0, None if row is None else dict(row[0])

    async def trade_for_order(self, order_id: str, leg: int = 0) -> TradeRecord | None:
        oid = parse_uuid(order_id)
        if oid is None:
            return None
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_BY_ORDER_LEG, (oid, leg))
            row = await cur.fetchone()
        return None if row is None else trade_from_row(row)

    async def trades_for_order(self, order_id: str) -> list[TradeRecord]:
        """Every trade that filled ``order_id``, by leg."""
        oid = parse_uuid(order_id)
        if oid is None:
            return []
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                sql.SQL("SELECT {} FROM pool_trades WHERE order_id = %s ORDER BY leg").format(_TRADE_COLUMNS),
                (oid,),
            )
            rows = await cur.fetchall()
        return [trade_from_row(row) for row in rows]

    async def trades(self, pool_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[TradeRecord]:
        """The pool's trades with ``seq > after_seq``, in order (for replay and audit)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                sql.SQL(
                    "SELECT {} FROM pool_trades WHERE pool_id = %s AND seq > %s ORDER BY seq LIMIT %s"
                ).format(_TRADE_COLUMNS),
                (pool_id, after_seq, limit),
            )
            rows = await cur.fetchall()
        return [trade_from_row(row) for row in rows]

    async def latest_state(self, pool_id: str) -> dict[str, Any] | None:
        """``state_after`` of the pool's last trade, else its genesis, else None."""
        return (await self.latest(pool_id))[1]

    async def flows(self, pool_id: str) -> dict[str, tuple[int, int]]:
        """Per token: (total paid into the pool, total paid out of it), over every trade."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT token, sum(paid_in), sum(paid_out) FROM ("
                "  SELECT token_in AS token, amount_in AS paid_in, 0 AS paid_out FROM pool_trades WHERE pool_id = %s"
                "  UNION ALL"
                "  SELECT token_out, 0, amount_out FROM pool_trades WHERE pool_id = %s"
                ") AS legs GROUP BY token ORDER BY token",
                (pool_id, pool_id),
            )
            rows = await cur.fetchall()
        return {token: (int(paid_in), int(paid_out)) for token, paid_in, paid_out in rows}

    async def candles(
        self, pool_id: str, *, interval: timedelta, start: datetime, end: datetime
    ) -> PoolCandles | None:
        """The pool's trades with ``start <= created_at < end``, per bucket of ``interval`` (OHLCV, token units);
        None when the pool has no genesis (no such pool was ever opened)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_POOL_TOKENS, {"pool_id": pool_id})
            tokens = await cur.fetchone()
            if tokens is None:
                return None
            base, base_decimals, quote, quote_decimals = tokens
            cur = await conn.execute(
                _CANDLES,
                {"interval": interval, "scale": Decimal(10) ** (base_decimals - quote_decimals), "base": base,
                 "pool_id": pool_id, "start": start, "end": end},
            )  # fmt: skip
            rows = await cur.fetchall()
        candles = tuple(
            Candle(
                start=utc(bucket), open=open_, high=high, low=low, close=close,
                volume_base=Decimal(base_units).scaleb(-base_decimals),
                volume_quote=Decimal(quote_units).scaleb(-quote_decimals), trades=int(trades),
            )  # fmt: skip
            for bucket, open_, high, low, close, base_units, quote_units, trades in rows
        )
        return PoolCandles(pool_id=pool_id, base=base, quote=quote, candles=candles)
