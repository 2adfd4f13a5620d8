"""The engine's own speed, without HTTP: orders through the actors, PG and Redis.

    python -m loadtest.bench_engine_core [--orders 400] [--executors 10]

Starts a private PostgreSQL and Redis (temporary folder) and a local Ray,
creates the actors with every simulated latency at zero, the rate limit off
and the market still, then measures:

1. saturation: a burst of orders queued at once; orders per second from the
   first accept to the last final event (the executors' ceiling);
2. overhead: one order at a time (closed loop); accept -> final event is all
   engine overhead here, as there is no simulated delay to subtract: p50/p99;
3. the same closed loop with 10 clients (the executors all busy).

Orders are accepted the way the API does (stored, published, queued) and the
final event is taken from the Redis feed the WebSockets use. Figures are
printed with the machine's core count; the client shares those cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.system import EngineActors
    from engine.settings import EngineSettings

PAIRS = [("SOL", "USDC", "1.5"), ("USDC", "SOL", "200"), ("JUP", "USDC", "100"), ("USDC", "USDT", "500")]
WARM_UP_ORDERS = 20  # connections, imports, caches
CLIENTS = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- the engine


@dataclass
class CoreEngine:
    """PostgreSQL, Redis, Ray and the actors (no Serve), owned by this process."""

    settings: EngineSettings  # with the servers' URLs
    actors: EngineActors
    exit_stack: contextlib.ExitStack


def core_settings(data_dir: Path, executors: int) -> EngineSettings:
    """Every simulated latency zero, the rate limit off, the market still."""
    from engine.settings import EngineSettings, LatencySettings

    return EngineSettings(
        data_dir=data_dir,
        database_url=None,
        redis_url=None,
        latency=LatencySettings.zero(),
        dispatch={"rate_limit_per_minute": 0, "executors": executors},
        market={"enabled": False},
        ray={"dashboard": False, "namespace": "dexengine-bench"},
    )


def start_engine(settings: EngineSettings) -> CoreEngine:
    """The engine from the composition root, without the API: servers -> schema -> Ray -> actors."""
    from runtime.root import running_engine

    stack = contextlib.ExitStack()
    running = stack.enter_context(running_engine(settings, api=False, dashboard=False))
    return CoreEngine(running.settings, running.actors, stack)


def stop_engine(engine: CoreEngine) -> None:
    """The actors, then Ray, then Redis and PostgreSQL."""
    engine.exit_stack.close()


# --------------------------------------------------------------------------- the client


class Feed:
    """Final events of every order, from the same pub/sub the WebSockets read."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus
        self._waiters: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        await self._ready.wait()

    async def _run(self) -> None:
        async with self._bus.subscribe_all() as events:
            self._ready.set()
            async for event in events:
                if event["status"] in ("confirmed", "failed"):
                    waiter = self._waiters.get(event["orderId"])
                    if waiter is not None and not waiter.done():
                        waiter.set_result((time.perf_counter(), event["status"]))

    def expect(self, order_id: str) -> asyncio.Future:
        return self._waiters.setdefault(order_id, asyncio.get_running_loop().create_future())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


