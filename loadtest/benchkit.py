"""Pieces of the benchmark: an asyncio order client, process CPU and memory, percentiles.

The client is plain asyncio (httpx for HTTP, ``websockets`` for the status
stream): one process, one event loop, no Locust, so that timestamps are
taken right where a message arrives. The engine's event timestamps are set
by PostgreSQL (``clock_timestamp()`` at the insert of the history row, just
before commit) and the client reads ``time.time()``: the same machine, the
same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import psutil
import websockets

FINAL = ("confirmed", "failed")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values: Iterable[float], q: float) -> float | None:
    data = [v for v in values if v is not None]
    return float(np.percentile(data, q)) if data else None


def stats_ms(values_s: Iterable[float]) -> dict[str, Any]:
    data = [v * 1000 for v in values_s if v is not None]
    if not data:
        return {"n": 0, "p50": None, "p99": None, "mean": None, "max": None}
    arr = np.asarray(data)
    return {
        "n": len(data),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


# --------------------------------------------------------------------------- orders


# small orders both ways, so the pools stay balanced when the market is off
BALANCED = [
    ("SOL", "USDC", (0.2, 1.5)),
    ("USDC", "SOL", (30.0, 225.0)),
    ("SOL", "USDC", (0.2, 1.5)),
    ("USDC", "SOL", (30.0, 225.0)),
    ("JUP", "USDC", (30.0, 250.0)),
    ("USDC", "JUP", (25.0, 200.0)),
]


def order_body(rng: random.Random, i: int, slippage_bps: int = 300) -> dict[str, Any]:
    token_in, token_out, (low, high) = BALANCED[i % len(BALANCED)]
    amount = f"{rng.uniform(low, high):.4f}"
    return {"type": "market", "tokenIn": token_in, "tokenOut": token_out, "amountIn": amount,
            "slippageBps": slippage_bps}  # fmt: skip


@dataclass
class Event:
    seq: int
    status: str
    committed: float  # server timestamp (commit in PostgreSQL)
    received: float  # client time.time() on arrival
    details: dict[str, Any]


@dataclass
class OrderRun:
    """One order, followed from POST to its final event."""

    body: dict[str, Any]
    posted: float = 0.0  # before the POST
    accepted: float = 0.0  # the 202 arrived
    opened: float = 0.0  # the WebSocket handshake completed
    done: float = 0.0  # the final event arrived
    order_id: str | None = None
    events: list[Event] = field(default_factory=list)
    error: str | None = None

    @property
    def final(self) -> Event | None:
        return self.events[-1] if self.events and self.events[-1].status in FINAL else None

    @property
    def started_at(self) -> float | None:
        """When the dispatcher started it (the first routing event says)."""
        for e in self.events:
            if e.status == "routing" and isinstance(e.details.get("startedAt"), int | float):
                return float(e.details["startedAt"])
        return None

    @property
    def pending_at(self) -> float | None:
        return self.events[0].committed if self.events and self.events[0].seq == 1 else None

    def live(self) -> list[Event]:
        """Events committed after the socket was open: their delivery is a latency."""
        return [e for e in self.events if e.committed >= self.opened]


class OrderClient:
    """POST an order, then follow its WebSocket to the end."""

    def __init__(self, base: str, *, max_connections: int = 200) -> None:
        self.base = base.rstrip("/")
        self.ws_base = self.base.replace("http", "ws", 1)
        self.http = httpx.AsyncClient(
            base_url=self.base,
            timeout=60,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self, body: dict[str, Any]) -> OrderRun:
        run = OrderRun(body=body, posted=time.time())
        reply = await self.http.post("/api/orders/execute", json=body)
        run.accepted = time.time()
        if reply.status_code != 202:
            run.error = f"HTTP {reply.status_code}: {reply.text[:200]}"
            return run
        run.order_id = reply.json()["orderId"]
        return run

    async def follow(self, run: OrderRun, timeout_s: float = 180.0) -> OrderRun:
        if run.order_id is None:
            return run
        try:
            async with asyncio.timeout(timeout_s):
                async with websockets.connect(
                    f"{self.ws_base}/api/orders/{run.order_id}/ws", ping_interval=None, open_timeout=60,
                    close_timeout=2, max_size=2**20,
                ) as ws:  # fmt: skip
                    run.opened = time.time()
                    async for raw in ws:
                        received = time.time()
                        data = json.loads(raw)
                        if data.get("type") != "status":
                            continue
                        run.events.append(
                            Event(data["seq"], data["status"], ts(data["timestamp"]), received,
                                  data.get("details") or {})  # fmt: skip
                        )
                        if data["status"] in FINAL:
                            run.done = received
                            break
        except TimeoutError:
            run.error = f"not final within {timeout_s:g}s"
        except (OSError, websockets.WebSocketException) as exc:
            run.error = f"{type(exc).__name__}: {exc}"[:200]
        return run

    async def order(self, body: dict[str, Any], timeout_s: float = 180.0) -> OrderRun:
        run = await self.submit(body)
        return await self.follow(run, timeout_s)


# --------------------------------------------------------------------------- processes


def role(proc: psutil.Process, engine_pid: int) -> str:
    """What an engine process is, for the memory and CPU tables."""
    try:
        if proc.pid == engine_pid:
            return "engine driver (dexengine up)"
        name = proc.name()
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if name.startswith("postgres") or cmd.startswith("postgres"):
        return "PostgreSQL"
    if "redis-server" in name or "redis-server" in cmd:
        return "Redis"
    for marker, label in (
        ("ServeReplica", "Serve replica (API)"),
        ("ProxyActor", "Serve proxy"),
        ("ServeController", "Serve controller"),
        ("OrderExecutor", "actors: executors"),
        ("PoolActor", "actors: pools"),
        ("OrderRouter", "actors: router"),
        ("Dispatcher", "actors: dispatcher"),
        ("MarketMaker", "actors: market"),
        ("ray::IDLE", "Ray idle workers"),
        ("DashboardAgent", "Ray core (GCS, raylet, agents)"),
        ("RuntimeEnvAgent", "Ray core (GCS, raylet, agents)"),
        ("gcs_server", "Ray core (GCS, raylet, agents)"),
        ("raylet", "Ray core (GCS, raylet, agents)"),
        ("log_monitor", "Ray core (GCS, raylet, agents)"),
        ("monitor.py", "Ray core (GCS, raylet, agents)"),
        ("dashboard", "Ray core (GCS, raylet, agents)"),
    ):
        if marker in cmd or marker in name:
            return label
    if name.startswith("ray::"):
        return "Ray other workers"
    return f"other ({name})"


def memory_by_role(processes: list[psutil.Process], engine_pid: int) -> dict[str, Any]:
    """PSS (and RSS) summed by role, in MB; PSS counts shared pages once across the stack."""
    pss: Counter[str] = Counter()
    rss: Counter[str] = Counter()
    count: Counter[str] = Counter()
    have_pss = True
    for p in processes:
        try:
            label = role(p, engine_pid)
            try:
                info = p.memory_full_info()
                value = getattr(info, "pss", None)
            except (psutil.AccessDenied, AttributeError):
                info, value = p.memory_info(), None
            if value is None:
                have_pss = False
                value = info.rss
            pss[label] += value
            rss[label] += info.rss
            count[label] += 1
        except psutil.NoSuchProcess:
            continue
    mb = 1024 * 1024
    return {
        "kind": "PSS" if have_pss else "RSS",
        "totalMB": round(sum(pss.values()) / mb, 1),
        "rssTotalMB": round(sum(rss.values()) / mb, 1),
        "processes": sum(count.values()),
        "byRole": {k: {"MB": round(v / mb, 1), "processes": count[k]} for k, v in pss.most_common()},
    }


class CpuMeter:
    """CPU seconds used between start() and stop(): by the engine's processes (by role),
    by this client, and by the whole machine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.me = psutil.Process()

    @staticmethod
    def _cpu(p: psutil.Process) -> float | None:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.procs0 = {p.pid: p for p in self.engine.processes()}
        self.cpu0 = {pid: self._cpu(p) for pid, p in self.procs0.items()}
        self.me0 = self._cpu(self.me)
        self.machine0 = psutil.cpu_times()

    def stop(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        procs = {p.pid: p for p in self.engine.processes()}
        by_role: Counter[str] = Counter()
        by_pid: dict[int, float] = {}
        for pid, p in procs.items():
            now = self._cpu(p)
            if now is None:
                continue
            before = self.cpu0.get(pid) or 0.0
            used = max(0.0, now - before)
            by_pid[pid] = used
            by_role[role(p, self.engine.proc.pid)] += used
        machine1 = psutil.cpu_times()
        busy = sum(getattr(machine1, f) - getattr(self.machine0, f)
                   for f in ("user", "system", "nice", "irq", "softirq", "steal") if hasattr(machine1, f))  # fmt: skip
        me = (self._cpu(self.me) or 0.0) - (self.me0 or 0.0)
        engine_total = sum(by_role.values())
        self.top_pids = sorted(by_pid, key=by_pid.__getitem__, reverse=True)
        self.by_pid = by_pid
        cores = psutil.cpu_count() or 1
        return {
            "seconds": round(elapsed, 1),
            "cores": cores,
            "engineCores": round(engine_total / elapsed, 2),
            "clientCores": round(me / elapsed, 2),
            "machineCores": round(busy / elapsed, 2),
            "otherCores": round(max(0.0, busy - engine_total - me) / elapsed, 2),
            "engineByRole": {k: round(v / elapsed, 3) for k, v in by_role.most_common()},
        }


# --------------------------------------------------------------------------- profiling


def py_spy_available() -> str | None:
    import shutil
    import sys
    from pathlib import Path

    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


async def profile(pids: list[int], seconds: float, out_dir: Any, engine_pid: int) -> list[dict[str, Any]]:
    """py-spy (sampling, non-blocking) on a few Python processes at once; the top
    functions by own time (leaf frames) of each."""
    exe = py_spy_available()
    if exe is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for pid in pids:
        try:
            label = role(psutil.Process(pid), engine_pid)
        except psutil.NoSuchProcess:
            continue
        path = out_dir / f"py-spy-{pid}.txt"
        proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
            "--format", "raw", "--output", str(path), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        jobs.append((pid, label, path, proc))
    results = []
    for pid, label, path, proc in jobs:
        try:
            _, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            continue
        if not path.exists():
            results.append({"pid": pid, "role": label, "error": (err or b"").decode()[-300:]})
            continue
        results.append({"pid": pid, "role": label, **summarize_stacks(path, seconds * 50)})
    return results


def summarize_stacks(path: Any, possible_samples: float) -> dict[str, Any]:
    """Leaf-frame (own time) and inclusive counts from py-spy's collapsed stacks."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        leaf[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
    return {
        "samples": total,
        "busyShare": round(total / possible_samples, 3) if possible_samples else None,
        "topOwn": [(f, round(c / total, 3)) for f, c in leaf.most_common(8)] if total else [],
        "topInclusive": [(f, round(c / total, 3)) for f, c in _interesting(inclusive).most_common(12)] if total else [],
    }


def _frame(text: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = text.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def _interesting(inclusive: Counter[str]) -> Counter[str]:
    """Inclusive counts without the frames every stack has (event loop, thread main)."""
    boring = ("run_forever", "_run_once", "_run (events.py)", "main (", "<module>", "run (threading",
              "_bootstrap", "main_loop", "run_until_complete", "select (selectors.py)")  # fmt: skip
    return Counter({f: c for f, c in inclusive.items() if not any(b in f for b in boring)})
