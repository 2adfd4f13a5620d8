"""Slippage from real pool moves: retries with backoff, then failure. Real Ray, PostgreSQL and Redis."""

from __future__ import annotations


import psycopg
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
def hostile_engine(database_url, redis_url, ray_session):
    """Every swap is front-run by a real trade that moves its pool 3 %."""
    settings = base_settings(
        database_url,
        redis_url,
        dispatch={"executors": 4},
        faults={"front_run_bps": 300, "front_run_probability": 1.0},
        market={"enabled": True, "tick_s": 0.05},
    )
    with running_engine(settings) as actors:
        yield settings, actors


def test_slippage_from_real_pool_moves_is_retried_with_backoff_then_fails(hostile_engine):
    settings, actors = hostile_engine
    # same direction: a front-run of one never undoes the front-run of the other
    ids = run(submit(settings, [("SOL", "USDC", "1"), ("SOL", "USDC", "2")], slippage_bps=50))
    assert set(wait_final(settings, ids).values()) == {"failed"}
    for order_id in ids:
        rows = history(settings, order_id)
        retries = [r for r in rows if r["status"] == "pending" and r["seq"] > 1]
        assert [r["details"]["retryInS"] for r in retries] == [0.05, 0.1, 0.2]
        assert all(r["details"]["error"]["code"] == "SLIPPAGE_EXCEEDED" for r in retries)
        assert rows[-1]["details"]["error"]["code"] == "SLIPPAGE_EXCEEDED"
        assert rows[-1]["attempt"] == 4
        gaps = [b["created_at"] - a["created_at"] for a, b in zip(retries, rows[rows.index(retries[0]) + 1 :])]
        assert all(g.total_seconds() >= 0.04 for g in gaps[:1])
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        (front_runs,) = conn.execute("SELECT count(*) FROM pool_trades WHERE kind = 'noise'").fetchone()
    assert front_runs >= 8  # the moves were real trades, recorded like any other
    assert_invariants(settings, actors, ids)


def test_a_loose_tolerance_absorbs_the_same_moves(hostile_engine):
    settings, actors = hostile_engine
    ids = run(submit(settings, [("SOL", "USDC", "1")], slippage_bps=1000))
    assert set(wait_final(settings, ids).values()) == {"confirmed"}
    assert_invariants(settings, actors, ids)
