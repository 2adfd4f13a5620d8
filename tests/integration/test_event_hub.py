"""The event hub on a real Redis: one connection per process, each subscriber its own events, losses seen.

Events are published with ``EventBus``, exactly as the executors do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis.asyncio as aioredis

from engine.errors import SubscriptionLost
from localservers.redis import LocalRedis
from storage.event_hub import HUB_CLIENT_NAME, EventHub
from storage.events import ALL_CHANNEL, EventBus
from tests.unit.fanout_reading import buffered

pytestmark = pytest.mark.integration


def event(order_id: str, seq: int, status: str = "routing") -> dict[str, Any]:
    return {"orderId": order_id, "seq": seq, "status": status, "details": {}}


async def our_hub_clients(redis: aioredis.Redis) -> list[dict[str, Any]]:
    """The pub/sub connections of this process's hubs, as Redis lists them (a Redis given by REDIS_URL may
    hold other processes' hubs: they are not counted, nor killed)."""
    ours = {f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process().net_connections(kind="tcp") if c.laddr}
    clients = await redis.client_list(_type="pubsub")
    return [c for c in clients if c.get("name") == HUB_CLIENT_NAME and c.get("addr") in ours]


async def hub_connections(redis: aioredis.Redis) -> int:
    return len(await our_hub_clients(redis))


async def kill_hub_connections(redis: aioredis.Redis) -> int:
    """``CLIENT KILL`` this process's hub connections, as a Redis restart or a network fault would."""
    clients = await our_hub_clients(redis)
    for client in clients:
        await redis.client_kill_filter(_id=client["id"])
    return len(clients)


async def subscribers_of_all(redis: aioredis.Redis) -> int:
    [(_channel, count)] = await redis.pubsub_numsub(ALL_CHANNEL)
    return int(count)


async def next_event(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(events), 5)


@pytest.fixture
async def hub(redis_url: str) -> AsyncIterator[EventHub]:
    hub = EventHub(redis_url)
    try:
        yield hub
    finally:
        await hub.aclose()


@pytest.fixture
def bus(redis_client: aioredis.Redis) -> EventBus:
    return EventBus(redis_client)


async def test_200_subscriptions_share_one_connection_and_each_gets_its_own_events_in_order(
    hub: EventHub, bus: EventBus, redis_client: aioredis.Redis
) -> None:
    before, all_before = await hub_connections(redis_client), await subscribers_of_all(redis_client)
    orders = [str(uuid.uuid4()) for _ in range(200)]
    async with contextlib.AsyncExitStack() as stack:
        streams = {order_id: await stack.enter_async_context(hub.subscribe(order_id)) for order_id in orders}
        everything = await stack.enter_async_context(hub.subscribe_all())
        assert await hub_connections(redis_client) == before + 1
        assert await subscribers_of_all(redis_client) == all_before + 1
        assert not set(await redis_client.pubsub_channels("orders:*")) & {f"orders:{o}".encode() for o in orders}
        assert hub.connections == 1 and hub.listeners == 201

        for seq in (1, 2, 3):
            for order_id in orders:
                await bus.publish(event(order_id, seq))
        fence = str(uuid.uuid4())
        await bus.publish(event(fence, 1))
        # the reader dispatches in arrival order: once the fence is seen, every event before it was handed out
        seen = [(e["orderId"], e["seq"]) for e in [await next_event(everything) for _ in range(601)]]
        assert seen[-1] == (fence, 1) and len(set(seen)) == 601
        for order_id, events in streams.items():
            assert await buffered(events) == ([(order_id, 1), (order_id, 2), (order_id, 3)], None)
    assert hub.listeners == 0
    assert await hub_connections(redis_client) == before + 1  # unsubscribing is local: the hub stays


async def test_a_subscriber_registered_before_a_publish_always_receives_it(hub: EventHub, bus: EventBus) -> None:
    async def follow(order_id: str) -> dict[str, Any]:
        async with hub.subscribe(order_id) as events:
            await bus.publish(event(order_id, 1))
            return await next_event(events)

    # the first ones find the hub cold: they wait for the one subscription Redis confirms
    orders = [str(uuid.uuid4()) for _ in range(100)]
    got = await asyncio.gather(*(follow(order_id) for order_id in orders))
    assert [e["orderId"] for e in got] == orders
    for _ in range(50):
        order_id = str(uuid.uuid4())
        assert (await follow(order_id))["orderId"] == order_id
    assert hub.connections == 1


