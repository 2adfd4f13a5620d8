"""The books after the storm: every accepted order final and stored once, every
history gapless and legal, fills that fit the outcome, each pool's reserves ==
genesis + its recorded trades == its last recorded state, and every followed
order's WebSocket events == its recorded history."""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from typing import Any

from loadtest.chaos.engine import ChaosEngine
from loadtest.chaos.tally import Steps, Tally

FAILED_OF_ACCEPTED = "FROM orders WHERE status = 'failed' AND id = ANY(%s::uuid[])"
DOUBLE_FILLS = (
    "SELECT count(*) FROM (SELECT order_id, leg FROM pool_trades WHERE order_id IS NOT NULL"
    " GROUP BY order_id, leg HAVING count(*) > 1) d"
)
CONFIRMED_WITHOUT_FILL = (
    "SELECT count(*) FROM orders o WHERE o.status = 'confirmed'"
    " AND NOT EXISTS (SELECT 1 FROM pool_trades t WHERE t.order_id = o.id)"
)
FAILED_WITH_FILL = (
    "SELECT count(DISTINCT o.id) FROM orders o JOIN pool_trades t ON t.order_id = o.id"
    " WHERE o.status = 'failed' AND coalesce(o.error_code, '') <> 'PARTIAL_FILL'"
)


def check_books(engine: ChaosEngine, tally: Tally, drain_s: float) -> dict[str, Any]:
    """Wait until every accepted order is final, then count every broken invariant."""
    import psycopg

    accepted = set(tally.accepted)
    end = time.monotonic() + drain_s
    with psycopg.connect(engine.settings.database_url, autocommit=True) as conn:
        rows, unfinished = wait_until_final(conn, accepted, end)
        still_market(engine)
        result: dict[str, Any] = {"unfinished": unfinished, **order_books(conn, rows, accepted)}
        histories = read_histories(conn)
        result["bad_history"] = [
            order_id for order_id, (events, stamps) in histories.items()
            if not history_is_legal(events, stamps, rows.get(order_id))
        ]  # fmt: skip
        result["orders_without_history"] = len(set(rows) - set(histories))
        result["pools_off"] = pools_off_books(conn, engine)
        result["trades"] = conn.execute("SELECT kind, count(*) FROM pool_trades GROUP BY kind").fetchall()
    steps = {order_id: events for order_id, (events, _) in histories.items()}
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


def order_books(conn: Any, rows: dict[str, str], accepted: set[str]) -> dict[str, Any]:
    """Orders lost, stored without an answer, by outcome and reason; fills against outcomes."""
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
        "double_fills": conn.execute(DOUBLE_FILLS).fetchone()[0],
        "confirmed_without_fill": conn.execute(CONFIRMED_WITHOUT_FILL).fetchone()[0],
        "failed_with_fill": conn.execute(FAILED_WITH_FILL).fetchone()[0],
    }


def read_histories(conn: Any) -> dict[str, tuple[Steps, list[Any]]]:
    """Each order's recorded (seq, status) steps and their commit stamps."""
    histories: dict[str, tuple[Steps, list[Any]]] = defaultdict(lambda: ([], []))
    for order_id, seq, status, created in conn.execute(
        "SELECT order_id::text, seq, status, created_at FROM order_status_history ORDER BY order_id, seq"
    ):
        events, stamps = histories[order_id]
        events.append((seq, status))
        stamps.append(created)
    return dict(histories)


def history_is_legal(events: Steps, stamps: list[Any], stored_status: str | None) -> bool:
    """Gapless from 1, starting pending, legal steps, final at most once and last, in time
    order, ending where the order row says."""
    from sim.orders import OrderStatus, can_transition

    statuses = [OrderStatus(s) for _, s in events]
    return (
        [s for s, _ in events] == list(range(1, len(events) + 1))
        and statuses[0] == OrderStatus.PENDING
        and all(can_transition(a, b) for a, b in zip(statuses, statuses[1:], strict=False))
        and sum(s.is_final for s in statuses) <= 1
        and (not any(s.is_final for s in statuses) or statuses[-1].is_final)
        and stamps == sorted(stamps)
        and (stored_status is None or stored_status == events[-1][1])
    )


def pools_off_books(conn: Any, engine: ChaosEngine) -> dict[str, dict[str, Any]]:
    """Pools whose actor, genesis + recorded trades, and last recorded state disagree."""
    from sim.pools import restore_pool

    pools_off = {}
    for pool_id, handle in engine.actors.pools.items():
        (genesis,) = conn.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,)).fetchone()
        expected = dict(restore_pool(genesis).reserves())
        for token_in, amount_in, token_out, amount_out in conn.execute(
            "SELECT token_in, amount_in, token_out, amount_out FROM pool_trades WHERE pool_id = %s", (pool_id,)
        ):
            expected[token_in] += int(amount_in)
            expected[token_out] -= int(amount_out)
        last = conn.execute(
            "SELECT state_after FROM pool_trades WHERE pool_id = %s ORDER BY seq DESC LIMIT 1", (pool_id,)
        ).fetchone()
        recorded = restore_pool(last[0] if last else genesis).reserves()
        actual = call_until_back(handle.reserves.remote)
        if not actual == expected == recorded:
            pools_off[pool_id] = {"actor": actual, "genesis+trades": expected, "recorded": recorded}
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
