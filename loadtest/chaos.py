"""``python -m loadtest.chaos --duration 120``: orders under load while everything breaks, then the books are checked.

It starts an engine of its own, in process (PostgreSQL and Redis from the
pip wheels in a temporary data dir, a local Ray with its own temp dir, the
engine's actors, the Serve API on a free port of 127.0.0.1, the market
moving), drives a bounded order load through the API over HTTP (asyncio
httpx clients, a few ``X-Client-Id``s) and follows a sample of the orders on
their WebSockets, and meanwhile injects a seeded, shuffled mix of faults:

* an executor killed mid-order (two at a time), a pool actor, the router,
  the dispatcher, the market maker killed (Ray restarts them);
* Redis restarted, and Redis down for a few seconds;
* PostgreSQL down for a few seconds;
* the Serve replica killed (Serve starts another; WebSocket clients reconnect);
* the whole engine killed outright and started again.

When the load ends it waits until every accepted order is final, stops the
market, and checks from PostgreSQL and the pool actors: no accepted order
lost, no double fill, every history gapless, legal and ending once, fills
consistent with the outcome, each pool's reserves == genesis + its recorded
trades == its last recorded state, and every followed order's WebSocket
events == its recorded history. It prints a summary and exits 1 if any of
that broke (2 if the engine could not be started).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORDERS: list[dict[str, Any]] = [
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 100},
    {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "4", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "1000", "slippageBps": 100},
    {"tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
    {"tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"tokenIn": "SOL", "tokenOut": "USDT", "amountIn": "2", "slippageBps": 100},
    {"tokenIn": "USDC", "tokenOut": "JUP", "amountIn": "200", "slippageBps": 100},
]
FAULTS = [
    "executors", "pool", "router", "dispatcher", "market", "redis_restart", "redis_down",
    "postgres_down", "serve_replica", "engine_restart",
]  # fmt: skip

log = logging.getLogger("chaos")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Tally:
    accepted: list[str] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)  # "503 DATABASE_UNAVAILABLE" -> n
    transport_errors: Counter = field(default_factory=Counter)
    faults: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, note)
    fault_errors: list[str] = field(default_factory=list)
    watched: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # order id -> (seq, status) seen
    ws_reconnects: int = 0
    ws_stalls: int = 0  # sockets silent for 45 s (then reconnected)
    ws_incomplete: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the engine


class Engine:
    """PostgreSQL, Redis, Ray, the actors and Serve, all owned by this process."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.args = args
        self.stack = contextlib.ExitStack()
        self.lock = threading.Lock()
        self.actors: Any = None
        self.settings: Any = None
        self.servers: Any = None

    def start(self) -> str:
        from engine.settings import EngineSettings
        from storage.local import local_servers

        self.servers = self.stack.enter_context(local_servers(self.root / "servers", durable=False))
        asyncio.run(_apply_schema(self.servers.database_url))
        self.settings = EngineSettings(
            database_url=self.servers.database_url,
            redis_url=self.servers.redis_url,
            data_dir=self.root,
            namespace=f"chaos-{uuid.uuid4().hex[:8]}",
            latency={"quote_s": 0.02, "quote_jitter_s": 0.01, "execution_min_s": 0.2, "execution_max_s": 0.4},
            retry={"max_retries": 3, "base_delay_s": 0.5, "factor": 2.0},
            rate_limit_per_minute=0,
            market_enabled=True,
            market_tick_s=0.5,
            sweep_interval_s=2.0,
            api_port=free_port(),
            dashboard=False,
            object_store_mb=256,
            seed=self.args.seed,
        )
        import ray

        from actors.system import start_actors
        from engine.runtime import init_ray
        from serve.deployment import run_serve

        init_ray(self.settings, dashboard=False)
        self.stack.callback(ray.shutdown)
        self.actors = start_actors(self.settings)
        self.stack.callback(self._stop_actors)
        run_serve(self.settings)
        self.stack.callback(_serve_shutdown)
        base = f"http://127.0.0.1:{self.settings.api_port}"
        _wait_healthy(base, 180)
        return base

    def _stop_actors(self) -> None:
        from actors.system import stop_actors

        with self.lock:
            stop_actors(self.actors)

    def close(self) -> None:
        self.stack.close()


