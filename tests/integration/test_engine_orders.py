"""Orders through the whole engine: routing, two hops, liquidity, redelivery. Real Ray, PostgreSQL and Redis."""

from __future__ import annotations

import time

import pytest
import ray

from engine.plans import Fill, RunOutcome, SwapOrder
from tests.integration.engine_harness import (
    MIXED,
    assert_invariants,
    base_settings,
    failures,
    history,
    run,
    shared_engine,
    submit,
    wait_final,
)

pytestmark = pytest.mark.integration


ENGINE_GROUP = "plain"  # shares its engine with test_api_engine: its books are not empty


@pytest.fixture(scope="module")
def fast_engine(database_url, redis_url, ray_session):
    return shared_engine(base_settings(database_url, redis_url))


def test_orders_are_routed_filled_and_every_step_recorded(fast_engine):
    settings, actors = fast_engine
    ids = run(submit(settings, MIXED * 5))
    wait_final(settings, ids)
    assert failures(settings, ids) == {}
    assert_invariants(settings, actors, ids)
    steps = [r["status"] for r in history(settings, ids[0])]
    assert steps == ["pending", "routing", "building", "submitted", "confirmed"]
    routing = history(settings, ids[0])[1]["details"]
    venues = {q["poolId"] for q in routing["quotes"]}
    assert {"raydium:SOL-USDC", "meteora:SOL-USDC"} <= venues
    best = max(int(q["amountOut"]) for q in routing["quotes"] if "amountOut" in q)
    assert int(routing["chosen"]["amountOut"]) >= best
    confirmed = history(settings, ids[0])[-1]["details"]
    assert confirmed["txSignature"] and float(confirmed["amountOut"]) > 0


def test_a_pair_without_a_direct_pool_goes_through_two_hops(fast_engine):
    settings, actors = fast_engine
    (order_id,) = run(submit(settings, [("BONK", "USDC", "20000000")]))
    assert wait_final(settings, [order_id]) == {order_id: "confirmed"}
    building = history(settings, order_id)[2]["details"]
    assert building["route"]["kind"] == "two_hop"
    assert [leg["tokenOut"] for leg in building["route"]["legs"]] == ["SOL", "USDC"]
    assert_invariants(settings, actors, [order_id])


def test_an_order_larger_than_the_liquidity_fails_at_once(fast_engine):
    settings, actors = fast_engine
    (order_id,) = run(submit(settings, [("SOL", "USDC", "100000")]))
    assert wait_final(settings, [order_id]) == {order_id: "failed"}
    rows = history(settings, order_id)
    assert [r["status"] for r in rows] == ["pending", "routing", "failed"]
    assert rows[1]["details"]["error"]["code"] == "INSUFFICIENT_LIQUIDITY"
    assert len(rows[1]["details"]["quotes"]) >= 2  # what the router saw is shown
    assert rows[-1]["details"]["error"]["code"] == "INSUFFICIENT_LIQUIDITY"
    assert_invariants(settings, actors, [order_id])


def test_a_redelivered_order_resumes_and_never_fills_twice(fast_engine):
    settings, actors = fast_engine
    (order_id,) = run(submit(settings, [("SOL", "USDC", "2")]))
    assert wait_final(settings, [order_id]) == {order_id: "confirmed"}
    # The same order delivered again (as after a crash) to another executor:
    outcome = ray.get(actors.executors[-1].run.remote(order_id, time.time()))
    assert outcome == RunOutcome("confirmed")
    # ...and the same swap redelivered to the pool returns the first fill.
    rows = history(settings, order_id)
    route_pool = rows[2]["details"]["route"]["legs"][0]["poolId"]
    pool = actors.pools[route_pool]
    reserves = ray.get(pool.settled_reserves.remote())
    again = ray.get(pool.swap.remote(SwapOrder(order_id, 0, "SOL", 2 * 10**9, 0, time.time() + 5)))
    assert isinstance(again, Fill) and again.existing is True
    # ...also when the pool would refuse it now: past its expiry, or a minimum out no state pays
    late = ray.get(pool.swap.remote(SwapOrder(order_id, 0, "SOL", 2 * 10**9, 0, time.time() - 1)))
    greedy = ray.get(pool.swap.remote(SwapOrder(order_id, 0, "SOL", 2 * 10**9, 10**30, time.time() + 5)))
    assert all(isinstance(f, Fill) and f.existing and f.amount_out == again.amount_out for f in (late, greedy))
    assert ray.get(pool.settled_reserves.remote()) == reserves  # the re-sent swaps moved nothing
    assert len(rows) == len(history(settings, order_id))
    assert_invariants(settings, actors, [order_id])
