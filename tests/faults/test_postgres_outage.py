"""PostgreSQL stopped for a while under a flow of orders (a private server: the session's is shared)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from localservers import LocalPostgres
from tests.faults.conftest import (
    Flow,
    deadline,
    error_codes,
    fault_settings,
    orders_in_db,
    wait_final_or_explain,
)
from tests.integration.engine_harness import assert_invariants, running_engine

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[LocalPostgres]:
    root = Path(tempfile.mkdtemp(prefix="dexengine-pgfault-"))
    server = LocalPostgres(root / "postgres", durable=False)
    try:
        url = server.start()

        async def migrate() -> None:
            from storage.schema import apply_schema

            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await apply_schema(conn)

        asyncio.run(migrate())
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_down_is_a_clear_503_with_nothing_half_stored_and_the_engine_recovers(
    private_postgres: LocalPostgres, redis_url: str, ray_session: None
) -> None:
    url = private_postgres.url_for()
    settings = fault_settings(url, redis_url, dispatch={"executors": 6})
    with running_engine(settings) as actors, deadline(120):
        with Flow(settings, rate_per_s=10, max_orders=120, max_s=13, workers=4, request_timeout_s=15) as flow:
            flow.wait_accepted(10)
            accepted_before = len(flow.result.accepted)
            port = private_postgres.port
            # Down longer than the API waits for a connection (5 s): requests then get their 503.
            private_postgres.restart(downtime_s=6.0)
            assert private_postgres.port == port
            result = flow.join()
        assert result.errors == []
        # New orders met a 503 that says what happened, and that nothing was stored...
        assert result.rejected, "no request saw PostgreSQL down"
        for status, code, message in result.rejected:
            assert (status, code) == (503, "DATABASE_UNAVAILABLE"), (status, code, message)
            assert "PostgreSQL is unavailable; nothing was stored" in message
        # ...and it was not: PostgreSQL holds exactly the accepted orders, each with its first event.
        assert set(orders_in_db(url)) == set(result.accepted)
        with psycopg.connect(url, autocommit=True) as conn:
            headless = conn.execute(
                "SELECT count(*) FROM orders o WHERE NOT EXISTS"
                " (SELECT 1 FROM order_status_history h WHERE h.order_id = o.id AND h.seq = 1)"
            ).fetchone()[0]
        assert headless == 0
        # Orders were accepted again once it was back, and every accepted one was filled.
        assert len(result.accepted) > accepted_before
        statuses = wait_final_or_explain(settings, result.accepted, timeout_s=60)
        assert set(statuses.values()) == {"confirmed"}, error_codes(url, result.accepted)
        assert_invariants(settings, actors, result.accepted)
        # The engine recovered by itself: a new order goes through at once.
        began = time.monotonic()
        with Flow(settings, max_orders=3, max_s=10) as after:
            accepted = after.join().accepted
        assert len(accepted) == 3
        assert set(wait_final_or_explain(settings, accepted, timeout_s=20).values()) == {"confirmed"}
        assert time.monotonic() - began < 20
