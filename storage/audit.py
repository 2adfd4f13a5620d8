"""Reading the books for ``engine.audit``: PostgreSQL in one consistent snapshot, orders in
batches and pools summed by SQL (so that it reads 100k orders in bounded memory), and the
queue's state from Redis."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg

from engine.audit import (
    STALE_AFTER_S, AuditReport, BookAudit, Delivery, OrderRow, PoolLedger, QueueState, Step,
)  # fmt: skip
from sim.orders import OrderStatus
from storage.queue import OrderQueue
from storage.redis_client import open_redis

ORDER_BATCH = 2000
_FIRST_ID = "00000000-0000-0000-0000-000000000000"

_ORDERS = (
    "SELECT id::text, status, seq, error_code, created_at, updated_at, expires_at FROM orders"
    " WHERE id > %s::uuid ORDER BY id LIMIT %s"
)
_HISTORIES = (
    "SELECT order_id::text, seq, status, created_at FROM order_status_history"
    " WHERE order_id = ANY(%s::uuid[]) ORDER BY order_id, seq"
)
_FILLS = "SELECT order_id::text, leg FROM pool_trades WHERE order_id = ANY(%s::uuid[])"
_GENESES = "SELECT pool_id, snapshot FROM pool_genesis"
_TRADE_COUNTS = "SELECT pool_id, count(*), max(seq) FROM pool_trades GROUP BY pool_id"
_FLOWS = (
    "SELECT pool_id, token, sum(amount) FROM ("
    "  SELECT pool_id, token_in AS token, amount_in AS amount FROM pool_trades"
    "  UNION ALL SELECT pool_id, token_out, -amount_out FROM pool_trades"
    ") AS legs GROUP BY pool_id, token"
)
_LAST_STATE = "SELECT state_after FROM pool_trades WHERE pool_id = %s ORDER BY seq DESC LIMIT 1"


async def audit_books(
    database_url: str,
    redis_url: str | None,
    *,
    stale_after_s: float = STALE_AFTER_S,
    batch: int = ORDER_BATCH,
) -> AuditReport:
    """Audit the books in ``database_url`` (and the queue in ``redis_url``, unless None)."""
    # The queue first: an order found stale in PostgreSQL afterwards has not moved since,
    # so it was not taken off the queue in between.
    queue = None if redis_url is None else await read_queue(redis_url)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # one snapshot for every read: orders keep moving while the audit runs
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await conn.set_read_only(True)
        async with conn.transaction():
            (now,) = await _one(conn, "SELECT now()")  # the snapshot's time, on the server's clock
            audit = BookAudit(now, stale_after_s)
            await read_orders(conn, audit, batch)
            await read_pools(conn, audit)
    if queue is not None:
        audit.set_queue(queue)
    return audit.report()


async def read_orders(conn: psycopg.AsyncConnection, audit: BookAudit, batch: int) -> None:
    """Every order with its history and fills, ``batch`` orders a round."""
    last = _FIRST_ID
    while True:
        rows = await (await conn.execute(_ORDERS, (last, batch))).fetchall()
        if not rows:
            return
        ids = [row[0] for row in rows]
        histories: dict[str, list[Step]] = defaultdict(list)
        for order_id, seq, status, created_at in await (await conn.execute(_HISTORIES, (ids,))).fetchall():
            histories[order_id].append(Step(seq, OrderStatus(status), created_at))
        fills: dict[str, list[int]] = defaultdict(list)
        for order_id, leg in await (await conn.execute(_FILLS, (ids,))).fetchall():
            fills[order_id].append(leg)
        for order_id, status, seq, error_code, created_at, updated_at, expires_at in rows:
            order = OrderRow(order_id, OrderStatus(status), seq, error_code, created_at, updated_at, expires_at)
            audit.add_order(order, histories.get(order_id, ()), fills.get(order_id, ()))
        if len(rows) < batch:
            return
        last = ids[-1]


async def read_pools(conn: psycopg.AsyncConnection, audit: BookAudit) -> None:
    """Each pool's genesis, and its trades summed: count, last seq, flows per token, last state."""
    geneses = dict(await (await conn.execute(_GENESES)).fetchall())
    rows = await (await conn.execute(_TRADE_COUNTS)).fetchall()
    counts = {pool_id: (int(n), int(last)) for pool_id, n, last in rows}
    flows: dict[str, dict[str, int]] = defaultdict(dict)
    for pool_id, token, amount in await (await conn.execute(_FLOWS)).fetchall():
        flows[pool_id][token] = int(amount)
    for pool_id in sorted(set(geneses) | set(counts)):
        trades, last_seq = counts.get(pool_id, (0, 0))
        last_state = (await _one(conn, _LAST_STATE, (pool_id,)))[0] if trades else None
        ledger = PoolLedger(pool_id, geneses.get(pool_id), flows.get(pool_id, {}), trades, last_seq, last_state)
        audit.add_pool(ledger)


async def read_queue(redis_url: str) -> QueueState:
    """The order ids the queue holds (stream and retries), its unacknowledged deliveries, its depth."""
    client = open_redis(redis_url)
    try:
        queue = OrderQueue(client)
        queued = await queue.queued_order_ids()
        pending = await queue.pending_entries()
        depth = await queue.depth()
    finally:
        await client.aclose()
    deliveries = tuple(Delivery(p.msg_id, p.order_id, p.consumer, p.idle_ms / 1000) for p in pending)
    counts = {"waiting": depth.waiting, "pending": depth.pending, "delayed": depth.delayed}
    return QueueState(frozenset(queued), deliveries, counts)


async def _one(conn: psycopg.AsyncConnection, query: str, params: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return row
