"""Checking the books: what PostgreSQL and the queue say happened, against what must always hold.

* every order is final, or still progressing: one that has not changed for
  ``stale_after_s`` is ``stalled`` (and ``unqueued`` if nothing in the queue
  would ever run it again);
* its history counts from 1 without a gap, starts ``pending``, takes only legal
  steps, reaches at most one final status, is stamped in order, and ends where
  the order row says;
* it fills each leg at most once; a confirmed order has a fill, a failed one
  none (unless it failed ``PARTIAL_FILL``);
* each pool's trades are numbered from 1 without a gap, and its genesis plus
  its trades is exactly the state its last trade recorded;
* no delivery stays unacknowledged for ``stale_after_s``.

Pure: ``storage/audit.py`` reads the rows (in batches, in one snapshot) and
feeds them to a :class:`BookAudit`; :func:`audit_books` does it all at once
for rows already in memory.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sim.orders import ACTIVE_STATUSES, WAITING_STATUSES, OrderStatus, can_transition
from sim.pools import SimError, restore_pool

from engine.records import OldestOpenOrder, iso

STALE_AFTER_S = 300.0
PARTIAL_FILL = "PARTIAL_FILL"  # a multi-leg order that failed with some legs filled
Reserves = dict[str, int]


class ViolationKind(StrEnum):
    NO_HISTORY = "no_history"
    SEQ_GAP = "seq_gap"
    ILLEGAL_TRANSITION = "illegal_transition"
    FINAL_TWICE = "final_twice"
    OUT_OF_ORDER = "out_of_order"  # history stamps not in seq order
    ROW_OFF_HISTORY = "row_off_history"  # the order row is not where its history ends
    STALLED = "stalled"
    UNQUEUED = "unqueued"
    DOUBLE_FILL = "double_fill"
    CONFIRMED_WITHOUT_FILL = "confirmed_without_fill"
    FAILED_WITH_FILL = "failed_with_fill"
    POOL_WITHOUT_GENESIS = "pool_without_genesis"
    TRADE_SEQ_GAP = "trade_seq_gap"
    BAD_POOL_STATE = "bad_pool_state"  # a snapshot no pool kind can restore
    RESERVES_OFF = "reserves_off"
    STALE_DELIVERY = "stale_delivery"


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationKind
    subject: str  # an order id, a pool id, or a queue entry
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": str(self.kind), "subject": self.subject, "detail": self.detail}


# -- what the books hold ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    status: OrderStatus
    seq: int
    error_code: str | None
    created_at: datetime
    updated_at: datetime  # its last change
    expires_at: datetime | None = None  # an order that waits: when it stops waiting


@dataclass(frozen=True, slots=True)
class Step:
    """One ``order_status_history`` row."""

    seq: int
    status: OrderStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class Trade:
    """One ``pool_trades`` row, as much of it as the audit needs."""

    pool_id: str
    seq: int
    order_id: str | None  # None: a market trade
    leg: int
    token_in: str
    amount_in: int
    token_out: str
    amount_out: int
    state_after: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PoolLedger:
    """A pool's books, summed: where it started and what its trades add up to."""

    pool_id: str
    genesis: Mapping[str, Any] | None
    flows: Mapping[str, int]  # per token: paid into the pool minus paid out of it, over every trade
    trades: int
    last_seq: int  # 0 without trades
    last_state: Mapping[str, Any] | None  # ``state_after`` of the last trade; None without trades

    @classmethod
    def of(cls, pool_id: str, genesis: Mapping[str, Any] | None, trades: Iterable[Trade]) -> PoolLedger:
        flows: Counter[str] = Counter()
        last: Trade | None = None
        seqs: set[int] = set()
        for trade in trades:
            flows[trade.token_in] += trade.amount_in
            flows[trade.token_out] -= trade.amount_out
            seqs.add(trade.seq)
            if last is None or trade.seq > last.seq:
                last = trade
        return cls(
            pool_id, genesis, dict(flows), len(seqs), 0 if last is None else last.seq,
            None if last is None else last.state_after,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Delivery:
    """A queue entry handed to a consumer and not acknowledged."""

    message_id: str
    order_id: str | None  # None: the entry was deleted while pending
    consumer: str
    idle_s: float


@dataclass(frozen=True, slots=True)
class QueueState:
    queued: frozenset[str]  # order ids in the stream (waiting or delivered) or waiting to retry
    deliveries: tuple[Delivery, ...] = ()
    depth: Mapping[str, int] = field(default_factory=dict)  # waiting, pending, delayed: for the report


# -- the report ---------------------------------------------------------------------------------
@dataclass(slots=True)
class AuditReport:
    checked_at: datetime
    stale_after_s: float
    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0  # orders the engine must still run (waiting ones are counted apart)
    waiting: int = 0  # armed orders: they wait for the market by design, and nothing runs them
    oldest_unfinished: OldestOpenOrder | None = None
    trades: int = 0
    pools: int = 0
    queue: Mapping[str, int] | None = None  # None: the queue was not read
    violations: list[Violation] = field(default_factory=list)
    pool_reserves: dict[str, Reserves] = field(default_factory=dict)  # each pool's genesis + its trades

    @property
    def clean(self) -> bool:
        return not self.violations

    def by_kind(self) -> dict[ViolationKind, list[Violation]]:
        found: dict[ViolationKind, list[Violation]] = defaultdict(list)
        for violation in self.violations:
            found[violation.kind].append(violation)
        return {kind: found[kind] for kind in ViolationKind if kind in found}

    def count(self, kind: ViolationKind) -> int:
        return sum(v.kind == kind for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        oldest = self.oldest_unfinished
        return {
            "clean": self.clean,
            "checkedAt": iso(self.checked_at),
            "staleAfterS": self.stale_after_s,
            "orders": self.orders,
            "byStatus": dict(self.by_status),
            "unfinished": self.unfinished,
            "waiting": self.waiting,
            "oldestUnfinished": None if oldest is None else {
                "orderId": oldest.order_id, "status": str(oldest.status), "ageS": oldest.age_s,
                "idleS": oldest.idle_s,
            },
            "trades": self.trades,
            "pools": self.pools,
            "queue": None if self.queue is None else dict(self.queue),
            "violationCounts": {str(kind): len(found) for kind, found in self.by_kind().items()},
            "violations": [v.to_json() for v in self.violations],
            "poolReserves": self.pool_reserves,
        }  # fmt: skip


# -- the checks ---------------------------------------------------------------------------------
def history_violations(order_id: str, history: Sequence[Step]) -> list[Violation]:
    """Gapless from 1, starting pending, legal steps, at most one final status, stamped in order."""
    if not history:
        return [Violation(ViolationKind.NO_HISTORY, order_id, "no status history")]
    found = []
    seqs = [step.seq for step in history]
    if seqs != list(range(1, len(history) + 1)):
        found.append(Violation(ViolationKind.SEQ_GAP, order_id, f"seqs {_listed(seqs)}"))
    if history[0].status != OrderStatus.PENDING:
        found.append(Violation(ViolationKind.ILLEGAL_TRANSITION, order_id, f"starts at {history[0].status}"))
    for before, after in zip(history, history[1:]):
        if not can_transition(before.status, after.status):
            detail = f"{before.status} -> {after.status} at seq {after.seq}"
            found.append(Violation(ViolationKind.ILLEGAL_TRANSITION, order_id, detail))
    finals = [f"{step.status} at seq {step.seq}" for step in history if step.status.is_final]
    if len(finals) > 1:
        found.append(Violation(ViolationKind.FINAL_TWICE, order_id, ", ".join(finals)))
    late = [after.seq for before, after in zip(history, history[1:]) if after.at < before.at]
    if late:
        detail = f"stamped before the step ahead of it: seq {_listed(late)}"
        found.append(Violation(ViolationKind.OUT_OF_ORDER, order_id, detail))
    return found


def row_violations(order: OrderRow, history: Sequence[Step]) -> list[Violation]:
    """The order row says what its history's last step says."""
    if not history:
        return []
    last = history[-1]
    if (order.status, order.seq) == (last.status, last.seq):
        return []
    detail = f"row: {order.status} at seq {order.seq}; history ends {last.status} at seq {last.seq}"
    return [Violation(ViolationKind.ROW_OFF_HISTORY, order.order_id, detail)]


def fill_violations(order: OrderRow, fill_legs: Sequence[int]) -> list[Violation]:
    """At most one fill per leg; fills that fit how the order ended."""
    found = [
        Violation(ViolationKind.DOUBLE_FILL, order.order_id, f"leg {leg} filled {times} times")
        for leg, times in sorted(Counter(fill_legs).items()) if times > 1
    ]  # fmt: skip
    if order.status == OrderStatus.CONFIRMED and not fill_legs:
        found.append(Violation(ViolationKind.CONFIRMED_WITHOUT_FILL, order.order_id, "confirmed, no trade"))
    if order.status == OrderStatus.FAILED and fill_legs and order.error_code != PARTIAL_FILL:
        detail = f"failed {order.error_code or '(no code)'} with {len(fill_legs)} trade(s)"
        found.append(Violation(ViolationKind.FAILED_WITH_FILL, order.order_id, detail))
    return found


def is_stale(order: OrderRow, now: datetime, stale_after_s: float) -> bool:
    """An order the engine should have moved by now: one it runs, unchanged for ``stale_after_s``; or one
    that waits, still open ``stale_after_s`` after it expired (the trigger book's timer missed it)."""
    if order.status in WAITING_STATUSES:
        return order.expires_at is not None and (now - order.expires_at).total_seconds() > stale_after_s
    return order.status in ACTIVE_STATUSES and (now - order.updated_at).total_seconds() > stale_after_s


def pool_violations(ledger: PoolLedger) -> tuple[list[Violation], Reserves | None]:
    """The pool's violations, and the reserves its books give it (genesis + trades; None: no genesis)."""
    pool_id = ledger.pool_id
    if ledger.genesis is None:
        detail = f"{ledger.trades} trade(s), no genesis"
        return [Violation(ViolationKind.POOL_WITHOUT_GENESIS, pool_id, detail)], None
    found = []
    if ledger.last_seq != ledger.trades:
        detail = f"{ledger.trades} trade(s) numbered up to seq {ledger.last_seq}"
        found.append(Violation(ViolationKind.TRADE_SEQ_GAP, pool_id, detail))
    try:
        genesis = restore_pool(dict(ledger.genesis)).reserves()
        recorded = genesis if ledger.last_state is None else restore_pool(dict(ledger.last_state)).reserves()
    except (SimError, KeyError, TypeError, ValueError) as exc:  # UnknownPoolKind is a ValueError
        found.append(Violation(ViolationKind.BAD_POOL_STATE, pool_id, f"{type(exc).__name__}: {exc}"))
        return found, None
    books = dict(genesis)
    for token, flow in ledger.flows.items():
        books[token] = books.get(token, 0) + flow
    if books != recorded:
        off = [
            f"{token}: genesis + trades {books.get(token)}, last recorded {recorded.get(token)}"
            for token in sorted(set(books) | set(recorded)) if books.get(token) != recorded.get(token)
        ]  # fmt: skip
        found.append(Violation(ViolationKind.RESERVES_OFF, pool_id, "; ".join(off)))
    return found, books


def queue_violations(queue: QueueState, stale_orders: Iterable[str], stale_after_s: float) -> list[Violation]:
    """Stale unfinished orders nothing in the queue will run again; deliveries nobody acknowledges."""
    found = [
        Violation(ViolationKind.UNQUEUED, order_id, "not final, and neither queued, delivered nor delayed")
        for order_id in sorted(stale_orders) if order_id not in queue.queued
    ]  # fmt: skip
    for delivery in queue.deliveries:
        if delivery.idle_s > stale_after_s:
            subject = delivery.order_id or f"entry {delivery.message_id}"
            detail = f"delivered to {delivery.consumer} {delivery.idle_s:.0f}s ago, not acknowledged"
            found.append(Violation(ViolationKind.STALE_DELIVERY, subject, detail))
    return found


class BookAudit:
    """The audit fed piecemeal (orders in batches, then pools, and the queue), then its report."""

    def __init__(self, now: datetime, stale_after_s: float = STALE_AFTER_S) -> None:
        if stale_after_s < 0:
            raise ValueError("stale_after_s must be >= 0")
        self._report = AuditReport(checked_at=now, stale_after_s=stale_after_s)
        self._stale: list[str] = []
        self._queue: QueueState | None = None
        self._oldest: OrderRow | None = None

    def add_order(self, order: OrderRow, history: Sequence[Step], fill_legs: Sequence[int] = ()) -> None:
        report = self._report
        report.orders += 1
        report.by_status[str(order.status)] = report.by_status.get(str(order.status), 0) + 1
        found = history_violations(order.order_id, history) + row_violations(order, history)
        found += fill_violations(order, fill_legs)
        if order.status in WAITING_STATUSES:
            report.waiting += 1
            if is_stale(order, report.checked_at, report.stale_after_s):  # not queued: nothing runs it
                assert order.expires_at is not None
                late = (report.checked_at - order.expires_at).total_seconds()
                found.append(Violation(ViolationKind.STALLED, order.order_id, f"open {late:.0f}s after it expired"))
        elif not order.status.is_final:
            report.unfinished += 1
            if self._oldest is None or order.created_at < self._oldest.created_at:
                self._oldest = order
            if is_stale(order, report.checked_at, report.stale_after_s):
                self._stale.append(order.order_id)
                idle = (report.checked_at - order.updated_at).total_seconds()
                detail = f"{order.status}, unchanged for {idle:.0f}s"
                found.append(Violation(ViolationKind.STALLED, order.order_id, detail))
        report.violations += found

    def add_pool(self, ledger: PoolLedger) -> None:
        found, books = pool_violations(ledger)
        self._report.pools += 1
        self._report.trades += ledger.trades
        self._report.violations += found
        if books is not None:
            self._report.pool_reserves[ledger.pool_id] = books

    def set_queue(self, queue: QueueState) -> None:
        self._queue = queue

    def report(self) -> AuditReport:
        report = self._report
        if self._oldest is not None:
            oldest, now = self._oldest, report.checked_at
            report.oldest_unfinished = OldestOpenOrder(
                oldest.order_id, str(oldest.status), max(0.0, (now - oldest.created_at).total_seconds()),
                max(0.0, (now - oldest.updated_at).total_seconds()),
            )  # fmt: skip
        if self._queue is not None:
            report.queue = dict(self._queue.depth)
            report.violations += queue_violations(self._queue, self._stale, report.stale_after_s)
            self._queue = None  # checked once, however often report() is called
        return report


def audit_books(
    orders: Iterable[OrderRow],
    histories: Mapping[str, Sequence[Step]],
    trades: Iterable[Trade],
    geneses: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
    stale_after_s: float = STALE_AFTER_S,
    queue: QueueState | None = None,
) -> AuditReport:
    """The whole audit of rows already in memory (histories by order id, in seq order)."""
    trades = list(trades)
    fills: dict[str, list[int]] = defaultdict(list)
    by_pool: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        by_pool[trade.pool_id].append(trade)
        if trade.order_id is not None:
            fills[trade.order_id].append(trade.leg)
    audit = BookAudit(now, stale_after_s)
    for order in orders:
        audit.add_order(order, histories.get(order.order_id, ()), fills.get(order.order_id, ()))
    for pool_id in sorted(set(geneses) | set(by_pool)):
        audit.add_pool(PoolLedger.of(pool_id, geneses.get(pool_id), by_pool.get(pool_id, ())))
    if queue is not None:
        audit.set_queue(queue)
    return audit.report()


# -- the report, for people ---------------------------------------------------------------------
def report_lines(report: AuditReport, examples: int = 10) -> list[str]:
    """Counts, then each kind of violation with up to ``examples`` of them."""
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(report.by_status.items()))
    lines = [
        f"books audited at {iso(report.checked_at)} (stalled: unchanged for over {report.stale_after_s:g}s)",
        f"  orders       {report.orders}" + (f"  ({statuses})" if statuses else ""),
        f"  unfinished   {report.unfinished}" + _oldest(report.oldest_unfinished),
        f"  waiting      {report.waiting} (armed orders)",
        f"  trades       {report.trades} against {report.pools} pool(s)",
    ]
    if report.queue is not None:
        lines.append("  queue        " + ", ".join(f"{k} {n}" for k, n in report.queue.items()))
    if report.clean:
        return [*lines, "  violations   none"]
    lines.append(f"  violations   {len(report.violations)}")
    for kind, found in report.by_kind().items():
        lines.append(f"    {kind} ({len(found)})")
        lines += [f"      {v.subject}: {v.detail}" for v in found[:examples]]
        if len(found) > examples:
            lines.append(f"      ... and {len(found) - examples} more")
    return lines


def _oldest(oldest: OldestOpenOrder | None) -> str:
    if oldest is None:
        return ""
    age, idle = f"{oldest.age_s:.1f}s old", f"unchanged for {oldest.idle_s:.1f}s"
    return f"  (oldest {oldest.order_id}: {oldest.status}, {age}, {idle})"


def _listed(numbers: Sequence[int], most: int = 12) -> str:
    shown = ", ".join(map(str, numbers[:most]))
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > most else "")
