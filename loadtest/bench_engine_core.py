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
import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PAIRS = [("SOL", "USDC", "1.5"), ("USDC", "SOL", "200"), ("JUP", "USDC", "100"), ("USDC", "USDT", "500")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Feed:
    """Final events of every order, from the same pub/sub the WebSockets read."""

    def __init__(self, bus) -> None:
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


async def bench(settings, orders: int) -> dict[str, float]:
    from sim.tokens import TokenRegistry, to_base_units
    from storage.db import open_pool
    from storage.events import EventBus
    from storage.orders import NewOrder, OrderStore
    from storage.queue import OrderQueue
    from storage.redis_client import open_redis

    tokens = TokenRegistry()
    db = await open_pool(settings.database_url, min_size=2, max_size=8)
    redis = open_redis(settings.redis_url)
    store, queue, bus = OrderStore(db), OrderQueue(redis), EventBus(redis)
    feed = Feed(EventBus(open_redis(settings.redis_url, socket_timeout=3600)))
    await feed.start()

    async def accept(i: int) -> tuple[str, float]:
        token_in, token_out, amount = PAIRS[i % len(PAIRS)]
        t_in, t_out = tokens[token_in], tokens[token_out]
        started = time.perf_counter()
        record, event = await store.create_order(
            NewOrder(
                token_in=t_in.symbol, token_out=t_out.symbol, mint_in=t_in.mint, mint_out=t_out.mint,
                amount_in=to_base_units(Decimal(amount), t_in), amount_in_decimal=amount, slippage_bps=200,
            ),
            idempotency_key=None, request_hash=None, client_id="bench",
        )  # fmt: skip
        feed.expect(record.id)
        await bus.publish(event)
        await queue.enqueue(record.id)
        return record.id, started

    solo_ids: list[str] = []

    async def one(i: int, keep: list[str] | None = None) -> float:
        order_id, started = await accept(i)
        done, _status = await asyncio.wait_for(feed.expect(order_id), 60)
        if keep is not None:
            keep.append(order_id)
        return done - started

    async def stages(ids: list[str]) -> dict[str, float]:
        """Median time to reach each status from the one before (PG commit times)."""
        gaps: dict[str, list[float]] = {}
        for order_id in ids:
            events = await store.history(order_id)
            for a, b in zip(events, events[1:]):
                gaps.setdefault(f"{a.status}->{b.status}", []).append((b.timestamp - a.timestamp).total_seconds())
        return {k: statistics.median(v) * 1000 for k, v in gaps.items()}

    try:
        for i in range(20):  # warm-up: connections, imports, JIT-free but cache-warm
            await one(i)
        # 1. saturation
        t0 = time.perf_counter()
        accepted = [await accept(i) for i in range(orders)]
        results = await asyncio.gather(*(asyncio.wait_for(feed.expect(o), 300) for o, _ in accepted))
        t_end = max(done for done, _ in results)
        confirmed = sum(status == "confirmed" for _, status in results)
        throughput = orders / (t_end - t0)
        # 2. overhead, one at a time
        solo = [await one(i, solo_ids) for i in range(max(50, orders // 4))]
        solo_stages = await stages(solo_ids)
        # 3. ten clients in closed loop
        async def client(k: int, n: int) -> list[float]:
            return [await one(k * 1000 + j) for j in range(n)]

        per_client = max(10, orders // 20)
        busy = [x for xs in await asyncio.gather(*(client(k, per_client) for k in range(10))) for x in xs]
    finally:
        feed.stop()
        await redis.aclose()
        await db.close()
    return {
        "orders": orders,
        "confirmed": confirmed,
        "throughput": throughput,
        "solo_p50_ms": percentile(solo, 0.50) * 1000,
        "solo_p99_ms": percentile(solo, 0.99) * 1000,
        "busy_p50_ms": percentile(busy, 0.50) * 1000,
        "busy_p99_ms": percentile(busy, 0.99) * 1000,
        "busy_throughput": len(busy) / sum(busy) * 10,
        "solo_mean_ms": statistics.fmean(solo) * 1000,
        "stages": solo_stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--executors", type=int, default=10)
    args = parser.parse_args()

    import ray

    from actors.system import start_actors, stop_actors
    from engine.runtime import init_ray, servers
    from engine.settings import EngineSettings, LatencySettings

    with tempfile.TemporaryDirectory(prefix="dexengine-bench-") as tmp:
        base = EngineSettings(
            data_dir=Path(tmp),
            database_url=None,
            redis_url=None,
            latency=LatencySettings.zero(),
            rate_limit_per_minute=0,
            market_enabled=False,
            executors=args.executors,
            dashboard=False,
            namespace="dexengine-bench",
        )
        with servers(base) as settings:
            init_ray(settings, dashboard=False)
            actors = start_actors(settings)
            try:
                figures = asyncio.run(bench(settings, args.orders))
            finally:
                stop_actors(actors)
                ray.shutdown()
    cores = os.cpu_count()
    print(f"engine core benchmark ({cores} cores, client on the same machine), {args.executors} executors,")
    print("latencies zero, rate limit off, market still; accepted as the API does, final event from Redis")
    print(f"  saturation: {figures['orders']} orders queued at once -> {figures['throughput']:.1f} orders/s "
          f"({figures['confirmed']} confirmed)")
    print(f"  overhead, one order at a time: p50 {figures['solo_p50_ms']:.1f} ms, p99 {figures['solo_p99_ms']:.1f} ms")
    print("  where one order's time goes (median ms between commits): " + ", ".join(
        f"{k} {v:.1f}" for k, v in figures["stages"].items()))
    print(f"  10 clients in closed loop: p50 {figures['busy_p50_ms']:.1f} ms, p99 {figures['busy_p99_ms']:.1f} ms, "
          f"~{figures['busy_throughput']:.1f} orders/s")


if __name__ == "__main__":
    main()
