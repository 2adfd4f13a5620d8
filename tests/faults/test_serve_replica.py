"""The Serve replica killed while WebSocket clients follow their orders through Serve's proxy.

Clients reconnect (to the new replica Serve starts) and get what they missed
from the replay: each ends with every event of its order exactly once, in
order, as PostgreSQL recorded them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray
import websockets
from ray import serve

from engine.settings import EngineSettings
from runtime.root import start_api
from localservers.ports import free_port
from tests.e2e.serve_harness import wait_healthy
from tests.faults.conftest import deadline, fault_settings
from tests.integration.engine_harness import assert_invariants, history, running_engine, wait_final

pytestmark = pytest.mark.faults

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "slippageBps": 200}


def replica_names() -> list[str]:
    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == "serve" and a["name"].startswith("SERVE_REPLICA::")
    )



@pytest.fixture(scope="module")
def served(database_url: str, redis_url: str, ray_session: None) -> Iterator[tuple[EngineSettings, Any, str]]:
    # executions of 1.5-2.5 s: the orders are mid-flight when the replica dies
    settings = fault_settings(
        database_url,
        redis_url,
        latency={"quote_s": 0.01, "quote_jitter_s": 0.01, "execution_min_s": 1.5, "execution_max_s": 2.5},
        api={"port": free_port()},
        dispatch={"executors": 6},  # fewer processes to start; six orders run at once all the same
    )
    with running_engine(settings) as actors:
        base = f"http://127.0.0.1:{settings.api.port}"
        try:  # shut down even if it never came up: the next module starts its own
            start_api(settings)
            wait_healthy(base, 90)
            yield settings, actors, base
        finally:
            serve.shutdown()


class Follower:
    """Follows one order over WebSockets, reconnecting (bounded) until the final event."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.connections = 0
        self.drops: list[str] = []
        self.first = asyncio.Event()

    async def run(self, timeout_s: float = 90) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                async with websockets.connect(self.url, open_timeout=5) as ws:
                    self.connections += 1
                    async for raw in ws:
                        event = json.loads(raw)
                        if event.get("type") != "status":
                            continue
                        self.first.set()
                        last = self.events[-1]["seq"] if self.events else 0
                        if event["seq"] <= last:
                            continue  # replayed: already have it
                        assert event["seq"] == last + 1, (last, event["seq"])
                        self.events.append(event)
                    if ws.close_code == 1000:
                        return
                    self.drops.append(f"closed {ws.close_code}")
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
                self.drops.append(type(exc).__name__)
            await asyncio.sleep(0.3)
        raise AssertionError(f"{self.url}: no final event in {timeout_s}s ({self.drops})")


async def follow_through_a_replica_kill(base: str, count: int) -> tuple[list[str], list[Follower], str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        replies = [await http.post("/api/orders/execute", json=ORDER) for _ in range(count)]
    assert all(r.status_code == 202 for r in replies), [r.text for r in replies]
    ids = [r.json()["orderId"] for r in replies]
    ws_base = base.replace("http", "ws", 1)
    followers = [Follower(f"{ws_base}/api/orders/{order_id}/ws") for order_id in ids]
    tasks = [asyncio.ensure_future(f.run()) for f in followers]
    await asyncio.wait_for(asyncio.gather(*(f.first.wait() for f in followers)), 30)
    (victim,) = replica_names()
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    await asyncio.gather(*tasks)
    (replacement,) = replica_names()
    return ids, followers, victim, replacement


def test_clients_of_a_killed_replica_reconnect_and_miss_nothing(served) -> None:
    settings, actors, base = served
    with deadline(150):
        ids, followers, victim, replacement = asyncio.run(follow_through_a_replica_kill(base, 6))
    assert replacement != victim, "Serve did not replace the killed replica"
    assert all(f.connections >= 2 for f in followers), [(f.connections, f.drops) for f in followers]
    statuses = wait_final(settings, ids, timeout_s=30)
    for order_id, follower in zip(ids, followers, strict=True):
        recorded = [(r["seq"], r["status"]) for r in history(settings, order_id)]
        assert [(e["seq"], e["status"]) for e in follower.events] == recorded
        assert follower.events[-1]["status"] == statuses[order_id]
    assert set(statuses.values()) == {"confirmed"}
    assert_invariants(settings, actors, ids)
    wait_healthy(base, 30)  # and the new replica serves