class OrderDesk:
    """Accepts orders the way the API does (stored, published, queued) and times them to the end."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    async def open(self) -> None:
        from sim.tokens import TokenRegistry
        from storage.db import open_pool
        from storage.events import EventBus
        from storage.orders import OrderStore
        from storage.queue import OrderQueue
        from storage.redis_client import open_redis

        self.tokens = TokenRegistry()
        self.db = await open_pool(self.settings.database_url, min_size=2, max_size=8)
        self.redis = open_redis(self.settings.redis_url)
        self.store, self.queue, self.bus = OrderStore(self.db), OrderQueue(self.redis), EventBus(self.redis)
        self.feed = Feed(EventBus(open_redis(self.settings.redis_url, socket_timeout=3600)))
        await self.feed.start()

    async def close(self) -> None:
        self.feed.stop()
        await self.redis.aclose()
        await self.db.close()

    async def accept(self, i: int) -> tuple[str, float]:
        from sim.tokens import to_base_units
        from engine.intake import accept_order
        from engine.records import NewOrder

        token_in, token_out, amount = PAIRS[i % len(PAIRS)]
        t_in, t_out = self.tokens[token_in], self.tokens[token_out]
        started = time.perf_counter()
        record, _ = await accept_order(
            self.store, self.bus, self.queue,
            NewOrder(
                token_in=t_in.symbol, token_out=t_out.symbol, mint_in=t_in.mint, mint_out=t_out.mint,
                amount_in=to_base_units(Decimal(amount), t_in), amount_in_decimal=amount, slippage_bps=200,
            ),
            client_id="bench",
        )  # fmt: skip
        self.feed.expect(record.id)
        return record.id, started

    async def one(self, i: int, keep: list[str] | None = None) -> float:
        """One order, accept -> final event, in seconds."""
        order_id, started = await self.accept(i)
        done, _status = await asyncio.wait_for(self.feed.expect(order_id), 60)
        if keep is not None:
            keep.append(order_id)
        return done - started

    async def stages(self, ids: list[str]) -> dict[str, float]:
        """Median time to reach each status from the one before (PG commit times)."""
        gaps: dict[str, list[float]] = {}
        for order_id in ids:
            events = await self.store.history(order_id)
            for a, b in zip(events, events[1:]):
                gaps.setdefault(f"{a.status}->{b.status}", []).append((b.timestamp - a.timestamp).total_seconds())
        return {k: statistics.median(v) * 1000 for k, v in gaps.items()}


# --------------------------------------------------------------------------- the measurements


async def saturation(desk: OrderDesk, orders: int) -> tuple[float, int]:
    """Orders per second from the first accept of a burst to its last final event; confirmed."""
    t0 = time.perf_counter()
    accepted = [await desk.accept(i) for i in range(orders)]
    results = await asyncio.gather(*(asyncio.wait_for(desk.feed.expect(o), 300) for o, _ in accepted))
    t_end = max(done for done, _ in results)
    confirmed = sum(status == "confirmed" for _, status in results)
    return orders / (t_end - t0), confirmed


async def busy_clients(desk: OrderDesk, per_client: int) -> list[float]:
    """``CLIENTS`` closed loops at once: each order's accept -> final event."""

    async def client(k: int, n: int) -> list[float]:
        return [await desk.one(k * 1000 + j) for j in range(n)]

    return [x for xs in await asyncio.gather(*(client(k, per_client) for k in range(CLIENTS))) for x in xs]


async def bench(settings: EngineSettings, orders: int) -> dict[str, Any]:
    desk = OrderDesk(settings)
    await desk.open()
    solo_ids: list[str] = []
    try:
        for i in range(WARM_UP_ORDERS):
            await desk.one(i)
        throughput, confirmed = await saturation(desk, orders)
        solo = [await desk.one(i, solo_ids) for i in range(max(50, orders // 4))]
        solo_stages = await desk.stages(solo_ids)
        busy = await busy_clients(desk, max(10, orders // 20))
    finally:
        await desk.close()
    return {
        "orders": orders,
        "confirmed": confirmed,
        "throughput": throughput,
        "solo_p50_ms": percentile(solo, 0.50) * 1000,
        "solo_p99_ms": percentile(solo, 0.99) * 1000,
        "busy_p50_ms": percentile(busy, 0.50) * 1000,
        "busy_p99_ms": percentile(busy, 0.99) * 1000,
        "busy_throughput": len(busy) / sum(busy) * CLIENTS,
        "solo_mean_ms": statistics.fmean(solo) * 1000,
        "stages": solo_stages,
    }


def print_figures(figures: dict[str, Any], executors: int) -> None:
    cores = os.cpu_count()
    print(f"engine core benchmark ({cores} cores, client on the same machine), {executors} executors,")
    print("latencies zero, rate limit off, market still; accepted as the API does, final event from Redis")
    print(f"  saturation: {figures['orders']} orders queued at once -> {figures['throughput']:.1f} orders/s "
          f"({figures['confirmed']} confirmed)")
    print(f"  overhead, one order at a time: p50 {figures['solo_p50_ms']:.1f} ms, p99 {figures['solo_p99_ms']:.1f} ms")
    print("  where one order's time goes (median ms between commits): " + ", ".join(
        f"{k} {v:.1f}" for k, v in figures["stages"].items()))
    print(f"  10 clients in closed loop: p50 {figures['busy_p50_ms']:.1f} ms, p99 {figures['busy_p99_ms']:.1f} ms, "
          f"~{figures['busy_throughput']:.1f} orders/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--executors", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dexengine-bench-") as tmp:
        engine = start_engine(core_settings(Path(tmp), args.executors))
        try:
            figures = asyncio.run(bench(engine.settings, args.orders))
        finally:
            stop_engine(engine)
    print_figures(figures, args.executors)


if __name__ == "__main__":
    main()
