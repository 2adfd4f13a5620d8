"""WebSocket fan-out: N order streams held on one API process, and how fast a published event reaches them.

    python -m loadtest.bench_fanout [--watchers 2000] [--events 5] [--rate 1000] [TREE ...]

Each TREE is a source tree whose API is measured (default: this one; an
exported older commit measures the code before a change). Its API runs alone
in a child process (uvicorn, the tree's own ``open_services`` with the
in-process engine port), on one PostgreSQL and one Redis (``DATABASE_URL`` /
``REDIS_URL``, else local ones started here, in a database of its own).

Two scenarios, each with ``--watchers`` WebSockets held on ``/api/orders/{id}/ws``:

* ``shared``: every socket follows one order; ``--events`` status changes are
  committed, then published, one at a time: N deliveries each;
* ``own``: one order per socket; one status change per order is committed,
  then all are published at ``--rate`` per second.

Delivery latency runs from just before ``EventBus.publish`` to the client's
receipt of the message; the clients and the publisher share this process's
event loop, and every process shares the machine's cores (their cost is in
the figures). The streams' PostgreSQL polling is pushed past the run
(``ws_poll_s`` 600 s), so every event measured came through Redis. While the
sockets are held it reads the Redis connections (INFO), the pub/sub
connections (CLIENT LIST TYPE pubsub), the channels and the API process's
memory. It prints a table with each tree's commit and whether it was clean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis.asyncio as aioredis
import websockets

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
POLL_S = 600.0


def tree_commit(tree: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return (tree / ".commit").read_text().strip() if (tree / ".commit").exists() else "not a git tree"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return f"{commit} ({'NOT clean' if dirty else 'clean'})"


# --------------------------------------------------------------------------- the API, in a child process


def serve(database_url: str, redis_url: str, port: int) -> None:
    """The tree's API as a replica runs it (imports resolve in the tree on PYTHONPATH)."""
    import uvicorn

    from engine.local_gateway import LocalGateway
    from engine.settings import ApiSettings
    from runtime.api_services import open_services
    from serve.app import create_app

    gateway = LocalGateway()
    options = ApiSettings(auth="off", ws_max_per_client=0, ws_poll_s=POLL_S, ws_max_poll_s=POLL_S, console=False)

    async def services() -> Any:
        return await open_services(database_url, redis_url, tokens=gateway.tokens, engine=gateway, options=options)

    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning",
                            ws_ping_interval=None, backlog=4096)  # fmt: skip
    uvicorn.Server(config).run()