async def _apply_schema(url: str) -> None:
    from storage.db import open_pool
    from storage.schema import apply_schema

    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        await apply_schema(pool)
    finally:
        await pool.close()


def _serve_shutdown() -> None:
    from ray import serve

    with contextlib.suppress(Exception):
        serve.shutdown()


def _wait_healthy(base: str, timeout_s: float) -> None:
    import httpx

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=3).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the API at {base} did not become healthy in {timeout_s:g}s")


# --------------------------------------------------------------------------- faults


class Injector(threading.Thread):
    """Injects the next fault of a seeded, shuffled cycle every ``every_s`` seconds."""

    def __init__(
        self, engine: Engine, tally: Tally, *, every_s: float, until: float, seed: int, kinds: list[str]
    ) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.engine = engine
        self.tally = tally
        self.every_s = every_s
        self.until = until
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.stop = threading.Event()
        self.began = time.monotonic()

    def run(self) -> None:
        kinds: list[str] = []
        while not self.stop.wait(self.every_s * self.rng.uniform(0.7, 1.3)):
            if time.monotonic() >= self.until:
                return
            if not kinds:
                kinds = list(self.kinds)
                self.rng.shuffle(kinds)
            kind = kinds.pop()
            began = time.monotonic()
            try:
                note = getattr(self, f"_{kind}")()
            except Exception as exc:  # noqa: BLE001 — report it, keep the run going
                note = f"injection failed: {type(exc).__name__}: {exc}"[:200]
                self.tally.fault_errors.append(f"{kind}: {note}")
            t = began - self.began
            self.tally.faults.append((t, kind, note))
            print(f"  [{t:6.1f}s] fault {kind:<14} {note} ({time.monotonic() - began:.1f}s)", flush=True)

    # each returns a short note
    def _executors(self) -> str:
        import ray

        victims = self.rng.sample(range(len(self.engine.actors.executors)), 2)
        for index in victims:
            ray.kill(self.engine.actors.executors[index], no_restart=False)
        return f"killed executor:{victims[0]} and executor:{victims[1]}"

    def _pool(self) -> str:
        import ray

        pool_id = self.rng.choice(sorted(self.engine.actors.pools))
        ray.kill(self.engine.actors.pools[pool_id], no_restart=False)
        return f"killed pool:{pool_id}"

    def _router(self) -> str:
        import ray

        ray.kill(self.engine.actors.router, no_restart=False)
        return "killed the router"

    def _dispatcher(self) -> str:
        import ray

        ray.kill(self.engine.actors.dispatcher, no_restart=False)
        return "killed the dispatcher"

    def _market(self) -> str:
        import ray

        ray.kill(self.engine.actors.market, no_restart=False)
        return "killed the market maker"

    def _redis_restart(self) -> str:
        self.engine.servers.redis.restart()
        return "restarted Redis"

    def _redis_down(self) -> str:
        down = self.rng.uniform(3.0, 5.0)
        self.engine.servers.redis.restart(downtime_s=down)
        return f"Redis down for {down:.1f}s"

    def _postgres_down(self) -> str:
        down = self.rng.uniform(3.0, 5.0)
        self.engine.servers.postgres.restart(downtime_s=down)
        return f"PostgreSQL down for {down:.1f}s"

    def _serve_replica(self) -> str:
        import ray

        names = [
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and a["name"].startswith("SERVE_REPLICA::")
        ]
        for name in names:
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        return f"killed {len(names)} Serve replica(s)"

    def _engine_restart(self) -> str:
        import ray

        from actors.system import start_actors

        ns = self.engine.settings.namespace
        with self.engine.lock:
            for handle in self.engine.actors.all():
                ray.kill(handle, no_restart=True)
            end = time.monotonic() + 60
            while any(a["namespace"] == ns for a in ray.util.list_named_actors(all_namespaces=True)):
                if time.monotonic() > end:
                    raise RuntimeError("the killed actors' names were not released")
                time.sleep(0.2)
            time.sleep(1.0)  # no engine at all for a moment: the API keeps accepting
            self.engine.actors = start_actors(self.engine.settings)
        return "killed every engine actor and started the engine again"


