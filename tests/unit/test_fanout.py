"""The event hub's local fan-out, without Redis: who gets what, bounded buffers, the end of a subscription."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.errors import SubscriptionLost
from storage.fanout import Fanout
from tests.unit.fanout_reading import buffered


def event(order_id: str, seq: int) -> dict[str, Any]:
    return {"orderId": order_id, "seq": seq, "status": "routing"}


async def test_each_listener_gets_its_orders_events_in_order_and_every_order_ones_get_all() -> None:
    fanout = Fanout()
    a, a_too, b, every = fanout.listen("a"), fanout.listen("a"), fanout.listen("b"), fanout.listen(None)
    for item in (event("a", 1), event("b", 1), event("c", 1), event("a", 2)):
        fanout.dispatch(item)
    assert (await buffered(a))[0] == [("a", 1), ("a", 2)]
    assert (await buffered(a_too))[0] == [("a", 1), ("a", 2)]
    assert (await buffered(b))[0] == [("b", 1)]
    assert (await buffered(every))[0] == [("a", 1), ("b", 1), ("c", 1), ("a", 2)]


async def test_a_full_listener_is_ended_alone_after_what_it_buffered() -> None:
    fanout = Fanout(capacity=3)
    slow, fast, other = fanout.listen("a"), fanout.listen("a"), fanout.listen(None)
    fast_got = []
    for seq in range(1, 6):
        fanout.dispatch(event("a", seq))
        fast_got += (await buffered(fast))[0]
        await buffered(other)
    got, lost = await buffered(slow)
    assert got == [("a", 1), ("a", 2), ("a", 3)]
    assert isinstance(lost, SubscriptionLost) and "3 events behind" in str(lost)
    assert fast_got == [("a", seq) for seq in range(1, 6)]
    assert not fast.ended and not other.ended
    assert len(fanout) == 2  # the slow one is no longer fed
    fanout.dispatch(event("a", 6))
    assert (await buffered(fast))[0] == [("a", 6)]


async def test_a_full_every_order_listener_is_ended_too() -> None:
    fanout = Fanout(capacity=2)
    feed, order = fanout.listen(None), fanout.listen("b")
    for seq in range(1, 4):
        fanout.dispatch(event("a", seq))
    got, lost = await buffered(feed)
    assert got == [("a", 1), ("a", 2)] and lost is not None
    assert feed.ended and not order.ended


async def test_the_end_of_the_subscription_ends_every_listener_and_wakes_the_waiting_ones() -> None:
    fanout = Fanout()
    a, every = fanout.listen("a"), fanout.listen(None)
    fanout.dispatch(event("a", 1))
    assert (await buffered(every))[0] == [("a", 1)]
    waiting = asyncio.ensure_future(every.__anext__())
    await asyncio.sleep(0)
    assert not waiting.done()
    fanout.end_all(SubscriptionLost("connection lost"))
    with pytest.raises(SubscriptionLost, match="connection lost"):
        await waiting
    got, lost = await buffered(a)
    assert got == [("a", 1)] and lost is not None  # what came before the end is still read
    assert len(fanout) == 0 and not fanout.listening
    fanout.dispatch(event("a", 2))  # nobody is fed any more
    assert (await buffered(a))[0] == []


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
    assert (await buffered(gone))[0] == []
    assert (await buffered(stays))[0] == [("a", 1)]
    fanout.drop(stays)
    assert len(fanout) == 0 and not fanout.listening


def test_a_listener_buffers_at_least_one_event() -> None:
    with pytest.raises(ValueError):
        Fanout(capacity=0)
