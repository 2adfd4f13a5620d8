"""Cancelling an order that waits: a compare-and-set to ``cancelled``, committed before it is published.

An order can be cancelled while it waits: armed (``open``), fired but not yet
routed (``triggered``), or accepted and not yet armed (``pending`` at seq 1).
Once it has started routing it runs to its end. A cancel races the trigger
book and the executors only through the store's compare-and-set: whichever
commits first is the truth, and the loser sees it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sim.orders import OrderStatus

from engine.errors import OrderNotFound, StaleTransition
from engine.ports import EventFeed
from engine.records import OrderRecord, StatusEvent

log = logging.getLogger(__name__)


class NotCancellable(Exception):
    def __init__(self, order: OrderRecord, reason: str) -> None:
        super().__init__(reason)
        self.order = order
        self.reason = reason


class CancellableOrders(Protocol):
    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def transition(self, order_id: str, to: OrderStatus, *, attempt: int, details: dict[str, Any],
                         expected: Any = None, expected_seq: int | None = None) -> StatusEvent: ...  # fmt: skip


def _still_waiting(order: OrderRecord) -> bool:
    if order.status in (OrderStatus.OPEN, OrderStatus.TRIGGERED):
        return True
    return order.status == OrderStatus.PENDING and order.seq == 1  # accepted, not armed yet


async def cancel_order(orders: CancellableOrders, feed: EventFeed, order_id: str) -> tuple[OrderRecord, bool]:
    """``(order now, cancelled by this call)``; cancelling a cancelled order again is not an error.

    Raises :class:`OrderNotFound`, or :class:`NotCancellable` (a market order, or one that
    started routing or ended otherwise).
    """
    for _ in range(5):  # each lost race means the order moved on: look again
        order = await orders.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status == OrderStatus.CANCELLED:
            return order, False
        if not order.waits:
            raise NotCancellable(order, "a market order executes at once; it cannot be cancelled")
        if not _still_waiting(order):
            raise NotCancellable(order, f"the order is {order.status}: only an order that waits can be cancelled")
        try:
            event = await orders.transition(
                order.id, OrderStatus.CANCELLED, attempt=order.attempts,
                details={"cancelledFrom": str(order.status)}, expected=order.status, expected_seq=order.seq,
            )  # fmt: skip
        except StaleTransition:
            continue
        try:
            await feed.publish(event)
        except Exception:  # noqa: BLE001 — committed already; followers replay from the store
            log.debug("order %s: publishing its cancel failed", order.id, exc_info=True)
        current = await orders.get_order(order.id)
        assert current is not None
        return current, True
    raise NotCancellable(order, "the order kept changing; try again")  # pragma: no cover - five lost races