# --------------------------------------------------------------------------- load


async def drive_load(base: str, tally: Tally, *, until: float, rate: float, clients: int, watch_every: int,
                     watch_until: list[float], seed: int) -> set[asyncio.Task]:  # fmt: skip
    """Submit orders until ``until``; returns the WebSocket watchers still running."""
    import httpx

    rng = random.Random(seed)
    watchers: set[asyncio.Task] = set()
    slots = asyncio.Semaphore(40)
    period = clients / rate
    count = 0

    async def client_loop(index: int, http: httpx.AsyncClient) -> None:
        nonlocal count
        headers = {"X-Client-Id": f"chaos-{index}"}
        await asyncio.sleep(index * period / clients)
        while time.monotonic() < until:
            began = time.monotonic()
            body = rng.choice(ORDERS)
            try:
                reply = await http.post("/api/orders/execute", json=body, headers=headers)
            except httpx.HTTPError as exc:
                tally.transport_errors[type(exc).__name__] += 1
            else:
                if reply.status_code in (200, 202):
                    order_id = reply.json()["orderId"]
                    tally.accepted.append(order_id)
                    count += 1
                    if count % watch_every == 0 and not slots.locked():
                        task = asyncio.ensure_future(watch(order_id))
                        watchers.add(task)
                        task.add_done_callback(watchers.discard)
                else:
                    try:
                        code = reply.json()["error"]["code"]
                    except (ValueError, KeyError, TypeError):
                        code = "?"
                    tally.rejected[f"{reply.status_code} {code}"] += 1
            await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))

    async def watch(order_id: str) -> None:
        """Follow one order to its final event, reconnecting (from the replay) when dropped."""
        import websockets

        async with slots:
            url = base.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws"
            seen: list[tuple[int, str]] = []
            tally.watched[order_id] = seen
            first, done = True, False
            try:
                while not done and time.monotonic() < watch_until[0]:
                    if not first:
                        tally.ws_reconnects += 1
                    first = False
                    try:
                        async with websockets.connect(
                            url, open_timeout=10, additional_headers={"X-Client-Id": "chaos-ws"}
                        ) as ws:
                            while True:
                                # the stream re-reads PostgreSQL at least every 15 s: a socket
                                # silent for longer is dead (its replica gone): reconnect
                                event = json.loads(await asyncio.wait_for(ws.recv(), 45))
                                if event.get("type") != "status":
                                    continue
                                last = seen[-1][0] if seen else 0
                                if event["seq"] > last:
                                    seen.append((event["seq"], event["status"]))
                    except websockets.ConnectionClosed as closed:
                        done = closed.rcvd is not None and closed.rcvd.code == 1000
                    except asyncio.TimeoutError:
                        tally.ws_stalls += 1
                    except (OSError, websockets.WebSocketException):
                        pass
                    if not done:
                        await asyncio.sleep(0.5)
            finally:
                if not done:
                    tally.ws_incomplete.append(order_id)

    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        await asyncio.gather(*(client_loop(i, http) for i in range(clients)))
    return watchers


# --------------------------------------------------------------------------- the books


