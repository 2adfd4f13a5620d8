"""Starting an engine on the session's Ray, and the checks every guarantee test ends with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import ray
import redis

from actors.system import EngineActors, stop_actors
from engine.settings import EngineSettings, LatencySettings
from engine.audit import report_lines
from sim.orders import ACTIVE_STATUSES, OrderStatus
from sim.tokens import TokenRegistry, to_base_units
from storage.events import EventBus
from engine.intake import accept_order
from engine.records import NewOrder
from runtime.root import start_engine_actors
from storage.audit import audit_books
from storage.orders import OrderStore
from storage.queue import OrderQueue

TOKENS = TokenRegistry()
# orders on the default market's pairs, both ways and of several sizes (shared by the engine modules)
MIXED = [
    ("SOL", "USDC", "1.5"),
    ("USDC", "SOL", "250"),
    ("SOL", "USDC", "12"),
    ("BONK", "USDC", "5000000"),
    ("JUP", "USDC", "300"),
    ("USDC", "USDT", "1000"),
]
TABLES = "pool_trades, order_status_history, pool_genesis, orders, launched_pools, launched_tokens, api_keys"


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it, section by section."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def base_settings(database_url: str, redis_url: str, **overrides: Any) -> EngineSettings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        redis_url=redis_url,
        latency=LatencySettings.zero().model_dump(),
        market={"enabled": False},
        dispatch={"rate_limit_per_minute": 0, "sweep_interval_s": 1.0},
        # metrics_export_port 0: should anything start a Ray from these, never a fixed port (two sessions run at once)
        ray={"namespace": f"test-{uuid.uuid4().hex[:8]}", "dashboard": False, "metrics_export_port": 0},
        retry={"max_retries": 3, "base_delay_s": 0.05, "factor": 2.0},
        # A swap lands at once, whatever latency a test sets; the chain's own modules turn it on.
        chain={"enabled": "off"},
    )
    values = merged(values, overrides)
    return EngineSettings(**values)


def reset_storage(settings: EngineSettings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    redis.Redis.from_url(settings.redis_url).flushdb()


T = TypeVar("T")


class EngineKeeper:
    """At most one engine on the session's Ray, kept after its module for the next module of its group.

    Starting an engine costs 10-30 s; modules that declare the same ``ENGINE_GROUP`` (run one after
    another: ``tests/conftest.py`` orders them so) and ask for the same settings share one. Two
    engines never run at once: they would share the Redis queue (and Serve, one per cluster).
    ``tests/conftest.py`` releases the kept engine once the next test belongs to another group.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._stack: contextlib.ExitStack | None = None
        self._value: Any = None

    def get(self, key: str, start: Callable[[contextlib.ExitStack], T]) -> T:
        if self._stack is not None and self._key == key:
            return self._value
        self.release()
        stack = contextlib.ExitStack()
        try:
            value = start(stack)
        except BaseException:
            stack.close()
            raise
        self._key, self._stack, self._value = key, stack, value
        return value

    def release(self) -> None:
        stack, self._stack, self._key, self._value = self._stack, None, None, None
        if stack is not None:
            stack.close()


KEEPER = EngineKeeper()


def settings_key(settings: EngineSettings, kind: str) -> str:
    """What makes two engines the same, for sharing: everything but the namespace and the API's port."""
    values = settings.model_dump(mode="json")
    values["ray"].pop("namespace", None)
    values["api"].pop("port", None)
    return kind + json.dumps(values, sort_keys=True, default=str)


def shared_engine(settings: EngineSettings) -> tuple[EngineSettings, EngineActors]:
    """The kept engine if it runs on the same settings (its own settings, with its namespace), else a new
    one on empty books, kept. Tests on a shared engine must not assume empty books."""
    return KEEPER.get(settings_key(settings, "engine"),
                      lambda stack: (settings, stack.enter_context(running_engine(settings))))  # fmt: skip


@contextlib.contextmanager
def running_engine(settings: EngineSettings, *, reset: bool = True) -> Iterator[EngineActors]:
    """The engine's actors on the session's Ray; ``reset``: on empty books (else on what the store holds)."""
    KEEPER.release()  # never two engines at once
    if reset:
        reset_storage(settings)
    actors = start_engine_actors(settings)
    try:
        yield actors
    finally:
        stop_actors(actors)


