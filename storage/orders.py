"""Orders and their status history in PostgreSQL.

Every status change is one transaction: a compare-and-set ``UPDATE orders``
(the order must be in an allowed predecessor state, so two writers can never
both advance it) that bumps ``seq``, and the ``order_status_history`` row with
that ``seq``. Sequence numbers are therefore gapless per order, starting at 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Collection, Mapping, Sequence

from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from sim.orders import ACTIVE_STATUSES, InvalidTransition, OrderStatus, can_transition, predecessors
from engine.records import NewOrder, OldestOpenOrder, OrderRecord, StatusEvent, StatusStep, parse_uuid, utc
from storage._codec import jsonb, to_int
from storage.order_steps import advance_statement
from engine.errors import (
    DuplicateOrderId,
    IdempotencyConflict,
    InvalidCursor,
    OrderNotFound,
    StaleTransition,
)

MAX_PAGE = 500


# --------------------------------------------------------------------------- #
# row mapping
# --------------------------------------------------------------------------- #

_ORDER_COLUMNS = sql.SQL(
    "id, type, token_in, token_out, mint_in, mint_out, amount_in, amount_in_decimal, slippage_bps, "
    "status, seq, attempts, dex, pool_id, route, amount_out, executed_price, fee, price_impact_bps, "
    "tx_signature, error_code, error_message, idempotency_key, request_hash, client_id, created_at, updated_at, "
    "trigger, expires_at, owner, tx_options"
)
_ACTIVE = sorted(str(s) for s in ACTIVE_STATUSES)


def _order_from_row(row: Mapping[str, Any]) -> OrderRecord:
    return OrderRecord(
        id=str(row["id"]),
        type=row["type"],
        token_in=row["token_in"],
        token_out=row["token_out"],
        mint_in=row["mint_in"],
        mint_out=row["mint_out"],
        amount_in=int(row["amount_in"]),
        amount_in_decimal=row["amount_in_decimal"],
        slippage_bps=row["slippage_bps"],
        status=OrderStatus(row["status"]),
        seq=row["seq"],
        attempts=row["attempts"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        dex=row["dex"],
        pool_id=row["pool_id"],
        route=row["route"],
        amount_out=to_int(row["amount_out"]),
        executed_price=row["executed_price"],
        fee=to_int(row["fee"]),
        price_impact_bps=row["price_impact_bps"],
        tx_signature=row["tx_signature"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        client_id=row["client_id"],
        trigger=row["trigger"],
        expires_at=None if row["expires_at"] is None else utc(row["expires_at"]),
        owner=row["owner"],
        tx_options=row["tx_options"],
    )


def _event_from_row(row: Mapping[str, Any]) -> StatusEvent:
    return StatusEvent(
        order_id=str(row["order_id"]),
        seq=row["seq"],
        status=OrderStatus(row["status"]),
        attempt=row["attempt"],
        details=dict(row["details"] or {}),
        timestamp=utc(row["created_at"]),
    )


# --------------------------------------------------------------------------- #
# fields a transition may set
# --------------------------------------------------------------------------- #


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of base units")
    return value


def _as_decimal(name: str, value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not result.is_finite():
        raise ValueError(f"{name} must be finite")
    return result


def _as_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


_FIELD_ADAPTERS: dict[str, Any] = {
    "dex": _as_text,
    "pool_id": _as_text,
    "route": lambda _name, value: jsonb(value),
    "amount_out": _as_int,
    "executed_price": _as_decimal,
    "fee": _as_int,
    "price_impact_bps": lambda name, value: float(_as_decimal(name, value)),
    "tx_signature": _as_text,
    "error_code": _as_text,
    "error_message": _as_text,
    "trigger": lambda _name, value: jsonb(value),
    # A sniper learns the token it waited for when its pool opens.
    "token_out": _as_text,
    "mint_out": _as_text,
}
TRANSITION_FIELDS = frozenset(_FIELD_ADAPTERS)


def _adapt_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    if not fields:
        return {}
    unknown = set(fields) - TRANSITION_FIELDS
    if unknown:
        raise ValueError(f"fields not settable by a transition: {sorted(unknown)}")
    return {
        name: None if value is None else _FIELD_ADAPTERS[name](name, value) for name, value in fields.items()
    }


def _allowed_from(
    to: OrderStatus, expected: OrderStatus | Collection[OrderStatus] | None
) -> frozenset[OrderStatus]:
    if expected is None:
        return predecessors(to)
    wanted = {OrderStatus(expected)} if isinstance(expected, str) else {OrderStatus(s) for s in expected}
    for status in wanted:
        if not can_transition(status, to):
            raise InvalidTransition(status, to)
    return frozenset(wanted)


# --------------------------------------------------------------------------- #
# cursor over (created_at, id), newest first
# --------------------------------------------------------------------------- #


def _encode_cursor(record: OrderRecord) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_text, id_text = json.loads(raw)
        created_at = datetime.fromisoformat(created_text)
        order_id = uuid.UUID(id_text)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidCursor("invalid cursor") from None
    if created_at.tzinfo is None:
        raise InvalidCursor("invalid cursor")
    return created_at, order_id


# --------------------------------------------------------------------------- #
# the store
# --------------------------------------------------------------------------- #


class OrderStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    # -- create ---------------------------------------------------------------
    async def create_order(
        self,
        new: NewOrder,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        client_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> tuple[OrderRecord, StatusEvent | None]:
        """Store a new ``pending`` order and its first history row (seq 1, attempt 1).

        With an ``idempotency_key`` already used: the same ``request_hash``
        returns ``(existing order, None)``; another hash raises
        :class:`IdempotencyConflict`.
        """
        order_id = str(parse_uuid(new.order_id)) if new.order_id else str(uuid.uuid4())
        first_details = dict(details) if details is not None else {"queued": True}
        insert = sql.SQL(
            "INSERT INTO orders (id, type, token_in, token_out, mint_in, mint_out, amount_in, amount_in_decimal, "
            "slippage_bps, status, seq, attempts, idempotency_key, request_hash, client_id, trigger, expires_at, owner, "
            "tx_options) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 1, 1, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT ((coalesce(owner, '')), idempotency_key) DO NOTHING RETURNING {}"
        ).format(_ORDER_COLUMNS)
        params = (
            order_id, new.type, new.token_in, new.token_out, new.mint_in, new.mint_out, new.amount_in,
            new.amount_in_decimal, new.slippage_bps, idempotency_key, request_hash, client_id,
            None if new.trigger is None else jsonb(new.trigger), new.expires_at, new.owner,
            None if new.tx_options is None else jsonb(new.tx_options),
        )  # fmt: skip
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            try:
                await cur.execute(insert, params)
            except errors.UniqueViolation:
                raise DuplicateOrderId(order_id) from None
            row = await cur.fetchone()
            if row is None:  # the key is taken (a concurrent insert has committed by now)
                assert idempotency_key is not None
                return await self._replay(conn, idempotency_key, request_hash, new.owner), None
            order = _order_from_row(row)
            await cur.execute(
                "INSERT INTO order_status_history (order_id, seq, status, attempt, details) "
                "VALUES (%s, 1, 'pending', 1, %s) RETURNING order_id, seq, status, attempt, details, created_at",
                (order_id, jsonb(first_details)),
            )
            history_row = await cur.fetchone()
            assert history_row is not None
            return order, _event_from_row(history_row)

    async def _replay(
        self, conn: AsyncConnection, key: str, request_hash: str | None, owner: str | None
    ) -> OrderRecord:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                sql.SQL("SELECT {} FROM orders WHERE idempotency_key = %s AND coalesce(owner, '') = %s").format(
                    _ORDER_COLUMNS
                ),
                (key, owner or ""),
            )
            row = await cur.fetchone()
        if row is None:  # pragma: no cover - the key cannot vanish: orders are never deleted
            raise IdempotencyConflict(key, "")
        existing = _order_from_row(row)
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(key, existing.id)
        return existing

    # -- transition -----------------------------------------------------------
    async def transition(
        self,
        order_id: str,
        to: OrderStatus,
        *,
        attempt: int,
        details: Mapping[str, Any] | None = None,
        expected: OrderStatus | Collection[OrderStatus] | None = None,
        fields: Mapping[str, Any] | None = None,
        expected_seq: int | None = None,
    ) -> StatusEvent:
        """Move the order to ``to`` if it is in an allowed state (compare-and-set).

        ``expected`` narrows the allowed current states (default: every
        predecessor of ``to``); ``expected_seq`` additionally requires the
        order not to have changed since the caller read it. ``fields`` sets
        result columns (see :data:`TRANSITION_FIELDS`). Raises
        :class:`StaleTransition` or :class:`OrderNotFound`.
        """
        to = OrderStatus(to)
        step = StatusStep(to, dict(details or {}), fields)
        (event,) = await self._advance(order_id, [step], attempt, _allowed_from(to, expected), expected_seq)
        return event

    async def advance(
        self, order_id: str, steps: Sequence[StatusStep], *, attempt: int, expected_seq: int | None = None
    ) -> list[StatusEvent]:
        """Several status changes of one order in one commit, each its own history row (consecutive seqs),
        as :meth:`transition` makes one: all or none. Each step must follow the one before it."""
        if not steps:
            raise ValueError("advance needs at least one step")
        steps = [replace(step, to=OrderStatus(step.to)) for step in steps]
        for before, after in zip(steps, steps[1:]):
            if not can_transition(before.to, after.to):
                raise InvalidTransition(before.to, after.to)
        return await self._advance(order_id, steps, attempt, predecessors(steps[0].to), expected_seq)

    async def _advance(self, order_id: str, steps: Sequence[StatusStep], attempt: int,
                       allowed: frozenset[OrderStatus], expected_seq: int | None) -> list[StatusEvent]:  # fmt: skip
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError("attempt must be a non-negative integer")
        oid = parse_uuid(order_id)
        if oid is None:
            raise OrderNotFound(order_id)
        columns: dict[str, Any] = {}
        for step in steps:  # a later step's value wins
            columns.update(_adapt_fields(step.fields))
        statement, params = advance_statement(oid, steps, attempt, allowed, expected_seq, columns)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(statement, params)
            rows = await cur.fetchall()
            if rows:
                return [_event_from_row(row) for row in sorted(rows, key=lambda row: row["seq"])]
            await cur.execute("SELECT status, seq FROM orders WHERE id = %s", (oid,))
            current = await cur.fetchone()
        if current is None:
            raise OrderNotFound(str(oid))
        raise StaleTransition(
            str(oid),
            current=OrderStatus(current["status"]),
            current_seq=current["seq"],
            target=steps[0].to,
            allowed=allowed,
            expected_seq=expected_seq,
        )

    # -- reads ----------------------------------------------------------------
    async def get_order(self, order_id: str) -> OrderRecord | None:
        oid = parse_uuid(order_id)
        if oid is None:
            return None
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT {} FROM orders WHERE id = %s").format(_ORDER_COLUMNS), (oid,))
            row = await cur.fetchone()
        return None if row is None else _order_from_row(row)

    async def history(self, order_id: str, after_seq: int = 0) -> list[StatusEvent]:
        """Status events with ``seq > after_seq``, oldest first."""
        oid = parse_uuid(order_id)
        if oid is None:
            return []
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT order_id, seq, status, attempt, details, created_at FROM order_status_history "
                "WHERE order_id = %s AND seq > %s ORDER BY seq",
                (oid, after_seq),
            )
            rows = await cur.fetchall()
        return [_event_from_row(row) for row in rows]

    async def list_orders(
        self,
        *,
        status: OrderStatus | str | Collection[OrderStatus | str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
        every_owner: bool = True,
    ) -> tuple[list[OrderRecord], str | None]:
        """Recent orders first; ``next_cursor`` is None on the last page. ``every_owner=False``: only
        ``owner``'s orders (None: the anonymous owner's)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE}")
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            conditions.append(sql.SQL("status = ANY(%s)"))
            params.append([str(OrderStatus(s)) for s in wanted])
        if not every_owner:
            conditions.append(sql.SQL("owner IS NOT DISTINCT FROM %s"))
            params.append(owner)
        if cursor is not None:
            created_at, last_id = _decode_cursor(cursor)
            conditions.append(sql.SQL("(created_at, id) < (%s, %s)"))
            params += [created_at, last_id]
        where = sql.SQL("WHERE {}").format(sql.SQL(" AND ").join(conditions)) if conditions else sql.SQL("")
        query = sql.SQL("SELECT {} FROM orders {} ORDER BY created_at DESC, id DESC LIMIT %s").format(
            _ORDER_COLUMNS, where
        )
        params.append(limit + 1)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchall()
        records = [_order_from_row(row) for row in rows[:limit]]
        next_cursor = _encode_cursor(records[-1]) if len(rows) > limit else None
        return records, next_cursor

    async def unfinished_orders(
        self, older_than_s: float = 0, *, limit: int | None = None
    ) -> list[OrderRecord]:
        """Orders the engine must run (neither final nor waiting for the market) whose last change
        is at least ``older_than_s`` old, oldest first."""
        query = sql.SQL(
            "SELECT {} FROM orders WHERE status = ANY(%s) "
            "AND updated_at <= clock_timestamp() - make_interval(secs => %s) ORDER BY created_at, id {}"
        ).format(_ORDER_COLUMNS, sql.SQL("LIMIT %s") if limit is not None else sql.SQL(""))
        params: list[Any] = [_ACTIVE, float(older_than_s)]
        if limit is not None:
            params.append(limit)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [_order_from_row(row) for row in rows]

    async def oldest_unfinished(self) -> OldestOpenOrder | None:
        """The order accepted first of those the engine must run (waiting ones wait by design),
        with its age and how long since it last changed."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id::text, status, extract(epoch FROM clock_timestamp() - created_at),"
                " extract(epoch FROM clock_timestamp() - updated_at) FROM orders"
                " WHERE status = ANY(%s) ORDER BY created_at, id LIMIT 1",
                (_ACTIVE,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        order_id, status, age_s, idle_s = row
        return OldestOpenOrder(order_id, status, max(0.0, float(age_s)), max(0.0, float(idle_s)))

    async def open_orders(self, *, after: str | None = None, batch: int = 1000) -> list[OrderRecord]:
        """Armed orders (``open``) in acceptance order, a page of ``batch`` after the order id ``after``."""
        conditions = [sql.SQL("status = 'open'")]
        params: list[Any] = []
        if after is not None:
            conditions.append(sql.SQL("(created_at, id) > (SELECT created_at, id FROM orders WHERE id = %s)"))
            params.append(parse_uuid(after))
        query = sql.SQL("SELECT {} FROM orders WHERE {} ORDER BY created_at, id LIMIT %s").format(
            _ORDER_COLUMNS, sql.SQL(" AND ").join(conditions)
        )
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, [*params, batch])
            return [_order_from_row(row) for row in await cur.fetchall()]

    async def open_order_ids(self) -> set[str]:
        """The ids of every armed order (``open``): what the trigger book reconciles against."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT id::text FROM orders WHERE status = 'open'")
            return {order_id for (order_id,) in await cur.fetchall()}

    async def record_trailing_highs(self, highs: Mapping[str, Mapping[str, Any]]) -> int:
        """Keep the trailing stops' high-water marks (order id -> ``{"highOut", "highPrice"}``), in one
        statement; only orders still open move. Returns how many rows moved."""
        if not highs:
            return 0
        ids = [parse_uuid(order_id) for order_id in highs]
        values = [jsonb(dict(high)) for high in highs.values()]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE orders o SET trigger = o.trigger || h.high FROM unnest(%s::uuid[], %s::jsonb[]) AS h(id, high) "
                "WHERE o.id = h.id AND o.status = 'open'",
                (ids, values),
            )
            return cur.rowcount

    async def count_by_status(self) -> dict[str, int]:
        """Every status with its count (zero included)."""
        counts = {str(s): 0 for s in OrderStatus}
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) FROM orders GROUP BY status")
            for status, count in await cur.fetchall():
                counts[status] = int(count)
        return counts
