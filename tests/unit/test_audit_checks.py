"""The audit of the books (engine.audit) on hand-built rows: a clean book, then one break of each kind."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.audit import (
    AuditReport, BookAudit, Delivery, OrderRow, PoolLedger, QueueState, Step, Trade, ViolationKind,
    audit_books, report_lines,
)  # fmt: skip
from sim.orders import OrderStatus
from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool
from sim.tokens import SOL, USDC

S = OrderStatus
K = ViolationKind
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
HAPPY = [S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED]


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def steps(*statuses: S, began_s_ago: float = 60.0) -> list[Step]:
    """A history one second a step, starting ``began_s_ago``."""
    return [Step(i, status, ago(began_s_ago - i + 1)) for i, status in enumerate(statuses, 1)]


def order_of(history: list[Step], *, error_code: str | None = None) -> OrderRow:
    last = history[-1]
    return OrderRow(str(uuid.uuid4()), last.status, last.seq, error_code, history[0].at, last.at)


class Books:
    """Rows for ``audit_books``: a CPMM and a DLMM pool with their genesis, orders filled against them."""

    def __init__(self) -> None:
        self.orders: list[OrderRow] = []
        self.histories: dict[str, list[Step]] = {}
        self.trades: list[Trade] = []
        cpmm = CpmmPool("raydium:SOL-USDC", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one)
        dlmm = DlmmPool.with_liquidity(
            "meteora:SOL-USDC", SOL, USDC, price=150.0, value_y=120_000 * USDC.one, bin_step=20,
            bins_each_side=10, params=DlmmFeeParams(base_factor=10_000),
        )  # fmt: skip
        self.pools: dict[str, Any] = {cpmm.pool_id: cpmm, dlmm.pool_id: dlmm}
        self.geneses = {pool_id: pool.snapshot() for pool_id, pool in self.pools.items()}

    def add(self, history: list[Step], *, error_code: str | None = None) -> OrderRow:
        order = order_of(history, error_code=error_code)
        self.orders.append(order)
        self.histories[order.order_id] = history
        return order

    def fill(self, order_id: str | None, pool_id: str = "raydium:SOL-USDC", leg: int = 0,
             amount: int = SOL.one) -> Trade:  # fmt: skip
        """A real swap of ``amount`` SOL on the pool, recorded as its next trade."""
        pool = self.pools[pool_id]
        quote = pool.swap_exact_in("SOL", amount)
        seq = 1 + sum(t.pool_id == pool_id for t in self.trades)
        trade = Trade(pool_id, seq, order_id, leg, "SOL", quote.amount_in, "USDC", quote.amount_out, pool.snapshot())
        self.trades.append(trade)
        return trade

    def confirmed(self) -> OrderRow:
        order = self.add(steps(*HAPPY))
        self.fill(order.order_id)
        return order

    def audit(self, **kwargs: Any) -> AuditReport:
        return audit_books(self.orders, self.histories, self.trades, self.geneses, now=NOW, **kwargs)


def kinds(report: AuditReport) -> list[K]:
    return [v.kind for v in report.violations]


@pytest.fixture
def books() -> Books:
    """A clean book: confirmed, failed, retried, in flight; market trades on both pools."""
    book = Books()
    book.confirmed()
    book.add(steps(S.PENDING, S.ROUTING, S.FAILED), error_code="NO_ROUTE")
    retried = book.add(steps(S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.PENDING, S.ROUTING, S.BUILDING,
                             S.SUBMITTED, S.CONFIRMED))  # fmt: skip
    book.fill(retried.order_id, "meteora:SOL-USDC")
    book.fill(None, "meteora:SOL-USDC", amount=3 * SOL.one)
    book.fill(None, amount=2 * SOL.one)
    book.add(steps(S.PENDING, S.ROUTING, began_s_ago=5))
    return book


def test_a_clean_book_has_no_violation(books: Books) -> None:
    report = books.audit()
    assert report.clean and report.violations == []
    assert (report.orders, report.unfinished, report.trades, report.pools) == (4, 1, 4, 2)
    assert report.by_status == {"confirmed": 2, "failed": 1, "routing": 1}
    assert report.oldest_unfinished is not None and report.oldest_unfinished.status == S.ROUTING
    assert report.oldest_unfinished.age_s == pytest.approx(5) and report.oldest_unfinished.idle_s == pytest.approx(4)
    # what the books say each pool holds is what the pools hold after those swaps
    assert report.pool_reserves == {pool_id: pool.reserves() for pool_id, pool in books.pools.items()}
    assert report_lines(report)[-1] == "  violations   none"


def test_a_gap_in_the_history_seq(books: Books) -> None:
    history = steps(*HAPPY)
    order = books.add(history[:2] + [replace(step, seq=step.seq + 1) for step in history[2:]])
    books.fill(order.order_id)
    report = books.audit()
    assert kinds(report) == [K.SEQ_GAP] and report.violations[0].subject == order.order_id
    assert "1, 2, 4, 5, 6" in report.violations[0].detail


def test_an_order_without_history(books: Books) -> None:
    order = books.confirmed()
    books.histories[order.order_id] = []
    assert kinds(books.audit()) == [K.NO_HISTORY]


def test_an_illegal_transition(books: Books) -> None:
    order = books.add(steps(S.PENDING, S.BUILDING, S.SUBMITTED, S.CONFIRMED))
    books.fill(order.order_id)
    report = books.audit()
    assert kinds(report) == [K.ILLEGAL_TRANSITION]
    assert report.violations[0].detail == "pending -> building at seq 2"


def test_a_history_that_does_not_start_pending(books: Books) -> None:
    books.add(steps(S.ROUTING, S.FAILED), error_code="NO_ROUTE")
    assert [v.detail for v in books.audit().violations] == ["starts at routing"]


def test_two_final_statuses(books: Books) -> None:
    order = books.add(steps(*HAPPY, S.FAILED), error_code="SLIPPAGE_EXCEEDED")
    books.fill(order.order_id)
    report = books.audit()
    # confirmed -> failed is also an illegal step, and the fill does not fit the row's "failed"
    assert set(kinds(report)) == {K.FINAL_TWICE, K.ILLEGAL_TRANSITION, K.FAILED_WITH_FILL}
    assert [v.detail for v in report.violations if v.kind == K.FINAL_TWICE] == ["confirmed at seq 5, failed at seq 6"]


def test_history_stamped_out_of_order(books: Books) -> None:
    history = steps(*HAPPY)
    history[3] = replace(history[3], at=history[1].at - timedelta(milliseconds=1))
    order = books.add(history)
    books.fill(order.order_id)
    assert kinds(books.audit()) == [K.OUT_OF_ORDER]


def test_an_order_row_that_is_not_where_its_history_ends(books: Books) -> None:
    order = books.confirmed()
    books.histories[order.order_id] = books.histories[order.order_id][:-1]  # the final step lost
    report = books.audit()
    assert kinds(report) == [K.ROW_OFF_HISTORY]
    assert report.violations[0].detail == "row: confirmed at seq 5; history ends submitted at seq 4"


def test_a_double_fill(books: Books) -> None:
    order = books.confirmed()
    books.fill(order.order_id, "meteora:SOL-USDC")  # the same leg 0 again, elsewhere
    report = books.audit()
    assert kinds(report) == [K.DOUBLE_FILL] and report.violations[0].subject == order.order_id
    assert report.violations[0].detail == "leg 0 filled 2 times"


def test_two_legs_of_one_order_are_not_a_double_fill(books: Books) -> None:
    order = books.confirmed()
    books.fill(order.order_id, "meteora:SOL-USDC", leg=1)
    assert books.audit().clean


def test_confirmed_without_a_fill(books: Books) -> None:
    books.add(steps(*HAPPY))
    assert kinds(books.audit()) == [K.CONFIRMED_WITHOUT_FILL]


def test_failed_with_a_fill_unless_partially_filled(books: Books) -> None:
    failed = books.add(steps(S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.FAILED), error_code="EXPIRED")
    books.fill(failed.order_id)
    assert kinds(books.audit()) == [K.FAILED_WITH_FILL]
    books.orders[-1] = replace(failed, error_code="PARTIAL_FILL")
    assert books.audit().clean


def test_reserves_off_by_one_unit(books: Books) -> None:
    last = books.trades[-1]
    books.trades[-1] = replace(last, amount_out=last.amount_out + 1)  # the pool paid one micro-USDC more
    report = books.audit()
    assert kinds(report) == [K.RESERVES_OFF] and report.violations[0].subject == "raydium:SOL-USDC"
    assert report.violations[0].detail.startswith("USDC: genesis + trades ")
    assert report.pool_reserves["raydium:SOL-USDC"]["USDC"] == books.pools["raydium:SOL-USDC"].reserves()["USDC"] - 1


def test_a_trade_missing_from_the_books_is_a_gap_and_leaves_the_reserves_off(books: Books) -> None:
    books.fill(None, "meteora:SOL-USDC")
    books.trades = [t for t in books.trades if (t.pool_id, t.seq) != ("meteora:SOL-USDC", 2)]
    assert sorted(kinds(books.audit())) == sorted([K.TRADE_SEQ_GAP, K.RESERVES_OFF])


def test_trades_of_a_pool_without_genesis(books: Books) -> None:
    del books.geneses["meteora:SOL-USDC"]
    report = books.audit()
    assert kinds(report) == [K.POOL_WITHOUT_GENESIS] and "meteora:SOL-USDC" not in report.pool_reserves


def test_a_state_no_pool_kind_can_restore(books: Books) -> None:
    books.geneses["raydium:SOL-USDC"] = {**books.geneses["raydium:SOL-USDC"], "type": "orca"}
    assert kinds(books.audit()) == [K.BAD_POOL_STATE]


def test_an_unfinished_order_is_stalled_only_past_the_bound(books: Books) -> None:
    stuck = books.add(steps(S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, began_s_ago=400))  # last change 397 s ago
    report = books.audit()  # 300 s by default
    assert kinds(report) == [K.STALLED] and report.violations[0].subject == stuck.order_id
    assert report.violations[0].detail == "submitted, unchanged for 397s"
    assert books.audit(stale_after_s=397).clean


def test_an_order_that_waits_is_stalled_only_once_it_is_open_well_past_its_expiry(books: Books) -> None:
    from dataclasses import replace

    armed = books.add(steps(S.PENDING, S.OPEN, began_s_ago=3600))  # open for an hour: waiting is its job
    books.orders[-1] = replace(armed, expires_at=ago(100))
    report = books.audit(queue=QueueState(frozenset()))  # nothing queues an open order: not unqueued
    assert report.clean and report.waiting == 1 and report.unfinished == 1
    books.orders[-1] = replace(armed, expires_at=ago(400))
    report = books.audit(queue=QueueState(frozenset()))
    assert kinds(report) == [K.STALLED] and report.violations[0].detail == "open 400s after it expired"


def test_a_stalled_order_nothing_will_run_is_unqueued(books: Books) -> None:
    stuck = books.add(steps(S.PENDING, began_s_ago=100))
    running = books.orders[-2]  # routing, changed 3 s ago: not stale, so not looked for in the queue
    assert kinds(books.audit(stale_after_s=30, queue=QueueState(frozenset({stuck.order_id})))) == [K.STALLED]
    report = books.audit(stale_after_s=30, queue=QueueState(frozenset()))
    assert kinds(report) == [K.STALLED, K.UNQUEUED]
    assert {v.subject for v in report.violations} == {stuck.order_id} and running.order_id != stuck.order_id


def test_a_delivery_nobody_acknowledges(books: Books) -> None:
    deliveries = (Delivery("1-0", "an-order", "dispatcher", 10.0), Delivery("2-0", None, "dispatcher", 500.0))
    report = books.audit(queue=QueueState(frozenset(), deliveries, {"waiting": 0, "pending": 2, "delayed": 0}))
    assert kinds(report) == [K.STALE_DELIVERY] and report.violations[0].subject == "entry 2-0"
    assert report.queue == {"waiting": 0, "pending": 2, "delayed": 0}


def test_the_audit_fed_in_batches_reports_as_the_whole(books: Books) -> None:
    books.add(steps(*HAPPY))  # confirmed without fill
    whole = books.audit()
    audit = BookAudit(NOW)
    fills: dict[str, list[int]] = {}
    for trade in books.trades:
        if trade.order_id:
            fills.setdefault(trade.order_id, []).append(trade.leg)
    for order in books.orders:
        audit.add_order(order, books.histories[order.order_id], fills.get(order.order_id, ()))
    for pool_id, genesis in books.geneses.items():
        audit.add_pool(PoolLedger.of(pool_id, genesis, [t for t in books.trades if t.pool_id == pool_id]))
    assert audit.report().to_json() == whole.to_json()


def test_the_report_for_people_and_as_json(books: Books) -> None:
    for _ in range(12):
        books.add(steps(*HAPPY))
    report = books.audit()
    lines = report_lines(report, examples=10)
    assert "  violations   12" in lines and "    confirmed_without_fill (12)" in lines
    assert lines[-1] == "      ... and 2 more" and sum(line.startswith("      ") for line in lines) == 11
    as_json = json.loads(json.dumps(report.to_json()))
    assert as_json["clean"] is False and as_json["violationCounts"] == {"confirmed_without_fill": 12}
    assert as_json["checkedAt"] == "2026-01-02T03:04:05.000000Z" and len(as_json["violations"]) == 12


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        BookAudit(NOW, stale_after_s=-1)
