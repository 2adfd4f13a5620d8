"""Pools slower than the router's timeout are skipped, reported and retried. Real Ray, PostgreSQL and Redis."""

from __future__ import annotations


import pytest

from tests.integration.engine_harness import (
    assert_invariants,
    base_settings,
    history,
    run,
    running_engine,
    submit,
    wait_final,
)

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def slow_pools_engine(database_url, redis_url, ray_session):
    settings = base_settings(
        database_url,
        redis_url,
        dispatch={"executors": 2},
        latency={"quote_s": 0.5, "quote_jitter_s": 0, "execution_min_s": 0, "execution_max_s": 0},
        routing={"pool_timeout_s": 0.1},
    )
    with running_engine(settings) as actors:
        yield settings, actors


def test_pools_that_time_out_are_skipped_reported_and_retried(slow_pools_engine):
    settings, actors = slow_pools_engine
    (order_id,) = run(submit(settings, [("SOL", "USDC", "1")]))
    assert wait_final(settings, [order_id]) == {order_id: "failed"}
    rows = history(settings, order_id)
    assert rows[-1]["details"]["error"]["code"] == "POOLS_UNAVAILABLE"
    assert rows[-1]["attempt"] == 4
    skipped = rows[1]["details"]["skipped"]
    assert {s["error"] for s in skipped} == {"POOL_TIMEOUT"}
    assert_invariants(settings, actors, [order_id])
