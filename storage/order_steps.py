"""The one statement that commits an order's status steps: the row moved, a history row per step."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql

from engine.records import StatusStep
from sim.orders import OrderStatus
from storage._codec import jsonb


def advance_statement(oid: uuid.UUID, steps: Sequence[StatusStep], attempt: int, allowed: frozenset[OrderStatus],
                      expected_seq: int | None, columns: Mapping[str, Any]) -> tuple[sql.Composed, list[Any]]:  # fmt: skip
    """One statement, so one round trip and atomic without BEGIN/COMMIT: the row moves to the last step
    (its seq on by the number of steps, ``columns`` set: the steps' result columns, adapted) and each
    step's history row is written with it, or nothing at all when the compare-and-set fails."""
    assignments: list[sql.Composable] = [sql.SQL("status = %s"), sql.SQL("seq = seq + %s"), sql.SQL("attempts = %s")]
    params: list[Any] = [str(steps[-1].to), len(steps), attempt]
    for name, value in columns.items():
        assignments.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        params.append(value)
    condition: sql.Composable = sql.SQL("id = %s AND status = ANY(%s)")
    params += [oid, sorted(str(s) for s in allowed)]
    if expected_seq is not None:
        condition = sql.SQL("{} AND seq = %s").format(condition)
        params.append(expected_seq)
    params += [len(steps), attempt]
    for i, step in enumerate(steps, start=1):
        params += [i, str(step.to), jsonb(dict(step.details))]
    rows = sql.SQL(", ").join(sql.SQL("(%s::int, %s::text, %s::jsonb)") for _ in steps)
    statement = sql.SQL(
        "WITH moved AS (UPDATE orders SET {} WHERE {} RETURNING id, seq) "
        "INSERT INTO order_status_history (order_id, seq, status, attempt, details) "
        "SELECT moved.id, moved.seq - %s + step.i, step.status, %s, step.details "
        "FROM moved, (VALUES {}) AS step (i, status, details) ORDER BY step.i "
        "RETURNING order_id, seq, status, attempt, details, created_at"
    ).format(sql.SQL(", ").join(assignments), condition, rows)
    return statement, params