async def test_a_killed_connection_ends_every_listener_and_the_next_subscribe_reconnects_once(
    hub: EventHub, bus: EventBus, redis_client: aioredis.Redis
) -> None:
    before = await hub_connections(redis_client)  # the hub is not up yet
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(hub.subscribe(str(uuid.uuid4()))) for _ in range(20)]
        streams.append(await stack.enter_async_context(hub.subscribe_all()))
        assert await kill_hub_connections(redis_client) == 1
        for events in streams:
            with pytest.raises(SubscriptionLost, match="lost"):
                await next_event(events)
        assert hub.listeners == 0

    orders = [str(uuid.uuid4()) for _ in range(50)]
    async with contextlib.AsyncExitStack() as stack:
        # fifty subscribers at once after the loss: one new connection for all of them
        entered = await asyncio.gather(*(stack.enter_async_context(hub.subscribe(o)) for o in orders))
        assert hub.connections == 2
        assert await hub_connections(redis_client) == before + 1
        for order_id in orders:
            await bus.publish(event(order_id, 1))
        assert [(await next_event(events))["orderId"] for events in entered] == orders


async def test_a_slow_listener_is_ended_alone_and_the_connection_stays(redis_url: str, bus: EventBus) -> None:
    hub = EventHub(redis_url, buffer=5)
    try:
        order_id = str(uuid.uuid4())
        async with hub.subscribe(order_id) as slow, hub.subscribe(order_id) as fast:
            for seq in range(1, 11):
                await bus.publish(event(order_id, seq))
                assert (await next_event(fast))["seq"] == seq
            got, lost = await buffered(slow)
            assert got == [(order_id, seq) for seq in range(1, 6)]
            assert lost is not None and "behind" in str(lost)
            await bus.publish(event(order_id, 11))
            assert (await next_event(fast))["seq"] == 11
        assert hub.connections == 1
    finally:
        await hub.aclose()


async def test_while_redis_is_down_subscribing_fails_and_after_a_restart_it_works_again(
    storage_tmp: Path,
) -> None:
    server = LocalRedis(storage_tmp / f"redis-hub-{uuid.uuid4().hex[:6]}", appendonly=False)
    url = await asyncio.to_thread(server.start)
    hub = EventHub(url, retry_after_s=0.0)
    publisher = aioredis.from_url(url)
    try:
        async with hub.subscribe("a") as events:
            await asyncio.to_thread(server.stop)
            with pytest.raises(SubscriptionLost):
                await next_event(events)
        with pytest.raises(SubscriptionLost, match="did not take"):
            await enter_once(hub)
        await asyncio.to_thread(server.start)
        async with hub.subscribe("a") as events:
            await EventBus(publisher).publish(event("a", 1))
            assert (await next_event(events))["seq"] == 1
    finally:
        await publisher.aclose()
        await hub.aclose()
        await asyncio.to_thread(server.stop)


async def test_a_failed_connect_is_shared_and_not_retried_at_once() -> None:
    with socket_bound() as port:
        hub = EventHub(f"redis://127.0.0.1:{port}", subscribe_timeout=1.0, retry_after_s=60.0)
        try:
            results = await asyncio.gather(*(enter_once(hub) for _ in range(30)), return_exceptions=True)
            assert all(isinstance(r, SubscriptionLost) for r in results), results
            assert hub.connections == 1
            with pytest.raises(SubscriptionLost, match="did not take"):
                await enter_once(hub)
            assert hub.connections == 1
        finally:
            await hub.aclose()


async def test_a_closed_hub_ends_its_listeners_and_leaves_redis(redis_url: str, redis_client: aioredis.Redis) -> None:
    before = await hub_connections(redis_client)
    hub = EventHub(redis_url)
    async with hub.subscribe_all() as events:
        assert await hub_connections(redis_client) == before + 1
        await hub.aclose()
        with pytest.raises(SubscriptionLost):
            await next_event(events)
    assert await hub_connections(redis_client) == before
    with pytest.raises(SubscriptionLost, match="closed"):
        await enter_once(hub)


async def enter_once(hub: EventHub) -> None:
    async with hub.subscribe("any"):
        pass


@contextlib.contextmanager
def socket_bound() -> Iterator[int]:
    """A port where nothing answers (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
