"""Actors killed, Redis restarted, the whole engine crashed, while orders flow through the API into the live engine.

Each test ends with the harness's invariants: every accepted order ended
exactly once, no double fill, a gapless ordered history, and every pool's
reserves equal its genesis plus its recorded flows.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import ray

from engine.plans import HeldPool
from runtime.root import start_engine_actors

from tests.faults.conftest import (
    SOL_USDC,
    Flow,
    kill_and_wait_restart,
    deadline,
    error_codes,
    orders_in_db,
    pid_of,
    wait_final_or_explain,
)
from tests.integration.engine_harness import assert_invariants, wait_final

pytestmark = pytest.mark.faults

KILLED_POOL = "raydium:SOL-USDC"


def test_a_killed_pool_is_routed_around_and_comes_back_with_its_state_from_postgresql(fault_engine, servers):
    settings, actors = fault_engine
    earlier = set(orders_in_db(settings.database_url))
    pool = actors.pools[KILLED_POOL]
    first_pid = pid_of(pool)
    with deadline(60), Flow(settings, SOL_USDC, rate_per_s=12, max_orders=60, max_s=6) as flow:
        flow.wait_accepted(8)
        for _ in range(2):  # twice, mid-flow: quotes and swaps in flight at the kill
            ray.kill(pool, no_restart=False)
            time.sleep(1.5)
        result = flow.join()
    assert result.rejected == [] and result.errors == []
    statuses = wait_final_or_explain(settings, result.accepted, timeout_s=30)
    # Routed to the other SOL/USDC venue or retried after the restart: every one filled.
    assert set(statuses.values()) == {"confirmed"}, error_codes(settings.database_url, result.accepted)
    assert pid_of(pool) != first_pid, "the pool actor was not restarted"
    assert set(orders_in_db(settings.database_url)) - earlier == set(result.accepted)
    assert_invariants(settings, actors, result.accepted)

    # Quiet now: the state a restarted pool rebuilds from PostgreSQL is exactly the state it had.
    before_state = ray.get(pool.snapshot.remote())
    before_reserves = ray.get(pool.reserves.remote())
    kill_and_wait_restart(pool)
    assert ray.get(pool.snapshot.remote()) == before_state
    assert ray.get(pool.reserves.remote()) == before_reserves


def test_a_killed_router_and_a_killed_dispatcher_come_back_and_every_order_is_filled(fault_engine):
    """The router: its orders in flight are retried. The dispatcher: restarted by Ray, it
    starts dispatching again by itself, with nobody calling it (nothing here does until
    every order is final).

    It used to stall (~1 run in 6): the restarted dispatcher queued a call to its own
    ``start`` from its constructor, and when Ray still reported the actor RESTARTING that
    call failed ("The actor is restarting", no retries), so the loop never ran and its
    predecessor's deliveries stayed pending for good. Here the step that failed by chance
    is taken away for certain: no call reaches the restarted dispatcher at all."""
    settings, actors = fault_engine
    earlier = set(orders_in_db(settings.database_url))
    router_pid, dispatcher_pid = pid_of(actors.router), pid_of(actors.dispatcher)
    with deadline(90), Flow(settings, rate_per_s=12, max_orders=90, max_s=9) as flow:
        flow.wait_accepted(8)
        ray.kill(actors.router, no_restart=False)
        time.sleep(1.5)
        ray.kill(actors.router, no_restart=False)
        time.sleep(1.5)
        ray.kill(actors.dispatcher, no_restart=False)  # deliveries in flight; nobody calls it again
        result = flow.join()
    assert result.rejected == [] and result.errors == []
    statuses = wait_final_or_explain(settings, result.accepted, timeout_s=30)
    assert set(statuses.values()) == {"confirmed"}, error_codes(settings.database_url, result.accepted)
    assert pid_of(actors.router) != router_pid and pid_of(actors.dispatcher) != dispatcher_pid
    assert set(orders_in_db(settings.database_url)) - earlier == set(result.accepted)
    assert_invariants(settings, actors, result.accepted)


def test_a_redis_restart_loses_no_accepted_order_and_the_engine_reconnects_by_itself(fault_engine, servers):
    if servers.redis is None:
        pytest.skip("REDIS_URL given: the tests do not restart a server they did not start")
    settings, actors = fault_engine
    earlier = set(orders_in_db(settings.database_url))
    with deadline(90), Flow(settings, rate_per_s=12, max_orders=80, max_s=9) as flow:
        flow.wait_accepted(8)
        servers.redis.restart()  # a quick restart: the clients' retries ride it out
        time.sleep(2.0)
        servers.redis.restart(downtime_s=3.0)  # longer than the retries: calls fail meanwhile
        result = flow.join()
    # The API accepts while Redis is away (the order is in PostgreSQL; the sweep queues it).
    assert result.errors == []
    assert all(status == 503 for status, _, _ in result.rejected), result.rejected
    statuses = wait_final_or_explain(settings, result.accepted, timeout_s=30)
    assert set(statuses.values()) == {"confirmed"}, error_codes(settings.database_url, result.accepted)
    # Nothing stored that was not accepted, nothing accepted that was not stored.
    assert set(orders_in_db(settings.database_url)) - earlier == set(result.accepted)
    assert_invariants(settings, actors, result.accepted)
    # and the engine kept going on its own: a new order is filled promptly
    with Flow(settings, SOL_USDC[:1], max_orders=1, max_s=5) as after:
        accepted = after.join().accepted
    assert wait_final(settings, accepted, timeout_s=20) == {accepted[0]: "confirmed"}


def test_a_delivery_whose_reply_was_lost_is_reclaimed(fault_engine):
    """Redis handed an order to the dispatcher, then went away before the reply
    reached it: the message is pending for the dispatcher's consumer, which
    never saw it. The sweep used to count it as queued, and the order waited
    for the next engine restart; now it is reclaimed and filled."""
    import asyncio

    import redis

    from actors.dispatcher import CONSUMER
    from storage.db import open_pool
    from storage.orders import NewOrder, OrderStore

    settings, actors = fault_engine

    async def create() -> str:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            record, _ = await OrderStore(pool).create_order(
                NewOrder(token_in="SOL", token_out="USDC", mint_in="So11111111111111111111111111111111111111112",
                         mint_out="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", amount_in=10**9,
                         amount_in_decimal="1", slippage_bps=100)
            )  # fmt: skip
            return record.id
        finally:
            await pool.close()

    order_id = asyncio.run(create())
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with client.pipeline(transaction=True) as pipe:  # added and delivered before the dispatcher can look
            pipe.xadd("orders:queue", {"order_id": order_id})
            pipe.xreadgroup("executors", CONSUMER, {"orders:queue": ">"}, count=1)
            _, delivered = pipe.execute()
        assert delivered and delivered[0][1][0][1][b"order_id"].decode() == order_id
    finally:
        client.close()
    assert wait_final_or_explain(settings, [order_id], timeout_s=20) == {order_id: "confirmed"}
    assert_invariants(settings, actors, [order_id])


def test_a_pool_whose_reload_failed_tries_again_on_the_next_call(fault_engine):
    """A reload that fails (PostgreSQL still away once the pool's connection
    timeout is spent) used to stick: every later call re-raised the same error
    until the actor was restarted. The next call must load again."""
    settings, actors = fault_engine

    def fail_next_reload(actor_self) -> None:  # runs in the pool actor (pickled by value)
        """Forget the state, as after a failed write; the next reload meets PostgreSQL down, once."""
        import psycopg

        trades = actor_self._trades
        real = trades.latest

        async def down(pool_id):
            trades.latest = real
            raise psycopg.OperationalError("the database system is shutting down")

        trades.latest = down
        actor_self._forget_state()

    pool = actors.pools["meteora:SOL-USDC"]
    before = ray.get(pool.snapshot.remote())
    ray.get(pool.__ray_call__.remote(fail_next_reload))
    with pytest.raises(ray.exceptions.RayTaskError, match="shutting down"):
        ray.get(pool.snapshot.remote())
    assert ray.get(pool.snapshot.remote(), timeout=30) == before
    assert_invariants(settings, actors, [])


def test_a_hold_that_lands_after_its_caller_gave_up_does_not_keep_the_pool(fault_engine):
    """An atomic route holds its pools; a hold that waited too long (its executor
    timed out) used to take the pool anyway and keep it locked for the whole
    lease, for nobody: every swap behind it waited, more holds timed out, and
    orders failed POOL_UNAVAILABLE in a cascade (seen in a chaos run)."""
    settings, actors = fault_engine
    pool = actors.pools["raydium:BONK-SOL"]
    assert isinstance(ray.get(pool.hold.remote("order-a", 30.0, time.time() + 5)), HeldPool)
    late = pool.hold.remote("order-b", 30.0, time.time() + 0.3)  # queued behind order-a
    ready, _ = ray.wait([late], timeout=0.6)
    assert not ready  # ...and its caller stops waiting
    assert ray.get(pool.release.remote("order-a"))
    assert ray.get(late, timeout=10).code == "LEASE_EXPIRED"  # got it too late: let it go
    # the pool is free now: a market trade goes through at once (not after order-b's 30 s lease)
    assert ray.get(pool.apply_flow.remote("noise", "SOL", 10**6), timeout=5) is not None
    assert_invariants(settings, actors, [])


def test_the_books_are_checked_against_a_pool_only_once_its_trade_is_written(fault_engine):
    """The reserves mismatch seen after the stall was the check's: an order left over by the
    stalled test was still executing when the check read the recorded trades (without it),
    then the live reserves (applied in memory), then the last recorded state (committed by
    then). Here a trade is held in the middle of its write, for certain, while the books are
    checked: the check reads a pool only once nothing is being written to it."""
    settings, actors = fault_engine

    def slow_next_write(actor_self) -> None:  # runs in the pool actor (nested: pickled by value)
        """The pool's next trade write waits 2 s before it reaches PostgreSQL."""
        import asyncio

        trades = actor_self._trades
        real = trades.record_trade

        async def slow(pool_id, **trade):
            trades.record_trade = real
            await asyncio.sleep(2.0)
            return await real(pool_id, **trade)

        trades.record_trade = slow

    pool = actors.pools["meteora:USDC-USDT"]
    before = ray.get(pool.reserves.remote())
    ray.get(pool.__ray_call__.remote(slow_next_write))
    trade = pool.apply_flow.remote("noise", "USDC", 10**6)
    end = time.monotonic() + 10
    while ray.get(pool.reserves.remote()) == before:  # applied in memory, not yet in PostgreSQL
        assert time.monotonic() < end, "the trade was never applied"
        time.sleep(0.02)
    assert_invariants(settings, actors, [])
    assert ray.get(trade) is not None