@contextlib.contextmanager
def api_process(tree: Path, database_url: str, redis_url: str) -> Any:
    from localservers.ports import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    child = subprocess.Popen([sys.executable, str(HERE), "--serve", database_url, redis_url, str(port)],
                             cwd=tree, env=env)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                    break
            if child.poll() is not None:
                raise RuntimeError(f"the API of {tree} exited with {child.returncode}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", psutil.Process(child.pid)
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --------------------------------------------------------------------------- watchers


class Watchers:
    """Held order streams; every message's arrival time by (orderId, seq)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.arrived: dict[tuple[str, int], list[float]] = {}
        self.by_seq: Counter[int] = Counter()
        self.connect_s: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, order_ids: list[str], parallel: int = 100) -> float:
        began = time.perf_counter()
        gate = asyncio.Semaphore(parallel)
        ready = [asyncio.get_running_loop().create_future() for _ in order_ids]
        self._tasks = [asyncio.ensure_future(self._watch(o, f, gate)) for o, f in zip(order_ids, ready)]
        await asyncio.gather(*ready)
        return time.perf_counter() - began

    async def _watch(self, order_id: str, ready: asyncio.Future[None], gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                began = time.perf_counter()
                ws = await websockets.connect(f"ws://{self.host}/api/orders/{order_id}/ws", open_timeout=120,
                                              max_size=None, ping_interval=None)  # fmt: skip
                self._arrive(json.loads(await ws.recv()))
                self.connect_s.append(time.perf_counter() - began)
            ready.set_result(None)
            async with ws:
                async for raw in ws:
                    self._arrive(json.loads(raw))
        except Exception as exc:  # noqa: BLE001 — a watcher that fails is counted by what it missed
            if not ready.done():
                ready.set_exception(exc)

    def _arrive(self, message: dict[str, Any]) -> None:
        if message.get("type") == "status":
            self.arrived.setdefault((message["orderId"], message["seq"]), []).append(time.perf_counter())
            self.by_seq[message["seq"]] += 1

    def count(self, key: tuple[str, int]) -> int:
        return len(self.arrived.get(key, ()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def wait_for(done: Any, timeout_s: float = 60.0) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# --------------------------------------------------------------------------- figures


async def redis_figures(redis: aioredis.Redis) -> dict[str, int]:
    info = await redis.info("clients")
    [(_, all_subscribers)] = await redis.pubsub_numsub("orders:all")
    return {
        "clients": int(info["connected_clients"]),
        "pubsubConnections": len(await redis.client_list(_type="pubsub")),
        "orderChannels": len([c for c in await redis.pubsub_channels("orders:*") if c != b"orders:all"]),
        "allSubscribers": int(all_subscribers),
    }


def percentiles_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    data = sorted(v * 1000 for v in values)

    def at(q: float) -> float:
        return data[min(len(data) - 1, int(round(q * (len(data) - 1))))]

    return {"p50": at(0.50), "p99": at(0.99), "max": data[-1]}


# --------------------------------------------------------------------------- scenarios


class Desk:
    """Orders and their status changes, committed and then published, as an executor does."""

    def __init__(self, db: Any, redis: aioredis.Redis) -> None:
        from storage.events import EventBus
        from storage.orders import OrderStore

        self.store, self.bus = OrderStore(db), EventBus(redis)

    async def new_orders(self, n: int) -> list[str]:
        from storage.orders import NewOrder

        order = NewOrder(token_in="SOL", token_out="USDC", mint_in="So11111111111111111111111111111111111111112",
                         mint_out="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", amount_in=1_000_000_000,
                         amount_in_decimal="1", slippage_bps=100)  # fmt: skip
        gate = asyncio.Semaphore(8)

        async def one() -> str:
            async with gate:
                return (await self.store.create_order(order))[0].id

        return list(await asyncio.gather(*(one() for _ in range(n))))

    async def commit(self, order_id: str, seq: int) -> Any:
        from sim.orders import OrderStatus

        status = OrderStatus.ROUTING if seq % 2 == 0 else OrderStatus.PENDING  # seq 1 is pending
        return await self.store.transition(order_id, status, attempt=1, details={"bench": seq})

    async def publish(self, event: Any) -> float:
        began = time.perf_counter()
        await self.bus.publish(event)
        return began


async def held(watchers: Watchers, redis: aioredis.Redis, server: psutil.Process, connect_s: float) -> dict[str, Any]:
    return {"connectS": connect_s, "connectMs": percentiles_ms(watchers.connect_s), **await redis_figures(redis),
            "apiRssMiB": server.memory_info().rss / 2**20}  # fmt: skip


def cpu_s(server: psutil.Process) -> float:
    times = server.cpu_times()
    return times.user + times.system


async def shared(host: str, desk: Desk, redis: aioredis.Redis, server: psutil.Process, n: int,
                 events: int) -> dict[str, Any]:  # fmt: skip
    """N sockets on one order; ``events`` changes published one at a time."""
    [order_id] = await desk.new_orders(1)
    watchers = Watchers(host)
    try:
        figures = await held(watchers, redis, server, await watchers.open([order_id] * n))
        latencies: list[float] = []
        missed, cpu_before = 0, cpu_s(server)
        for seq in range(2, events + 2):
            published = await desk.publish(await desk.commit(order_id, seq))
            key = (order_id, seq)
            await wait_for(lambda: watchers.count(key) >= n, 30)
            latencies += [t - published for t in watchers.arrived.get(key, [])]
            missed += n - watchers.count(key)
            await asyncio.sleep(0.2)
        cpu = cpu_s(server) - cpu_before
    finally:
        await watchers.close()
    return {"scenario": "shared", "watchers": n, **figures, "deliveries": len(latencies), "missed": missed,
            "deliveryMs": percentiles_ms(latencies), "apiCpuS": cpu}  # fmt: skip


async def own(host: str, desk: Desk, redis: aioredis.Redis, server: psutil.Process, n: int,
              rate: float) -> dict[str, Any]:  # fmt: skip
    """One socket per order; one change per order, published at ``rate`` per second."""
    order_ids = await desk.new_orders(n)
    watchers = Watchers(host)
    try:
        figures = await held(watchers, redis, server, await watchers.open(order_ids))
        committed = [await desk.commit(order_id, 2) for order_id in order_ids]
        published: dict[str, float] = {}
        cpu_before, began = cpu_s(server), time.perf_counter()
        for i, event in enumerate(committed):
            ahead = began + i / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            published[event.order_id] = await desk.publish(event)
        await wait_for(lambda: watchers.by_seq[2] >= n, 60)
        cpu = cpu_s(server) - cpu_before
        latencies = [t - published[o] for o in order_ids for t in watchers.arrived.get((o, 2), [])]
    finally:
        await watchers.close()
    return {"scenario": f"own @{rate:g}/s", "watchers": n, **figures, "deliveries": len(latencies),
            "missed": n - len(latencies), "deliveryMs": percentiles_ms(latencies), "apiCpuS": cpu}  # fmt: skip


async def settle(redis: aioredis.Redis, before: dict[str, int]) -> None:
    """Wait (a while at most) until the API gave back what the last scenario's sockets held in Redis."""
    for _ in range(300):
        if (await redis_figures(redis))["pubsubConnections"] <= before["pubsubConnections"] + 1:
            return
        await asyncio.sleep(0.1)


async def measure_tree(tree: Path, urls: tuple[str, str], args: argparse.Namespace) -> list[dict[str, Any]]:
    from storage.db import open_pool
    from storage.redis_client import open_redis

    database_url, redis_url = urls
    db = await open_pool(database_url, min_size=1, max_size=8)
    redis = open_redis(redis_url)
    rows = []
    try:
        desk = Desk(db, redis)
        with api_process(tree, database_url, redis_url) as (host, server):
            idle = await redis_figures(redis)
            rows.append(await shared(host, desk, redis, server, args.watchers, args.events))
            await settle(redis, idle)
            rows.append(await own(host, desk, redis, server, args.watchers, args.rate))
            await settle(redis, idle)
    finally:
        await redis.aclose()
        await db.close()
    commit = tree_commit(tree)
    return [{"tree": str(tree), "commit": commit, **row} for row in rows]


# --------------------------------------------------------------------------- database, report, main


@contextlib.contextmanager
def bench_database(url: str) -> Any:
    """A database of its own on the server at ``url``, with the schema; dropped at the end."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from storage.schema import apply_schema

    name = f"dexengine_fanout_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    own_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}")) if "://" in url else make_conninfo(url, dbname=name)

    async def migrate() -> None:
        async with await psycopg.AsyncConnection.connect(own_url, autocommit=True) as conn:
            await apply_schema(conn)

    try:
        asyncio.run(migrate())
        yield own_url
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nfan-out: {args.watchers} held order streams on one API process; shared: {args.events} events on "
          f"one order; own: one event per order at {args.rate:g}/s; {psutil.cpu_count()} cores, "
          f"load1 {os.getloadavg()[0]:.2f}; bench from {tree_commit(REPO)}")  # fmt: skip
    head = ("commit", "scenario", "connect s", "redis clients", "pubsub conns", "order chans", "delivered",
            "missed", "p50 ms", "p99 ms", "max ms", "API RSS MiB", "API CPU s")  # fmt: skip
    print(" | ".join(head))
    for r in rows:
        d = r["deliveryMs"]
        cells = (r["commit"], r["scenario"], fmt(r["connectS"]), str(r["clients"]), str(r["pubsubConnections"]),
                 str(r["orderChannels"]), str(r["deliveries"]), str(r["missed"]), fmt(d["p50"]), fmt(d["p99"]),
                 fmt(d["max"]), fmt(r["apiRssMiB"], 0), fmt(r["apiCpuS"], 2))  # fmt: skip
        print(" | ".join(cells))
    for tree in dict.fromkeys(r["tree"] for r in rows):
        print(f"  tree {tree}: {tree_commit(Path(tree))}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[REPO])
    parser.add_argument("--watchers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from localservers import local_servers

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dexengine-fanout-") as tmp:
        given = os.environ.get("DATABASE_URL") or None, os.environ.get("REDIS_URL") or None
        with local_servers(Path(tmp), *given, durable=False) as servers, bench_database(servers.database_url) as db:
            for tree in args.trees:
                rows += asyncio.run(measure_tree(tree.resolve(), (db, servers.redis_url), args))
    report(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