def check_books(engine: Engine, tally: Tally, drain_s: float) -> dict[str, Any]:
    """Wait until every accepted order is final, then count every broken invariant."""
    import psycopg
    import ray

    from sim.orders import OrderStatus, can_transition
    from sim.pools import restore_pool

    url = engine.settings.database_url
    accepted = set(tally.accepted)
    end = time.monotonic() + drain_s
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = dict(conn.execute("SELECT id::text, status FROM orders").fetchall())
            unfinished = [i for i in accepted if i not in rows or not OrderStatus(rows[i]).is_final]
            # orders stored without a 2xx run too: wait for them, they trade with the pools
            running = [i for i, status in rows.items() if not OrderStatus(status).is_final]
            if (not unfinished and not running) or time.monotonic() > end:
                break
            time.sleep(0.5)
        # the market must be still while the pools are compared with PostgreSQL
        with contextlib.suppress(Exception):
            ray.get(engine.actors.market.stop.remote(), timeout=30)
        time.sleep(1.0)
        result: dict[str, Any] = {"unfinished": unfinished}
        result["lost"] = [i for i in accepted if i not in rows]
        result["stored_without_2xx"] = len(set(rows) - accepted)
        result["statuses"] = Counter(rows[i] for i in accepted if i in rows)
        result["errors"] = Counter(
            code for (code,) in conn.execute(
                "SELECT error_code FROM orders WHERE status = 'failed' AND id = ANY(%s::uuid[])", (list(accepted),)
            ).fetchall()
        )  # fmt: skip
        result["failure_messages"] = Counter(
            f"{code}: {(message or '')[:100]}" for code, message in conn.execute(
                "SELECT error_code, error_message FROM orders WHERE status = 'failed' AND id = ANY(%s::uuid[])",
                (list(accepted),),
            ).fetchall()
        )  # fmt: skip
        result["double_fills"] = conn.execute(
            "SELECT count(*) FROM (SELECT order_id, leg FROM pool_trades WHERE order_id IS NOT NULL"
            " GROUP BY order_id, leg HAVING count(*) > 1) d"
        ).fetchone()[0]
        result["confirmed_without_fill"] = conn.execute(
            "SELECT count(*) FROM orders o WHERE o.status = 'confirmed'"
            " AND NOT EXISTS (SELECT 1 FROM pool_trades t WHERE t.order_id = o.id)"
        ).fetchone()[0]
        result["failed_with_fill"] = conn.execute(
            "SELECT count(DISTINCT o.id) FROM orders o JOIN pool_trades t ON t.order_id = o.id"
            " WHERE o.status = 'failed' AND coalesce(o.error_code, '') <> 'PARTIAL_FILL'"
        ).fetchone()[0]
        histories: dict[str, list[tuple[int, str]]] = defaultdict(list)
        stamps: dict[str, list[Any]] = defaultdict(list)
        for order_id, seq, status, created in conn.execute(
            "SELECT order_id::text, seq, status, created_at FROM order_status_history ORDER BY order_id, seq"
        ):
            histories[order_id].append((seq, status))
            stamps[order_id].append(created)
        bad_history = []
        for order_id, events in histories.items():
            statuses = [OrderStatus(s) for _, s in events]
            ok = (
                [s for s, _ in events] == list(range(1, len(events) + 1))
                and statuses[0] == OrderStatus.PENDING
                and all(can_transition(a, b) for a, b in zip(statuses, statuses[1:], strict=False))
                and sum(s.is_final for s in statuses) <= 1
                and (not any(s.is_final for s in statuses) or statuses[-1].is_final)
                and stamps[order_id] == sorted(stamps[order_id])
                and (order_id not in rows or rows[order_id] == events[-1][1])
            )
            if not ok:
                bad_history.append(order_id)
        result["bad_history"] = bad_history
        result["orders_without_history"] = len(set(rows) - set(histories))
        pools_off = {}
        for pool_id, handle in engine.actors.pools.items():
            (genesis,) = conn.execute("SELECT snapshot FROM pool_genesis WHERE pool_id = %s", (pool_id,)).fetchone()
            expected = dict(restore_pool(genesis).reserves())
            for token_in, amount_in, token_out, amount_out in conn.execute(
                "SELECT token_in, amount_in, token_out, amount_out FROM pool_trades WHERE pool_id = %s", (pool_id,)
            ):
                expected[token_in] += int(amount_in)
                expected[token_out] -= int(amount_out)
            last = conn.execute(
                "SELECT state_after FROM pool_trades WHERE pool_id = %s ORDER BY seq DESC LIMIT 1", (pool_id,)
            ).fetchone()
            recorded = restore_pool(last[0] if last else genesis).reserves()
            actual = _call_until_back(handle.reserves.remote)
            if not actual == expected == recorded:
                pools_off[pool_id] = {"actor": actual, "genesis+trades": expected, "recorded": recorded}
        result["pools_off"] = pools_off
        result["trades"] = conn.execute("SELECT kind, count(*) FROM pool_trades GROUP BY kind").fetchall()
    ws_mismatch = []
    for order_id, seen in tally.watched.items():
        if order_id in tally.ws_incomplete:
            continue
        if seen != histories.get(order_id):
            ws_mismatch.append(order_id)
    result["ws_mismatch"] = ws_mismatch
    result["ws_detail"] = {i: {"ws": tally.watched[i], "history": histories.get(i)} for i in ws_mismatch[:3]}
    return result