def crash(actors, namespace: str, timeout_s: float = 30.0) -> None:
    """Kill every actor now (no restart), and wait until their names are free again."""
    for handle in actors.all():
        ray.kill(handle, no_restart=True)
    names = [n["name"] for n in ray.util.list_named_actors(all_namespaces=True) if n["namespace"] == namespace]
    end = time.monotonic() + timeout_s
    while names:
        assert time.monotonic() < end, f"actors still named after the kill: {names}"
        time.sleep(0.1)
        alive = {n["name"] for n in ray.util.list_named_actors(all_namespaces=True) if n["namespace"] == namespace}
        names = [n for n in names if n in alive]


def test_the_engine_killed_outright_and_started_again_finishes_every_accepted_order(fault_engine):
    """Every actor killed at once, as a crash would (no dispatcher stop, no clean exit), with
    orders queued and in flight and more arriving through the API while no engine runs.
    (tests/integration/test_engine_crashes.py stops the engine the orderly way with a fixed
    batch queued.) Last in this module: it replaces the module's engine."""
    settings, actors = fault_engine
    earlier = set(orders_in_db(settings.database_url))
    with deadline(120), Flow(settings, rate_per_s=10, max_orders=80, max_s=8, workers=2) as flow:
        flow.wait_accepted(15)
        crash(actors, settings.ray.namespace)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            (unfinished,) = conn.execute(
                "SELECT count(*) FROM orders WHERE status NOT IN ('confirmed', 'failed')"
            ).fetchone()
        assert unfinished > 0, "nothing was queued or in flight at the crash"
        accepted_at_crash = len(flow.result.accepted)
        time.sleep(1.5)  # no engine: the API goes on accepting (stored and queued)
        assert len(flow.result.accepted) > accepted_at_crash
        restarted = start_engine_actors(settings)
        actors.__dict__.update(restarted.__dict__)  # the module fixture stops the new ones
        result = flow.join()
    assert result.rejected == [] and result.errors == []
    statuses = wait_final_or_explain(settings, result.accepted, timeout_s=60)
    assert set(statuses.values()) == {"confirmed"}, error_codes(settings.database_url, result.accepted)
    assert set(orders_in_db(settings.database_url)) - earlier == set(result.accepted)
    assert_invariants(settings, actors, result.accepted)
