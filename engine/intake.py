"""Taking an order in: store it pending (with its first history row), publish that, queue it.

The order exists once the store has committed it; a publish or an enqueue
that fails after that loses nothing: followers replay the history from the
store, and the dispatcher's sweep queues unfinished orders the queue lost.
"""

from __future__ import annotations

import asyncio
import logging

from engine.ports import EventFeed, OrderIntake, WorkQueue
from engine.records import NewOrder, OrderRecord

log = logging.getLogger(__name__)


async def accept_order(
    orders: OrderIntake,
    feed: EventFeed,
    queue: WorkQueue,
    order: NewOrder,
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    client_id: str | None = None,
    transport_timeout_s: float = 2.0,
) -> tuple[OrderRecord, bool]:
    """``(record, created)``; ``created`` is False when the idempotency key named an earlier order.

    Raises what the store raises (``IdempotencyConflict``, or an outage): then nothing was stored.
    """
    record, event = await orders.create_order(
        order, idempotency_key=idempotency_key, request_hash=request_hash, client_id=client_id
    )
    if event is None:
        return record, False
    try:
        await asyncio.wait_for(feed.publish(event), transport_timeout_s)
    except Exception as exc:  # noqa: BLE001
        log.warning("order %s: publishing the pending event failed (%r); followers replay it", record.id, exc)
    try:
        await asyncio.wait_for(queue.enqueue(record.id), transport_timeout_s)
    except Exception as exc:  # noqa: BLE001
        log.warning("order %s: enqueue failed (%r); the dispatcher's sweep will queue it", record.id, exc)
    return record, True
