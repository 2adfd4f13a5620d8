"""The event hub's local fan-out, without Redis: who gets what, bounded buffers, the end of a subscription."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.errors import SubscriptionLost
from storage.fanout import Fanout, Listener


def event(order_id: str, seq: int) -> dict[str, Any]:
    return {"orderId": order_id, "seq": seq, "status": "routing"}


async def drain(listener: Listener) -> tuple[list[tuple[str, int]], SubscriptionLost | None]:
    """Everything buffered, then the end if it has ended (a listener that has not ended is not waited for)."""
    got: list[tuple[str, int]] = []
    while True:
        step = asyncio.ensure_future(listener.__anext__())
        await asyncio.sleep(0)
        if not step.done():
            step.cancel()
            return got, None
        try:
            item = step.result()
        except SubscriptionLost as lost:
            return got, lost
        got.append((item["orderId"], item["seq"]))


async def test_each_listener_gets_its_orders_events_in_order_and_every_order_ones_get_all() -> None:
    fanout = Fanout()
    a, a_too, b, every = fanout.listen("a"), fanout.listen("a"), fanout.listen("b"), fanout.listen(None)
    for item in (event("a", 1), event("b", 1), event("c", 1), event("a", 2)):
        fanout.dispatch(item)
    assert (await drain(a))[0] == [("a", 1), ("a", 2)]
    assert (await drain(a_too))[0] == [("a", 1), ("a", 2)]
    assert (await drain(b))[0] == [("b", 1)]
    assert (await drain(every))[0] == [("a", 1), ("b", 1), ("c", 1), ("a", 2)]


async def test_a_full_listener_is_ended_alone_after_what_it_buffered() -> None:
    fanout = Fanout(capacity=3)
    slow, fast, other = fanout.listen("a"), fanout.listen("a"), fanout.listen(None)
    fast_got = []
    for seq in range(1, 6):
        fanout.dispatch(event("a", seq))
        fast_got += (await drain(fast))[0]
        await drain(other)
    got, lost = await drain(slow)
    assert got == [("a", 1), ("a", 2), ("a", 3)]
    assert isinstance(lost, SubscriptionLost) and "3 events behind" in str(lost)
    assert fast_got == [("a", seq) for seq in range(1, 6)]
    assert not fast.ended and not other.ended
    assert len(fanout) == 2  # the slow one is no longer fed
    fanout.dispatch(event("a", 6))
    assert (await drain(fast))[0] == [("a", 6)]


async def test_a_full_every_order_listener_is_ended_too() -> None:
    fanout = Fanout(capacity=2)
    feed, order = fanout.listen(None), fanout.listen("b")
    for seq in range(1, 4):
        fanout.dispatch(event("a", seq))
    got, lost = await drain(feed)
    assert got == [("a", 1), ("a", 2)] and lost is not None
    assert feed.ended and not order.ended


async def test_the_end_of_the_subscription_ends_every_listener_and_wakes_the_waiting_ones() -> None:
    fanout = Fanout()
    a, every = fanout.listen("a"), fanout.listen(None)
    fanout.dispatch(event("a", 1))
    assert (await drain(every))[0] == [("a", 1)]
    waiting = asyncio.ensure_future(every.__anext__())
    await asyncio.sleep(0)
    assert not waiting.done()
    fanout.end_all(SubscriptionLost("connection lost"))
    with pytest.raises(SubscriptionLost, match="connection lost"):
        await waiting
    got, lost = await drain(a)
    assert got == [("a", 1)] and lost is not None  # what came before the end is still read
    assert len(fanout) == 0 and not fanout.listening
    fanout.dispatch(event("a", 2))  # nobody is fed any more
    assert (await drain(a))[0] == []


async def test_a_waiting_reader_wakes_on_an_event() -> None:
    fanout = Fanout()
    listener = fanout.listen("a")
    waiting = asyncio.ensure_future(listener.__anext__())
    await asyncio.sleep(0)
    assert not waiting.done()
    fanout.dispatch(event("a", 1))
    assert await waiting == event("a", 1)


async def test_a_dropped_listener_gets_nothing_more_and_dropping_is_idempotent() -> None:
    fanout = Fanout()
    gone, stays = fanout.listen("a"), fanout.listen("a")
    fanout.drop(gone)
    fanout.drop(gone)
    fanout.dispatch(event("a", 1))
    assert (await drain(gone))[0] == []
    assert (await drain(stays))[0] == [("a", 1)]
    fanout.drop(stays)
    assert len(fanout) == 0 and not fanout.listening


def test_a_listener_buffers_at_least_one_event() -> None:
    with pytest.raises(ValueError):
        Fanout(capacity=0)
