"""The books after the storm: the audit of PostgreSQL and Redis (``engine.audit``:
histories gapless and legal, each order ended once, fills that fit the outcome,
each pool's genesis + its trades == its last recorded state), and what only the
run can tell: every accepted order stored and final, each pool actor holding
what its books say, every followed order's WebSocket events == its recorded
history."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from typing import Any

from engine.audit import AuditReport
from loadtest.chaos.engine import ChaosEngine
from loadtest.chaos.tally import Steps, Tally

FAILED_OF_ACCEPTED = "FROM orders WHERE status = 'failed' AND id = ANY(%s::uuid[])"


def check_books(engine: ChaosEngine, tally: Tally, drain_s: float) -> dict[str, Any]:
    """Wait until every accepted order is final, audit the books (``dexengine audit``), then
    check what only this run knows: the orders it was told were accepted, the pool actors,
    the WebSocket streams it followed."""
    import psycopg

    from storage.audit import audit_books

    accepted = set(tally.accepted)
    end = time.monotonic() + drain_s
    settings = engine.settings
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows, unfinished = wait_until_final(conn, accepted, end)
        still_market(engine)
        result: dict[str, Any] = {"unfinished": unfinished, **order_outcomes(conn, rows, accepted)}
        result["trades"] = conn.execute("SELECT kind, count(*) FROM pool_trades GROUP BY kind").fetchall()
        steps = read_steps(conn, list(tally.watched))
    result["audit"] = audit = asyncio.run(audit_books(settings.database_url, settings.redis_url))
    result["pools_off"] = pools_off_books(engine, audit)
    result["ws_mismatch"] = websocket_mismatches(tally, steps)
    result["ws_detail"] = {i: {"ws": tally.watched[i], "history": steps.get(i)} for i in result["ws_mismatch"][:3]}
    return result


def wait_until_final(conn: Any, accepted: set[str], end: float) -> tuple[dict[str, str], list[str]]:
    """Every order's status once all are final (or at ``end``), and the accepted ones still not."""
    from sim.orders import OrderStatus

    while True:
        rows = dict(conn.execute("SELECT id::text, status FROM orders").fetchall())
        unfinished = [i for i in accepted if i not in rows or not OrderStatus(rows[i]).is_final]
        # orders stored without a 2xx run too: wait for them, they trade with the pools
        running = [i for i, status in rows.items() if not OrderStatus(status).is_final]
        if (not unfinished and not running) or time.monotonic() > end:
            return rows, unfinished
        time.sleep(0.5)


def still_market(engine: ChaosEngine) -> None:
    """The market must be still while the pools are compared with PostgreSQL."""
    import ray

    with contextlib.suppress(Exception):
        ray.get(engine.actors.market.stop.remote(), timeout=30)
    time.sleep(1.0)


def order_outcomes(conn: Any, rows: dict[str, str], accepted: set[str]) -> dict[str, Any]:
    """Orders lost, stored without an answer, by outcome and reason."""
    ids = (list(accepted),)
    return {
        "lost": [i for i in accepted if i not in rows],
        "stored_without_2xx": len(set(rows) - accepted),
        "statuses": Counter(rows[i] for i in accepted if i in rows),
        "errors": Counter(code for (code,) in conn.execute(f"SELECT error_code {FAILED_OF_ACCEPTED}", ids)),
        "failure_messages": Counter(
            f"{code}: {(message or '')[:100]}"
            for code, message in conn.execute(f"SELECT error_code, error_message {FAILED_OF_ACCEPTED}", ids)
        ),
    }


def read_steps(conn: Any, order_ids: list[str]) -> dict[str, Steps]:
    """The recorded (seq, status) steps of these orders."""
    steps: dict[str, Steps] = defaultdict(list)
    for order_id, seq, status in conn.execute(
        "SELECT order_id::text, seq, status FROM order_status_history WHERE order_id = ANY(%s::uuid[])"
        " ORDER BY order_id, seq",
        (order_ids,),
    ):
        steps[order_id].append((seq, status))
    return dict(steps)


def pools_off_books(engine: ChaosEngine, audit: AuditReport) -> dict[str, dict[str, Any]]:
    """Pools whose actor does not hold what the books say (the books' own sums are the audit's)."""
    pools_off = {}
    for pool_id, handle in engine.actors.pools.items():
        actual = call_until_back(handle.settled_reserves.remote)
        if actual != audit.pool_reserves.get(pool_id):
            pools_off[pool_id] = {"actor": actual, "books": audit.pool_reserves.get(pool_id)}
    return pools_off


def websocket_mismatches(tally: Tally, histories: dict[str, Steps]) -> list[str]:
    """Followed orders whose WebSocket events are not their recorded history."""
    return [
        order_id for order_id, seen in tally.watched.items()
        if order_id not in tally.ws_incomplete and seen != histories.get(order_id)
    ]  # fmt: skip


def call_until_back(call: Any, timeout_s: float = 60.0) -> Any:
    """``ray.get(call())``, called again while the actor is being restarted."""
    import ray

    end = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get(call(), timeout=max(1.0, end - time.monotonic()))
        except ray.exceptions.RayActorError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