def _call_until_back(call: Any, timeout_s: float = 60.0) -> Any:
    import ray

    end = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get(call(), timeout=max(1.0, end - time.monotonic()))
        except ray.exceptions.RayActorError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults (default 120)")
    parser.add_argument("--rate", type=float, default=5.0, help="orders submitted per second (default 5)")
    parser.add_argument("--clients", type=int, default=4, help="API clients (X-Client-Ids) sharing the rate")
    parser.add_argument("--fault-every", type=float, default=9.0, help="seconds between faults, +/- 30 %%")
    parser.add_argument("--watch-every", type=int, default=4, help="follow every Nth order on its WebSocket")
    parser.add_argument("--drain", type=float, default=180.0, help="seconds to wait for accepted orders to end")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"which faults, comma-separated (default: all: {','.join(FAULTS)})")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (PostgreSQL, Redis, Ray logs)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.clients <= 0 or args.fault_every <= 0:
        parser.error("--duration, --rate, --clients and --fault-every must be positive")
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    if not kinds or set(kinds) - set(FAULTS):
        parser.error(f"--faults: choose among {', '.join(FAULTS)}")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root = Path(tempfile.mkdtemp(prefix="dexengine-chaos-"))
    # A Ray of our own: never join a cluster someone started with `ray start`.
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rc-", dir="/tmp")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    engine = Engine(root, args)
    tally = Tally()
    started = time.monotonic()
    try:
        print(f"chaos: starting an engine of its own in {root} ...", flush=True)
        try:
            base = engine.start()
        except Exception as exc:  # noqa: BLE001
            print(f"chaos: the engine did not start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"chaos: engine up at {base} in {time.monotonic() - started:.0f}s; "
              f"{args.duration:g}s of load at {args.rate:g} orders/s with faults every ~{args.fault_every:g}s",
              flush=True)  # fmt: skip
        load_began = time.monotonic()
        until = load_began + args.duration
        injector = Injector(engine, tally, every_s=args.fault_every, until=until - 5, seed=args.seed, kinds=kinds)
        injector.start()
        watch_until = [until + args.drain]

        async def run_load() -> None:
            watchers = await drive_load(
                base, tally, until=until, rate=args.rate, clients=args.clients, watch_every=args.watch_every,
                watch_until=watch_until, seed=args.seed,
            )  # fmt: skip
            injector.stop.set()
            await asyncio.to_thread(injector.join, 120)
            if watchers:
                watch_until[0] = time.monotonic() + args.drain
                await asyncio.wait(watchers, timeout=args.drain + 30)

        asyncio.run(run_load())
        load_s = min(time.monotonic() - load_began, args.duration)
        print(f"chaos: load done ({len(tally.accepted)} accepted in {load_s:.0f}s); checking the books ...", flush=True)
        books = check_books(engine, tally, args.drain)
        return report(tally, books, load_s, args)
    finally:
        with contextlib.suppress(Exception):
            engine.close()
        if args.keep:
            print(f"chaos: data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


def report(tally: Tally, books: dict[str, Any], load_s: float, args: argparse.Namespace) -> int:
    statuses = books["statuses"]
    broken = {
        "lost (accepted, not in PostgreSQL)": len(books["lost"]),
        "unfinished (accepted, not final)": len(books["unfinished"]),
        "double fills": books["double_fills"],
        "histories with gaps / illegal steps": len(books["bad_history"]),
        "orders without history": books["orders_without_history"],
        "confirmed without a fill": books["confirmed_without_fill"],
        "failed with a fill": books["failed_with_fill"],
        "pools off their books": len(books["pools_off"]),
        "WebSocket streams != history": len(books["ws_mismatch"]),
        "WebSocket streams never finished": len(tally.ws_incomplete),
    }
    faults = Counter(kind for _, kind, _ in tally.faults)
    lines = [
        "",
        f"chaos summary ({load_s:.0f}s of load, seed {args.seed})",
        f"  faults injected     {len(tally.faults)}: " + ", ".join(f"{k} x{n}" for k, n in sorted(faults.items())),
        f"  orders accepted     {len(tally.accepted)}",
        f"    confirmed         {statuses.get('confirmed', 0)}",
        f"    failed            {statuses.get('failed', 0)}"
        + (f"  ({', '.join(f'{c} {n}' for c, n in books['errors'].most_common())})" if books["errors"] else ""),
        f"    lost              {len(books['lost']) + len(books['unfinished'])}",
        f"  double fills        {books['double_fills']}",
        f"  refused             {sum(tally.rejected.values())}"
        + (f"  ({', '.join(f'{c} x{n}' for c, n in tally.rejected.most_common())})" if tally.rejected else ""),
        f"  no answer           {sum(tally.transport_errors.values())}"
        + (f"  ({', '.join(f'{c} x{n}' for c, n in tally.transport_errors.most_common())})"
           if tally.transport_errors else ""),
        f"  stored without 2xx  {books['stored_without_2xx']}  (requests that got no answer or a 503 at commit time)",
        "  pool trades         " + ", ".join(f"{k} {n}" for k, n in sorted(books["trades"])),
        f"  WebSockets          {len(tally.watched)} orders followed, {tally.ws_reconnects} reconnects,"
        f" {tally.ws_stalls} silent sockets dropped",
    ]
    if tally.fault_errors:
        lines.append(f"  injections that failed: {tally.fault_errors}")
    failed = {k: v for k, v in broken.items() if v}
    lines.append("  invariants          " + ("all hold" if not failed else "BROKEN: " + json.dumps(failed)))
    for key in ("lost", "unfinished", "bad_history", "ws_mismatch"):
        if books[key]:
            lines.append(f"    {key}: {books[key][:10]}")
    if books["ws_mismatch"]:
        lines.append(f"    ws_detail: {json.dumps(books['ws_detail'])[:3000]}")
    if books["failure_messages"]:
        lines.append("  failure reasons:")
        lines += [f"    {n:4d}  {m}" for m, n in books["failure_messages"].most_common(8)]
    if books["pools_off"]:
        lines.append(f"    pools_off: {json.dumps(books['pools_off'], default=str)[:2000]}")
    print("\n".join(lines), flush=True)
    if args.json:
        summary = {
            "loadS": load_s, "seed": args.seed, "faults": tally.faults, "accepted": len(tally.accepted),
            "statuses": dict(statuses), "errors": dict(books["errors"]), "rejected": dict(tally.rejected),
            "transportErrors": dict(tally.transport_errors), "invariants": broken,
            "storedWithout2xx": books["stored_without_2xx"], "wsFollowed": len(tally.watched),
            "wsReconnects": tally.ws_reconnects,
        }  # fmt: skip
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
