"""Storage against a real PostgreSQL and a real Redis (no mocks)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from localservers import LocalPostgres, LocalRedis, pid_alive
from sim.orders import InvalidTransition, OrderStatus
from engine.errors import IdempotencyConflict, InvalidCursor, OrderNotFound, StaleTransition
from storage.events import EventBus
from engine.records import StatusStep
from storage.orders import NewOrder, OrderStore, StatusEvent
from storage.queue import OrderQueue, QueueDepth
from storage.ratelimit import SlidingWindowLimiter
from storage.redis_client import open_redis
from storage.schema import apply_schema, migrations
from storage.trades import PoolTradeStore, StaleSequence

pytestmark = pytest.mark.integration

S = OrderStatus
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def new_order(amount: int = 1_500_000_000, **overrides: object) -> NewOrder:
    values: dict[str, object] = {
        "token_in": "SOL",
        "token_out": "USDC",
        "mint_in": SOL_MINT,
        "mint_out": USDC_MINT,
        "amount_in": amount,
        "amount_in_decimal": str(Decimal(amount) / 10**9),
        "slippage_bps": 50,
    }
    values.update(overrides)
    return NewOrder(**values)  # type: ignore[arg-type]


async def walk(store: OrderStore, order_id: str, *path: OrderStatus, attempt: int = 1) -> list[StatusEvent]:
    return [
        await store.transition(order_id, status, attempt=attempt, details={"step": str(status)})
        for status in path
    ]


# --------------------------------------------------------------------------- #
# local servers
# --------------------------------------------------------------------------- #


def test_local_postgres_lifecycle(storage_tmp: Path) -> None:
    pg = LocalPostgres(storage_tmp / "pg-lifecycle", durable=False)
    url = pg.start()
    try:
        assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url
        assert pg.start() == url  # idempotent
        first_pid = pg.pid
        assert first_pid is not None and pid_alive(first_pid)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES (%s)", ("survives a restart",))

        adopter = LocalPostgres(storage_tmp / "pg-lifecycle")  # another handle on the running server
        assert adopter.start() == url and adopter.pid == first_pid
        adopter.stop()  # it stops the server it adopted
        assert not pid_alive(first_pid) and not pg.running

        assert pg.start() == url  # same data dir, same (free) port
        assert pg.pid != first_pid
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("survives a restart",)
        second_pid = pg.pid
        pg.stop()
        assert second_pid is not None and not pid_alive(second_pid)
    finally:
        pg.stop()
    assert pg.pid is None


async def test_redis_restart_keeps_stream_and_pending(storage_tmp: Path) -> None:
    server = LocalRedis(storage_tmp / "redis-aof")
    url = server.start()
    client = open_redis(url)
    try:
        queue = OrderQueue(client, stream="q", group="g", delayed_key="d")
        await queue.ensure_group()
        first = await queue.enqueue("order-1")
        await queue.enqueue("order-2")
        assert await queue.read("worker-a", count=1) == [(first, "order-1")]
        await client.zadd(queue.delayed_key, {"order-3": time.time() + 3600})  # a retry waiting
        port = server.port

        assert await asyncio.to_thread(server.restart) == url
        assert server.port == port

        # the same client reconnects; stream, group, pending entry and ZSET survived
        assert await queue.pending_for("worker-a") == [(first, "order-1")]
        assert await queue.depth() == QueueDepth(waiting=1, pending=1, delayed=1)
        assert [oid for _, oid in await queue.read("worker-b", count=5)] == ["order-2"]
    finally:
        await client.aclose()
        server.stop()
    assert server.pid is None


async def test_queue_recreates_group_after_redis_lost_everything(storage_tmp: Path) -> None:
    server = LocalRedis(storage_tmp / "redis-volatile", appendonly=False)
    url = server.start()
    client = open_redis(url)
    try:
        queue = OrderQueue(client)
        await queue.ensure_group()
        msg = await queue.enqueue("lost")
        await asyncio.to_thread(server.restart)  # no persistence: stream and group are gone

        assert await queue.read("w", count=10) == []  # NOGROUP handled: group recreated
        assert await queue.pending_for("w") == []
        assert await queue.ack(msg) is False
        again = await queue.enqueue("requeued-from-postgres")
        assert await queue.read("w", count=10) == [(again, "requeued-from-postgres")]
    finally:
        await client.aclose()
        server.stop()


# --------------------------------------------------------------------------- #
# schema
# --------------------------------------------------------------------------- #


async def test_schema_is_applied_once(pg_pool: AsyncConnectionPool, database_url: str) -> None:
    assert await apply_schema(pg_pool) == []
    results = await asyncio.gather(*(apply_schema(pg_pool) for _ in range(3)))
    assert results == [[], [], []]
    async with pg_pool.connection() as conn:
        cur = await conn.execute("SELECT filename FROM schema_migrations ORDER BY filename")
        assert [r[0] for r in await cur.fetchall()] == [m.filename for m in migrations()]


# --------------------------------------------------------------------------- #
# orders
# --------------------------------------------------------------------------- #


async def test_create_order_writes_order_and_first_event(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    order, event = await store.create_order(
        new_order(), idempotency_key=None, request_hash=None, client_id="c1"
    )
    assert event is not None
    assert (order.status, order.seq, order.attempts) == (S.PENDING, 1, 1)
    assert order.amount_in == 1_500_000_000 and order.amount_in_decimal == "1.5"
    assert (event.order_id, event.seq, event.status, event.details) == (
        order.id,
        1,
        S.PENDING,
        {"queued": True},
    )
    assert event.timestamp.tzinfo is not None and event.timestamp.utcoffset() == timedelta(0)
    assert await store.get_order(order.id) == order
    assert await store.history(order.id) == [event]

    data = event.to_json()
    assert set(data) == {"orderId", "seq", "status", "attempt", "timestamp", "details"}
    assert data["timestamp"].endswith("Z") and StatusEvent.from_json(data) == event

    caller_id = str(uuid.uuid4())
    chosen, _ = await store.create_order(
        new_order(order_id=caller_id), idempotency_key=None, request_hash=None, client_id=None
    )
    assert chosen.id == caller_id
    assert await store.get_order("not-a-uuid") is None
    assert await store.get_order(str(uuid.uuid4())) is None


async def test_idempotency_key(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    first, event = await store.create_order(
        new_order(), idempotency_key="k-1", request_hash="h1", client_id="c"
    )
    assert event is not None
    again, none = await store.create_order(
        new_order(), idempotency_key="k-1", request_hash="h1", client_id="c"
    )
    assert none is None and again.id == first.id
    with pytest.raises(IdempotencyConflict) as conflict:
        await store.create_order(new_order(amount=7), idempotency_key="k-1", request_hash="h2", client_id="c")
    assert conflict.value.existing_order_id == first.id

    # racing duplicates: exactly one order is created
    results = await asyncio.gather(
        *(
            store.create_order(new_order(), idempotency_key="k-race", request_hash="hr", client_id="c")
            for _ in range(6)
        )
    )
    assert len({order.id for order, _ in results}) == 1
    assert sum(event is not None for _, event in results) == 1
    assert (await store.count_by_status())["pending"] == 2


async def test_lifecycle_follows_state_machine_with_gapless_seq(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    order, _ = await store.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    await walk(store, order.id, S.ROUTING, S.BUILDING)
    retry = await store.transition(
        order.id,
        S.PENDING,
        attempt=2,
        details={"reason": "slippage"},
        fields={"error_code": "SLIPPAGE_EXCEEDED"},
    )
    assert retry.seq == 4 and retry.attempt == 2
    await walk(store, order.id, S.ROUTING, S.BUILDING, S.SUBMITTED, attempt=2)
    route = {
        "dex": "meteora",
        "pools": ["meteora-sol-usdc"],
        "quotes": {"raydium": "149.1", "meteora": "150.2"},
    }
    done = await store.transition(
        order.id,
        S.CONFIRMED,
        attempt=2,
        details={"txHash": "5xyz"},
        expected=S.SUBMITTED,
        fields={
            "dex": "meteora",
            "pool_id": "meteora-sol-usdc",
            "route": route,
            "amount_out": 225_300_000,
            "executed_price": Decimal("150.2"),
            "fee": 3_000_000,
            "price_impact_bps": 12.5,
            "tx_signature": "5xyz",
        },
    )
    assert done.seq == 8

    history = await store.history(order.id)
    assert [e.seq for e in history] == list(range(1, 9))
    assert [e.status for e in history] == [
        S.PENDING, S.ROUTING, S.BUILDING, S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED
    ]  # fmt: skip
    assert [e.timestamp for e in history] == sorted(e.timestamp for e in history)
    assert [e.seq for e in await store.history(order.id, after_seq=6)] == [7, 8]

    stored = await store.get_order(order.id)
    assert stored is not None
    assert (stored.status, stored.seq, stored.attempts, stored.dex) == (S.CONFIRMED, 8, 2, "meteora")
    assert stored.route == route and stored.amount_out == 225_300_000 and stored.fee == 3_000_000
    assert stored.executed_price == Decimal("150.2") and stored.price_impact_bps == 12.5
    assert stored.is_final

    # final states are final; wrong expectations and unknown fields are refused
    with pytest.raises(StaleTransition) as stale:
        await store.transition(order.id, S.ROUTING, attempt=3, details={})
    assert stale.value.current == S.CONFIRMED and stale.value.current_seq == 8
    with pytest.raises(StaleTransition):
        await store.transition(order.id, S.FAILED, attempt=3, details={})
    with pytest.raises(InvalidTransition):
        await store.transition(order.id, S.SUBMITTED, attempt=1, details={}, expected=S.ROUTING)
    with pytest.raises(ValueError, match="not settable"):
        await store.transition(order.id, S.FAILED, attempt=1, details={}, fields={"status": "confirmed"})
    with pytest.raises(OrderNotFound):
        await store.transition(str(uuid.uuid4()), S.ROUTING, attempt=1, details={})
    with pytest.raises(OrderNotFound):
        await store.transition("1; DROP TABLE orders", S.ROUTING, attempt=1, details={})
    assert len(await store.history(order.id)) == 8


async def test_cas_guard_lets_exactly_one_writer_win(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    order, _ = await store.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    results = await asyncio.gather(
        *(store.transition(order.id, S.ROUTING, attempt=1, details={"writer": i}) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, StatusEvent)]
    assert len(winners) == 1 and winners[0].seq == 2
    assert all(isinstance(r, StaleTransition) for r in results if not isinstance(r, StatusEvent))

    # different targets, all expecting the order to be routing: still one winner
    racing = await asyncio.gather(
        store.transition(order.id, S.BUILDING, attempt=1, details={}, expected=S.ROUTING),
        store.transition(order.id, S.PENDING, attempt=2, details={}, expected=S.ROUTING),
        store.transition(order.id, S.FAILED, attempt=1, details={}, expected=S.ROUTING),
        return_exceptions=True,
    )
    assert sum(isinstance(r, StatusEvent) for r in racing) == 1
    assert [e.seq for e in await store.history(order.id)] == [1, 2, 3]

    # expected_seq catches a writer whose view is out of date even if the status matches again
    current = await store.get_order(order.id)
    assert current is not None
    if current.status != S.FAILED:
        with pytest.raises(StaleTransition):
            await store.transition(order.id, S.FAILED, attempt=1, details={}, expected_seq=current.seq - 1)
        event = await store.transition(order.id, S.FAILED, attempt=1, details={}, expected_seq=current.seq)
        assert event.seq == 4


async def test_steps_advanced_together_are_one_commit_each_its_own_event_or_nothing(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    order, _ = await store.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    steps = [StatusStep(S.ROUTING, {"n": 1}, {"dex": "raydium"}), StatusStep(S.BUILDING, {"n": 2}),
             StatusStep(S.SUBMITTED, {"n": 3}, {"dex": "meteora", "tx_signature": "sig-1"})]  # fmt: skip
    # eight runs race with the same steps: exactly one commits all three, the others none
    results = await asyncio.gather(*(store.advance(order.id, steps, attempt=1, expected_seq=1) for _ in range(8)),
                                   return_exceptions=True)  # fmt: skip
    won = [r for r in results if isinstance(r, list)]
    assert len(won) == 1 and all(isinstance(r, StaleTransition) for r in results if not isinstance(r, list))
    (events,) = won
    assert [(e.seq, e.status, e.details, e.attempt) for e in events] == [
        (2, S.ROUTING, {"n": 1}, 1), (3, S.BUILDING, {"n": 2}, 1), (4, S.SUBMITTED, {"n": 3}, 1)]  # fmt: skip
    assert events[0].timestamp < events[1].timestamp < events[2].timestamp
    history = await store.history(order.id)
    assert [(e.seq, e.status) for e in history] == [(1, S.PENDING), *((e.seq, e.status) for e in events)]
    stored = await store.get_order(order.id)
    assert stored is not None and (stored.status, stored.seq, stored.dex, stored.tx_signature) == (
        S.SUBMITTED, 4, "meteora", "sig-1")  # fmt: skip  # a later step's column wins
    with pytest.raises(InvalidTransition):  # steps that do not follow each other
        await store.advance(order.id, [StatusStep(S.CONFIRMED, {}), StatusStep(S.ROUTING, {})], attempt=1)
    with pytest.raises(ValueError):
        await store.advance(order.id, [], attempt=1)
    assert len(await store.history(order.id)) == 4


async def test_list_orders_pagination_and_status_filter(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    created = []
    for i in range(7):
        order, _ = await store.create_order(
            new_order(amount=i + 1), idempotency_key=None, request_hash=None, client_id=None
        )
        created.append(order.id)
    for order_id in created[:3]:
        await walk(store, order_id, S.ROUTING)
    newest_first = list(reversed(created))

    seen: list[str] = []
    pages = []
    cursor: str | None = None
    while True:
        page, cursor = await store.list_orders(limit=3, cursor=cursor)
        pages.append(len(page))
        seen += [o.id for o in page]
        if cursor is None:
            break
    assert pages == [3, 3, 1] and seen == newest_first

    routing, next_cursor = await store.list_orders(status=S.ROUTING, limit=10)
    assert [o.id for o in routing] == list(reversed(created[:3])) and next_cursor is None
    first, cursor = await store.list_orders(status="pending", limit=2)
    rest, end = await store.list_orders(status="pending", limit=2, cursor=cursor)
    assert [o.id for o in first + rest] == newest_first[:4] and end is None
    both, _ = await store.list_orders(status=[S.PENDING, S.ROUTING], limit=50)
    assert len(both) == 7

    with pytest.raises(InvalidCursor):
        await store.list_orders(cursor="bm90IGEgY3Vyc29y")
    with pytest.raises(ValueError):
        await store.list_orders(status="pending' OR '1'='1")
    with pytest.raises(ValueError):
        await store.list_orders(limit=0)


async def test_updated_at_trigger_counts_and_unfinished(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    a, _ = await store.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    b, _ = await store.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    await walk(store, a.id, S.ROUTING)
    moved = await store.get_order(a.id)
    assert moved is not None
    assert moved.updated_at > a.updated_at and moved.created_at == a.created_at
    await store.transition(
        b.id, S.FAILED, attempt=1, details={"reason": "unknown pair"}, fields={"error_code": "X"}
    )

    assert await store.count_by_status() == {
        "pending": 0, "routing": 1, "building": 0, "submitted": 0, "confirmed": 0, "failed": 1,
        "open": 0, "triggered": 0, "cancelled": 0, "expired": 0,
    }  # fmt: skip
    assert [o.id for o in await store.unfinished_orders()] == [a.id]
    assert await store.unfinished_orders(older_than_s=3600) == []


async def test_sql_injection_is_stored_verbatim(db: AsyncConnectionPool) -> None:
    store = OrderStore(db)
    evil = "SOL'); DROP TABLE orders; --"
    order, _ = await store.create_order(
        new_order(token_in=evil, amount_in_decimal="1' OR '1'='1"),
        idempotency_key="k'; DELETE FROM orders; --",
        request_hash="$$; DROP TABLE order_status_history; $$",
        client_id='"; TRUNCATE orders; --',
    )
    await store.transition(
        order.id,
        S.FAILED,
        attempt=1,
        details={"note": "'); DROP TABLE pool_trades; --", "k'ey": 'v"al'},
        fields={"error_message": "x' || pg_sleep(5) || '"},
    )
    stored = await store.get_order(order.id)
    assert stored is not None
    assert stored.token_in == evil and stored.amount_in_decimal == "1' OR '1'='1"
    assert stored.idempotency_key == "k'; DELETE FROM orders; --"
    assert stored.client_id == '"; TRUNCATE orders; --'
    assert stored.error_message == "x' || pg_sleep(5) || '"
    assert (await store.history(order.id))[-1].details == {
        "note": "'); DROP TABLE pool_trades; --",
        "k'ey": 'v"al',
    }
    assert (await store.count_by_status())["failed"] == 1
    trades = PoolTradeStore(db)
    await trades.ensure_genesis("p'; DROP TABLE pool_genesis; --", {"x": "'"})
    assert await trades.latest_state("p'; DROP TABLE pool_genesis; --") == {"x": "'"}


# --------------------------------------------------------------------------- #
# pool trades
# --------------------------------------------------------------------------- #


async def test_pool_trades(db: AsyncConnectionPool) -> None:
    trades = PoolTradeStore(db)
    orders = OrderStore(db)
    pool_id = "raydium-sol-usdc"
    assert await trades.latest_state(pool_id) is None
    genesis = {"reserve_in": 1000, "reserve_out": 150000}
    assert await trades.ensure_genesis(pool_id, genesis) == genesis
    assert await trades.ensure_genesis(pool_id, {"reserve_in": 1}) == genesis  # written once
    assert await trades.latest_state(pool_id) == genesis

    order, _ = await orders.create_order(new_order(), idempotency_key=None, request_hash=None, client_id=None)
    common: dict[str, Any] = {"token_in": "SOL", "token_out": "USDC", "fee": 30}
    assert await trades.latest(pool_id) == (0, genesis)
    first = await trades.record_trade(
        pool_id, kind="noise", order_id=None, leg=0, amount_in=10, amount_out=1490, sim_time=1.0,
        state_after={"step": 1}, seq=1, **common,
    )  # fmt: skip
    fill = await trades.record_trade(
        pool_id, kind="order", order_id=order.id, leg=0, amount_in=1_500_000_000, amount_out=225_000_000,
        sim_time=2.5, state_after={"step": 2}, seq=2, **common,
    )  # fmt: skip
    assert (first.seq, fill.seq, fill.existing) == (1, 2, False)
    replay = await trades.record_trade(
        pool_id, kind="order", order_id=order.id, leg=0, amount_in=999, amount_out=1, sim_time=9.0,
        state_after={"step": "would be a double fill"}, seq=3, **common,
    )  # fmt: skip
    assert replay.existing and replay.seq == 2 and replay.amount_out == 225_000_000
    assert await trades.trade_for_order(order.id, 0) == fill
    assert await trades.trade_for_order(order.id, 1) is None
    assert await trades.latest_state(pool_id) == {"step": 2} and await trades.latest(pool_id) == (2, {"step": 2})
    assert await trades.flows(pool_id) == {"SOL": (1_500_000_010, 0), "USDC": (0, 225_001_490)}

    # a second writer (two actors of one pool) is refused the seq the first took: nothing is written
    with pytest.raises(StaleSequence):
        await trades.record_trade(
            pool_id, kind="noise", order_id=None, amount_in=2, amount_out=3, sim_time=21.0,
            state_after={"step": "a second writer"}, seq=2, **common,
        )  # fmt: skip
    assert [t.seq for t in await trades.trades(pool_id)] == [1, 2]

    for bad in ({"kind": "order", "order_id": None, "seq": 3}, {"kind": "noise", "order_id": None, "seq": 0}):
        with pytest.raises(ValueError):
            await trades.record_trade(
                pool_id, amount_in=1, amount_out=1, sim_time=0, state_after={}, **bad, **common
            )


# --------------------------------------------------------------------------- #
# Redis: queue, rate limits, events
# --------------------------------------------------------------------------- #


async def test_queue_read_ack_recovery_claim_and_delay(redis_client: aioredis.Redis, rkey: str) -> None:
    queue = OrderQueue(redis_client, stream=f"{rkey}stream", group="executors", delayed_key=f"{rkey}delayed")
    await queue.ensure_group()
    await queue.ensure_group()  # idempotent
    ids = [await queue.enqueue(f"o{i}") for i in range(4)]
    assert await queue.depth() == QueueDepth(waiting=4, pending=0, delayed=0)

    got = await queue.read("exec-1", count=2, block_ms=100)
    assert got == [(ids[0], "o0"), (ids[1], "o1")]
    assert [oid for _, oid in await queue.read("exec-2", count=1)] == ["o2"]
    assert (await queue.depth()).pending == 3

    # a restarted exec-1 gets back exactly what it had not acked
    assert await queue.ack(ids[0]) is True
    assert await queue.ack(ids[0]) is False
    assert await queue.pending_for("exec-1") == [(ids[1], "o1")]

    # exec-1 and exec-2 died: once idle long enough, their entries are claimable by exec-3
    assert await queue.claim_stale("exec-3", min_idle_ms=60_000) == []
    await asyncio.sleep(0.05)
    assert await queue.claim_stale("exec-3", min_idle_ms=20) == [(ids[1], "o1"), (ids[2], "o2")]
    assert await queue.pending_for("exec-2") == []
    assert await queue.pending_for("exec-3") == [(ids[1], "o1"), (ids[2], "o2")]

    # retries wait in the ZSET until due
    now = time.time()
    await redis_client.zadd(queue.delayed_key, {"later": now + 60, "soon": now - 1})
    await queue.defer(ids[1], "o1", now - 0.5)
    depth = await queue.depth()
    assert (depth.waiting, depth.pending, depth.delayed) == (1, 1, 3)
    assert await queue.promote_due(now) == 2
    assert await queue.promote_due(now) == 0
    assert sorted(oid for _, oid in await queue.read("exec-1", count=10)) == ["o1", "o3", "soon"]
    assert (await queue.depth()).delayed == 1
    assert await queue.read("exec-1", count=10, block_ms=50) == []


async def test_sliding_window_limiter(redis_client: aioredis.Redis, rkey: str) -> None:
    limiter = SlidingWindowLimiter(redis_client, limit=5, window_s=30.0, prefix=f"{rkey}api")
    results = [await limiter.hit("client-a") for _ in range(7)]
    assert [allowed for allowed, _ in results] == [True] * 5 + [False] * 2
    assert all(0 < retry <= 30.0 for _, retry in results[5:])
    assert await limiter.hit("client-b") == (True, 0.0)  # per client

    short = SlidingWindowLimiter(redis_client, limit=1, window_s=0.05, prefix=f"{rkey}short")
    assert (await short.hit("c"))[0] is True
    allowed, retry = await short.hit("c")
    if not allowed:
        await asyncio.sleep(retry + 0.01)
    assert (await short.hit("c"))[0] is True


async def test_pubsub_delivers_published_event(db: AsyncConnectionPool, redis_client: aioredis.Redis) -> None:
    store = OrderStore(db)
    bus = EventBus(redis_client)
    order, created = await store.create_order(
        new_order(), idempotency_key=None, request_hash=None, client_id=None
    )
    assert created is not None
    async with bus.subscribe(order.id) as events, bus.subscribe_all() as everything:
        other = {"orderId": str(uuid.uuid4()), "seq": 7, "status": "routing"}
        assert await bus.publish(other) >= 2  # one channel: both subscriptions hear it
        routed = await store.transition(order.id, S.ROUTING, attempt=1, details={"quotes": 2})
        assert await bus.publish(routed) >= 2
        received = await asyncio.wait_for(anext(events), timeout=5)  # the other order's event is not in it
        assert received == routed.to_json()
        assert StatusEvent.from_json(received) == routed
        assert (await asyncio.wait_for(anext(everything), timeout=5)) == other
        assert (await asyncio.wait_for(anext(everything), timeout=5))["seq"] == 2


async def test_queued_order_ids_cover_the_stream_and_the_retries(redis_client, rkey):
    from storage.queue import OrderQueue

    queue = OrderQueue(redis_client, stream=f"{rkey}s", group="g", delayed_key=f"{rkey}d")
    await queue.ensure_group()
    waiting = [f"order-{i}" for i in range(5)]
    for order_id in waiting:
        await queue.enqueue(order_id)
    [(msg_id, taken)] = await queue.read("c", count=1)
    await redis_client.zadd(queue.delayed_key, {"later": 10**12})
    assert await queue.queued_order_ids(batch=2) == {*waiting, "later"}
    await queue.ack(msg_id)
    assert await queue.queued_order_ids() == {*waiting, "later"} - {taken}


async def test_the_priority_lane_is_served_first_and_every_queue_operation_sees_both_lanes(redis_client, rkey):
    queue = OrderQueue(redis_client, stream=f"{rkey}q", group="executors", delayed_key=f"{rkey}d")
    await queue.ensure_group()
    normal = [await queue.enqueue(f"n{i}") for i in range(2)]
    urgent = await queue.enqueue("stop", priority=True)
    assert urgent.startswith("p:") and not normal[0].startswith("p:")
    assert await queue.depth() == QueueDepth(waiting=3, pending=0, delayed=0)
    assert await queue.queued_order_ids() == {"n0", "n1", "stop"}
    # One read serves both lanes, the priority lane's entry first.
    assert await queue.read("c", count=1, block_ms=100) == [(urgent, "stop"), (normal[0], "n0")]
    assert await queue.pending_for("c") == [(urgent, "stop"), (normal[0], "n0")]
    assert {e.msg_id for e in await queue.pending_entries()} == {urgent, normal[0]}
    await asyncio.sleep(0.03)
    assert sorted(await queue.claim_stale("d", min_idle_ms=10)) == sorted([(urgent, "stop"), (normal[0], "n0")])
    assert await queue.ack(urgent) is True and await queue.ack(urgent) is False
    await queue.defer(normal[0], "n0", time.time() - 1)  # a retry comes back in the normal lane
    assert await queue.depth() == QueueDepth(waiting=1, pending=0, delayed=1)
    assert await queue.promote_due(time.time()) == 1
    assert [oid for _, oid in await queue.read("c", count=5)] == ["n1", "n0"]
    # A blocked read wakes for an urgent order too.
    reader = asyncio.ensure_future(queue.read("c", count=1, block_ms=5000))
    await asyncio.sleep(0.05)
    await queue.enqueue("late-stop", priority=True)
    [(msg_id, order_id)] = await asyncio.wait_for(reader, 5)
    assert order_id == "late-stop" and msg_id.startswith("p:")


async def test_open_orders_page_in_acceptance_order_and_are_not_what_the_sweep_runs(db: AsyncConnectionPool) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.waiting import stored_trigger

    store = OrderStore(db)
    expires = datetime.now(UTC) + timedelta(hours=1)
    ids = []
    for i in range(5):
        order, _ = await store.create_order(new_order(
            type="trailing_stop", slippage_bps=500, expires_at=expires,
            trigger=stored_trigger("trailing_stop", price=None, threshold_out=0, trailing_bps=100 + i),
        ))  # fmt: skip
        await store.transition(order.id, S.OPEN, attempt=0, details={})
        ids.append(order.id)
    market, _ = await store.create_order(new_order())
    first = await store.open_orders(batch=3)
    rest = await store.open_orders(after=first[-1].id, batch=3)
    assert [o.id for o in first + rest] == ids
    assert await store.open_order_ids() == set(ids)
    assert first[0].trigger["trailingBps"] == 100 and first[0].expires_at == expires
    unfinished = {o.id for o in await store.unfinished_orders()}
    assert market.id in unfinished and not unfinished & set(ids)
    assert await store.record_trailing_highs({ids[0]: {"highOut": "123"}, ids[1]: {"highOut": "456"}}) == 2
    assert (await store.get_order(ids[0])).trigger == {**first[0].trigger, "highOut": "123"}
    await store.transition(ids[1], S.CANCELLED, attempt=0, details={})
    assert await store.record_trailing_highs({ids[1]: {"highOut": "789"}}) == 0  # only open orders move
    with pytest.raises(ValueError, match="a waiting order has a trigger"):
        new_order(type="limit")


async def test_a_launch_is_recorded_once_with_its_token_and_pool(db: AsyncConnectionPool) -> None:
    from decimal import Decimal

    from engine.errors import TokenExists
    from sim.launches import Launch, launch_mint, launch_pool
    from sim.tokens import SOL
    from storage.market import LaunchStore
    from storage.trades import PoolTradeStore

    store = LaunchStore(db)
    launch = Launch("MEOW", launch_mint(7, "MEOW"), 6, "SOL", "raydium", Decimal("200"), Decimal("0.0001"))
    await store.record_launch(launch)
    for clash in (launch, Launch("meow", launch_mint(7, "other"), 6, "SOL", "meteora", Decimal(1), Decimal(1)),
                  Launch("WOOF", launch.mint, 6, "SOL", "raydium", Decimal(1), Decimal(1))):  # fmt: skip
        with pytest.raises(TokenExists):
            await store.record_launch(clash)
    assert [t.symbol for t in await store.tokens()] == ["MEOW"]
    assert await store.pools() == [("raydium:MEOW-SOL", "MEOW", "SOL")]
    assert await store.genesis("raydium:MEOW-SOL") is None  # the pool actor writes it when it starts
    snapshot = launch_pool(launch, SOL).snapshot()
    await PoolTradeStore(db).ensure_genesis("raydium:MEOW-SOL", snapshot)
    assert (await store.genesis("raydium:MEOW-SOL"))["pool_id"] == "raydium:MEOW-SOL"