async def submit(
    settings: EngineSettings,
    orders: list[tuple[str, str, str]],
    slippage_bps: int = 100,
    tokens: TokenRegistry = TOKENS,
    tx_options: dict[str, Any] | None = None,
) -> list[str]:
    """Accept orders the way the API does: stored, published, then queued."""
    import redis.asyncio as aioredis

    from storage.db import open_pool

    pool = await open_pool(settings.database_url, min_size=1, max_size=2)
    client = aioredis.from_url(settings.redis_url)
    try:
        store, queue, bus = OrderStore(pool), OrderQueue(client), EventBus(client)
        ids = []
        for token_in, token_out, amount in orders:
            t_in, t_out = tokens[token_in], tokens[token_out]
            record, _ = await accept_order(
                store, bus, queue,
                NewOrder(
                    token_in=t_in.symbol,
                    token_out=t_out.symbol,
                    mint_in=t_in.mint,
                    mint_out=t_out.mint,
                    amount_in=to_base_units(Decimal(amount), t_in),
                    amount_in_decimal=amount,
                    slippage_bps=slippage_bps,
                    tx_options=tx_options,
                ),
                client_id="tests",
            )  # fmt: skip
            ids.append(record.id)
        return ids
    finally:
        await client.aclose()
        await pool.close()


def wait_final(settings: EngineSettings, ids: list[str], timeout_s: float = 120) -> dict[str, str]:
    """Poll PostgreSQL until every order is final; the statuses by id."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT id::text, status FROM orders WHERE id = ANY(%s::uuid[])", (ids,)
            ).fetchall()
            statuses = dict(rows)
            if len(statuses) == len(ids) and all(
                OrderStatus(s).is_final for s in statuses.values()
            ):
                return statuses
            if time.monotonic() > deadline:
                stuck = {i: s for i, s in statuses.items() if not OrderStatus(s).is_final}
                raise AssertionError(f"orders not final after {timeout_s}s: {stuck}")
            time.sleep(0.1)


def failures(settings: EngineSettings, ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """Failed orders: id -> (pair, error code, message), for assertion messages."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id::text, token_in || '->' || token_out, error_code, error_message FROM orders"
            " WHERE id = ANY(%s::uuid[]) AND status = 'failed'",
            (ids,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def history(settings: EngineSettings, order_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        cur = conn.execute(
            "SELECT seq, status, attempt, details, created_at FROM order_status_history"
            " WHERE order_id = %s ORDER BY seq",
            (order_id,),
        )
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def assert_invariants(settings: EngineSettings, actors: EngineActors, ids: list[str]) -> None:
    """Each order ended once, through legal steps, with at most one fill per leg;
    each pool holds exactly its genesis plus its recorded flows."""
    if actors.market is not None:
        # Hold the market still while pools and PG are compared; it resumes after.
        ray.get(actors.market.stop.remote())
        time.sleep(0.5)  # a tick already sent lands first
    try:
        _check_invariants(settings, actors, ids)
    finally:
        if actors.market is not None:
            ray.get(actors.market.start.remote())


def _check_invariants(settings: EngineSettings, actors: EngineActors, ids: list[str]) -> None:
    """What PostgreSQL and Redis alone can answer is the audit's (``dexengine audit``); the pool
    actors' own reserves, and that this test's orders all ended, are checked here."""
    assert settings.database_url is not None
    wait_quiet(settings.database_url)
    for _ in range(5):
        # an order left over by an earlier test may still trade: read the books between two
        # equal readings of the pools, so that both sides saw the same trades
        held = settled_reserves(actors)
        report = run(audit_books(settings.database_url, settings.redis_url))
        if settled_reserves(actors) == held:
            break
    assert report.clean, "\n".join(report_lines(report))
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        statuses = dict(conn.execute("SELECT id::text, status FROM orders WHERE id = ANY(%s::uuid[])", (ids,)))
    assert set(statuses) == set(ids), f"orders not stored: {set(ids) - set(statuses)}"
    assert all(OrderStatus(s).is_final for s in statuses.values()), statuses
    for pool_id, reserves in held.items():
        assert reserves == report.pool_reserves.get(pool_id), (pool_id, reserves, report.pool_reserves.get(pool_id))


def wait_quiet(database_url: str, timeout_s: float = 60.0) -> None:
    """Until no order at all is running (an earlier test's may still trade), or the time is up:
    then the audit names what is stuck."""
    end = time.monotonic() + timeout_s
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < end:
            (open_orders,) = conn.execute(
                "SELECT count(*) FROM orders WHERE status = ANY(%s)", (sorted(ACTIVE_STATUSES),)
            ).fetchone()
            if open_orders == 0:
                return
            time.sleep(0.2)


def settled_reserves(actors: EngineActors) -> dict[str, dict[str, int]]:
    """Each pool actor's reserves once no trade of it is being applied or written."""
    ids = list(actors.pools)
    return dict(zip(ids, ray.get([actors.pools[i].settled_reserves.remote() for i in ids])))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = best = 0
    for _, step in points:
        running += step
        best = max(best, running)
    return best


def run(coro: Any) -> Any:
    return asyncio.run(coro)
