"""The benchmark: starts the engine with chosen settings, drives it, writes a report.

    python -m loadtest.benchmark            # ~10 minutes; the full run
    python -m loadtest.benchmark --quick    # ~5 minutes; shorter phases, fewer watcher steps
    python -m loadtest.benchmark --phases ceiling,ws --ceiling-duration 30

Writes ``loadtest/results/benchmark-<ts>.md`` and ``benchmark-<ts>.png``
(throughput and latency over time), keeps the raw numbers in
``benchmark-<ts>.json`` and py-spy's stacks in ``benchmark-<ts>-profiles/``,
and prints the figures. Phases, each on an engine of its own (started as a
child process with its own data dir, a free port on 127.0.0.1, no
dashboard; stopped at the end of the phase):

1. ``seed`` — configs/engine.yaml as it is (10 executors, 100 orders/min,
   ~200 ms quotes, 2-3 s execution, the market on). A backlog of orders is
   kept queued; sustained throughput over whole minutes is compared with
   min(rate limit, executors / mean order time).
2. ``ceiling`` — no simulated delay, no rate limit, no market. Orders per
   second end to end (POST accepted -> confirmed in PostgreSQL -> the final
   event received on the order's WebSocket) with a closed loop of clients,
   and the engine's own overhead per order (with zero latencies the whole
   time is overhead), unloaded (one order at a time) and at the ceiling.
   The busiest processes are sampled with py-spy.
3. ``ws`` — WebSocket delivery latency (status committed in PostgreSQL ->
   client received), a few orders at a time (engine idle-ish).
4. ``watchers`` — concurrent WebSocket watchers held on one node while
   events still arrive within 100 ms p99, stepped up (bounded).
5. memory (PSS) of the whole engine process tree — Ray, Serve, actors,
   PostgreSQL, Redis — idle and under load, in every phase.

The client is one asyncio process (httpx + websockets), not Locust, so that
every timestamp is taken where the message lands; its CPU is reported beside
each figure, as is the machine's (other users of the 2 cores show there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from loadtest.benchkit import (
    CpuMeter,
    OrderClient,
    OrderRun,
    memory_by_role,
    order_body,
    pct,
    profile,
    py_spy_available,
    stats_ms,
    ts,
)
from loadtest.engine_process import NO_CLIENT_LIMITS, PROFILES, EngineProcess

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# phase 3 and 4: the seed's latencies, no market, and starts paced at 3 a second
# (the rate limiter as a pacer: 3 starts per 1-s window), so that orders queue
# behind each other and their events come at a steady rate
PACED = {"MARKET_ENABLED": "false", "RATE_LIMIT_PER_MINUTE": "3", "RATE_LIMIT_WINDOW_S": "1"}
PACED_RATE = 3.0


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def effective_settings(engine: EngineProcess) -> Any:
    """The EngineSettings the child engine sees (configs/engine.yaml + its DEXENGINE_*)."""
    from engine.settings import EngineSettings

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(engine.environment())
        return EngineSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- engine + sampling


class Phase:
    """An engine for one phase, with memory samples."""

    def __init__(self, name: str, settings: dict[str, str], out: Path) -> None:
        self.name = name
        # one client process stands for many clients: the API's per-client limits are off
        self.engine = EngineProcess({**NO_CLIENT_LIMITS, **settings}, log_path=out / f"engine-{name}.log",
                                    name=f"bench-{name}")  # fmt: skip
        self.memory: dict[str, Any] = {}

    def __enter__(self) -> Phase:
        log(f"{self.name}: starting the engine ({self.engine.url}) ...")
        self.engine.start()
        log(f"{self.name}: engine up in {self.engine.started_s:.0f}s")
        self.settings = effective_settings(self.engine)
        return self

    def __exit__(self, *exc: object) -> None:
        log(f"{self.name}: stopping the engine ...")
        self.engine.stop()

    def sample_memory(self, label: str) -> dict[str, Any]:
        mem = memory_by_role(self.engine.processes(), self.engine.proc.pid)
        prev = self.memory.get(label)
        if prev is None or mem["totalMB"] > prev["totalMB"]:
            self.memory[label] = mem  # keep the peak of the samples of a label
        return mem

    async def memory_sampler(self, label: str, every_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await asyncio.to_thread(self.sample_memory, label)


# --------------------------------------------------------------------------- 1. seed throughput


async def phase_seed(ph: Phase, duration_s: float, backlog: int) -> dict[str, Any]:
    s = ph.settings
    await asyncio.sleep(8)
    ph.sample_memory("idle")
    client = OrderClient(ph.engine.url)
    rng = random.Random(1)
    counter = itertools.count()
    runs: list[OrderRun] = []
    began = time.time()
    stop_at = began + duration_s
    cpu = CpuMeter(ph.engine)
    cpu.start()

    async def trader() -> None:
        while time.time() < stop_at:
            run = await client.submit(order_body(rng, next(counter)))
            runs.append(run)
            await client.follow(run, timeout_s=max(1.0, stop_at - time.time()))

    sampler = asyncio.ensure_future(ph.memory_sampler("load", 10))
    try:
        await asyncio.gather(*(trader() for _ in range(backlog)))
    finally:
        sampler.cancel()
        await client.aclose()
    cpu_report = cpu.stop()

    finished = [r for r in runs if r.final is not None and r.started_at is not None]
    starts = sorted(r.started_at for r in runs if r.started_at is not None)
    occupancy = [r.final.committed - r.started_at for r in finished]
    mean_order_s = float(np.mean(occupancy)) if occupancy else float("nan")
    rate_per_s = s.rate_limit_per_minute / s.rate_limit_window_s if s.rate_limit_per_minute > 0 else math.inf
    executor_bound = s.executors / mean_order_s if occupancy else math.nan
    limit = min(rate_per_s, executor_bound)
    t0 = starts[0] if starts else began
    # whole minutes of completions, shifted by the time an order takes
    usable = stop_at - t0 - mean_order_s - 1.0
    minutes = int(usable // 60)
    window = minutes * 60.0 if minutes >= 1 else max(usable, 1.0)
    # Under the limiter, starts come in bursts (a minute's worth at once, then
    # a pause), so a window's count depends on where its edges fall: average
    # the count over every window start (1-s steps) that fits in the run.
    done_at = np.sort([r.final.committed for r in finished])
    offsets = np.arange(mean_order_s, max(mean_order_s, stop_at - t0 - window - 1.0) + 1e-9, 1.0)
    counts = [int(np.searchsorted(done_at, t0 + o + window) - np.searchsorted(done_at, t0 + o)) for o in offsets]
    completed_n = float(np.mean(counts)) if counts else 0.0
    started_in = [t for t in starts if t0 <= t < t0 + window]
    throughput = completed_n / window
    # the limiter: the most starts in any sliding window of its length
    # (start stamps are taken by the dispatcher just after the limiter's grant,
    # which runs on Redis's clock: allow them 50 ms of jitter)
    most = 0
    j = 0
    for i, t in enumerate(starts):
        while starts[j] <= t - s.rate_limit_window_s + 0.05:
            j += 1
        most = max(most, i - j + 1)
    # the tightest span of limit + 1 consecutive starts (shorter than the window: a leak)
    n_lim = s.rate_limit_per_minute
    tightest = (min(starts[i + n_lim] - starts[i] for i in range(len(starts) - n_lim))
                if n_lim > 0 and len(starts) > n_lim else None)  # fmt: skip
    simulated = s.latency.quote_s + (s.latency.execution_min_s + s.latency.execution_max_s) / 2
    retried = sum(1 for r in runs if any(e.status == "pending" and e.seq > 1 for e in r.events))
    outcomes: dict[str, int] = {}
    for r in finished:
        outcomes[r.final.status] = outcomes.get(r.final.status, 0) + 1
    return {
        "settings": {"executors": s.executors, "ratePerMinute": s.rate_limit_per_minute,
                     "rateWindowS": s.rate_limit_window_s, "quoteS": s.latency.quote_s,
                     "executionS": [s.latency.execution_min_s, s.latency.execution_max_s],
                     "market": s.market_enabled},  # fmt: skip
        "durationS": duration_s,
        "backlog": backlog,
        "submitted": len(runs),
        "finished": len(finished),
        "outcomes": outcomes,
        "retried": retried,
        "meanOrderS": _r(mean_order_s, 3),
        "orderTimeMs": stats_ms(occupancy),
        "simulatedMeanS": simulated,
        "overheadMeanMs": _r((mean_order_s - simulated) * 1000, 1),
        "rateLimitPerS": _r(rate_per_s, 4),
        "executorBoundPerS": _r(executor_bound, 3),
        "limitPerS": _r(limit, 4),
        "limitedBy": "rate limit" if rate_per_s <= executor_bound else "executors / order time",
        "windowS": window,
        "wholeMinutes": minutes,
        "completedInWindow": round(completed_n, 1),
        "windowsAveraged": len(counts),
        "completedRange": [min(counts), max(counts)] if counts else None,
        "startsInWindow": len(started_in),
        "throughputPerS": _r(throughput, 4),
        "throughputPerMin": _r(throughput * 60, 1),
        # under a whole window of the limiter the ratio means nothing (the first
        # window's burst): only whole minutes count
        "ratio": _r(throughput / limit, 3) if minutes >= 1 or math.isinf(rate_per_s) else None,
        "startsRatio": _r(len(started_in) / window / limit, 3),
        "mostStartsInAWindow": most,
        "tightestSpanOfLimitPlusOneS": _r(tightest, 3),
        "queueWaitMs": stats_ms([r.started_at - r.pending_at for r in finished if r.pending_at]),
        "e2eMs": stats_ms([r.done - r.posted for r in finished if r.done]),
        "cpu": cpu_report,
        "series": series(runs, began),
        "cumulative": cumulative(finished, t0),
        "t0Offset": t0 - began,
    }


def cumulative(finished: list[OrderRun], t0: float) -> dict[str, list[float]]:
    """Completed orders so far (by final commit), from the first start."""
    times = sorted(r.final.committed - t0 for r in finished)
    return {"t": times, "n": list(range(1, len(times) + 1))}


def series(runs: list[OrderRun], t0: float, width: float = 1.0) -> dict[str, Any]:
    """Completions per second and end-to-end latency per second, for the chart."""
    done = [r for r in runs if r.final is not None and r.done]
    if not done:
        return {"t": [], "completed": [], "e2eP50": [], "e2eP99": []}
    last = max(r.done for r in done)
    n = int((last - t0) // width) + 1
    completed = [0] * n
    lat: list[list[float]] = [[] for _ in range(n)]
    for r in done:
        i = int((r.done - t0) // width)
        if 0 <= i < n:
            completed[i] += 1
            lat[i].append((r.done - r.posted) * 1000)
    return {
        "t": [i * width for i in range(n)],
        "completed": completed,
        "e2eP50": [pct(v, 50) for v in lat],
        "e2eP99": [pct(v, 99) for v in lat],
    }


# --------------------------------------------------------------------------- 2. ceiling


async def closed_loop(client: OrderClient, concurrency: int, duration_s: float, seed: int) -> tuple[list[OrderRun], float, float]:
    rng = random.Random(seed)
    counter = itertools.count()
    runs: list[OrderRun] = []
    began = time.time()
    stop_at = began + duration_s

    async def one() -> None:
        while time.time() < stop_at:
            run = await client.order(order_body(rng, next(counter)), timeout_s=60)
            runs.append(run)

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return runs, began, stop_at


def breakdown(runs: list[OrderRun]) -> dict[str, Any]:
    ok = [r for r in runs if r.final is not None]
    stages: dict[str, list[float]] = {}
    for r in ok:
        for a, b in itertools.pairwise(r.events):
            name = f"{a.status}->{'final' if b.status in ('confirmed', 'failed') else b.status}"
            stages.setdefault(name, []).append(b.committed - a.committed)
    return {
        "e2eMs": stats_ms([r.done - r.posted for r in ok]),
        "postMs": stats_ms([r.accepted - r.posted for r in ok]),
        "queueWaitMs": stats_ms([r.started_at - r.pending_at for r in ok if r.started_at and r.pending_at]),
        "executorMs": stats_ms([r.final.committed - r.started_at for r in ok if r.started_at]),
        "acceptToFinalCommitMs": stats_ms([r.final.committed - r.pending_at for r in ok if r.pending_at]),
        "finalDeliveryMs": stats_ms([r.done - r.final.committed for r in ok if r.final.committed >= r.opened]),
        "finalViaReplay": sum(1 for r in ok if r.final.committed < r.opened),
        "stagesMs": {k: stats_ms(v) for k, v in stages.items()},
        "errors": sum(1 for r in runs if r.error),
        "errorSamples": sorted({r.error for r in runs if r.error})[:5],
    }


async def phase_ceiling(ph: Phase, duration_s: float, concurrency: int, out: Path, do_profile: bool) -> dict[str, Any]:
    await asyncio.sleep(8)
    ph.sample_memory("idle")
    client = OrderClient(ph.engine.url)
    try:
        log("ceiling: warm-up (5 s)")
        await closed_loop(client, concurrency, 5, seed=2)
        log("ceiling: one order at a time (unloaded overhead, 10 s)")
        cpu = CpuMeter(ph.engine)
        cpu.start()
        single, _, _ = await closed_loop(client, 1, 10, seed=3)
        single_cpu = cpu.stop()
        log(f"ceiling: closed loop of {concurrency} clients for {duration_s:.0f} s")
        cpu = CpuMeter(ph.engine)
        cpu.start()
        sampler = asyncio.ensure_future(ph.memory_sampler("load", 5))
        try:
            runs, began, stop_at = await closed_loop(client, concurrency, duration_s, seed=4)
        finally:
            sampler.cancel()
        load_cpu = cpu.stop()
        profiles: list[dict[str, Any]] = []
        if do_profile and py_spy_available():
            candidates = [pid for pid in cpu.top_pids if _is_python(pid)][:4]
            log(f"ceiling: py-spy on the busiest processes {candidates} (12 s, load continues)")
            prof_task = asyncio.ensure_future(profile(candidates, 12, out, ph.engine.proc.pid))
            await closed_loop(client, concurrency, 14, seed=5)
            profiles = await prof_task
    finally:
        await client.aclose()
    warm = 2.0
    done = [r for r in runs if r.final is not None and began + warm <= r.done <= stop_at]
    throughput = len(done) / (stop_at - began - warm)
    return {
        "concurrency": concurrency,
        "durationS": duration_s,
        "orders": len(runs),
        "throughputPerS": _r(throughput, 1),
        "outcomes": {s: sum(1 for r in runs if r.final and r.final.status == s) for s in ("confirmed", "failed")},
        "atCeiling": breakdown(runs),
        "unloaded": {"orders": len(single), **breakdown(single), "cpu": single_cpu},
        "cpu": load_cpu,
        "cpuMsPerOrder": {k: round(v * 1000 / throughput, 2) for k, v in load_cpu["engineByRole"].items()}
        if throughput else {},
        "engineCpuMsPerOrder": round(load_cpu["engineCores"] * 1000 / throughput, 1) if throughput else None,
        "clientCpuMsPerOrder": round(load_cpu["clientCores"] * 1000 / throughput, 1) if throughput else None,
        "profiles": profiles,
        "series": series(runs, began),
    }


def _is_python(pid: int) -> bool:
    try:
        p = psutil.Process(pid)
        return "python" in (p.exe() or "") or p.name().startswith("ray::")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# --------------------------------------------------------------------------- 3. WebSocket delivery


async def phase_ws(ph: Phase, duration_s: float, interval_s: float) -> dict[str, Any]:
    await asyncio.sleep(8)
    ph.sample_memory("idle")
    client = OrderClient(ph.engine.url)
    rng = random.Random(6)
    tasks = []
    cpu = CpuMeter(ph.engine)
    cpu.start()
    began = time.time()
    i = 0
    try:
        while time.time() < began + duration_s:
            tasks.append(asyncio.ensure_future(client.order(order_body(rng, i), timeout_s=60)))
            i += 1
            await asyncio.sleep(interval_s)
        runs = await asyncio.gather(*tasks)
    finally:
        await client.aclose()
    cpu_report = cpu.stop()
    deliveries = [(e.status, e.received - e.committed) for r in runs for e in r.live()]
    by_status: dict[str, list[float]] = {}
    for status, d in deliveries:
        by_status.setdefault(status, []).append(d)
    return {
        "orders": len(runs),
        "intervalS": interval_s,
        "errors": sum(1 for r in runs if r.error),
        "deliveryMs": stats_ms([d for _, d in deliveries]),
        "byStatusMs": {k: stats_ms(v) for k, v in by_status.items()},
        "connectMs": stats_ms([r.opened - r.accepted for r in runs if r.opened]),
        "cpu": cpu_report,
    }


# --------------------------------------------------------------------------- 4. watchers


async def one_watcher(
    url: str, gate: asyncio.Semaphore, sink: list, state: dict[str, Any], timeout_s: float
) -> str | None:
    import websockets

    started = time.time()
    try:
        async with asyncio.timeout(timeout_s):
            async with gate:
                try:
                    ws = await websockets.connect(url, ping_interval=None, open_timeout=60, close_timeout=2)
                finally:
                    state["settled"] += 1
            t_open = time.time()
            state["connect"].append(t_open - started)
            state["open"] += 1
            state["peak"] = max(state["peak"], state["open"])
            try:
                async for raw in ws:
                    received = time.time()
                    data = json.loads(raw)
                    if data.get("type") != "status":
                        continue
                    committed = ts(data["timestamp"])
                    if committed >= t_open:
                        sink.append((data["orderId"], data["status"], committed, received, state["open"]))
                    if data["status"] in ("confirmed", "failed"):
                        return None
                return "closed before the final event"
            finally:
                state["open"] -= 1
                await ws.close()
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


async def watcher_step(client: OrderClient, watchers: int, connect_rate: float, rng: random.Random) -> dict[str, Any]:
    """``watchers`` sockets held at once; latency of the events they receive.

    Queue order (the engine starts 3 orders a second): fillers (unwatched; they
    give the watchers time to connect), probes (2 watchers each: the events
    measured while everything is held), then 4 holder orders carrying the rest
    of the watchers (held for the whole step; their events at the end are a
    fan-out burst, reported apart).
    """
    probes_n, per_probe, holders_n = int(PACED_RATE * 8), 2, 4
    holder_watchers = max(0, watchers - probes_n * per_probe)
    connect_s = watchers / max(connect_rate, 10.0) + 3.0
    fillers_n = min(400, math.ceil(PACED_RATE * connect_s))
    submitted: dict[str, list[OrderRun]] = {"filler": [], "probe": [], "holder": []}
    i = 0
    for kind, n in (("filler", fillers_n), ("probe", probes_n), ("holder", holders_n)):
        for _ in range(n):
            run = await client.submit(order_body(rng, i))
            i += 1
            if run.order_id is None:
                raise RuntimeError(f"order refused: {run.error}")
            submitted[kind].append(run)
    kind_of = {r.order_id: k for k, runs in submitted.items() for r in runs}
    urls: list[str] = []
    for r in submitted["probe"]:
        urls += [f"{client.ws_base}/api/orders/{r.order_id}/ws"] * per_probe
    for j in range(holder_watchers):
        r = submitted["holder"][j % holders_n]
        urls.append(f"{client.ws_base}/api/orders/{r.order_id}/ws")
    sink: list[tuple[str, str, float, float, int]] = []
    state: dict[str, Any] = {"open": 0, "peak": 0, "connect": [], "settled": 0}
    gate = asyncio.Semaphore(64)
    horizon = (fillers_n + probes_n + holders_n) / PACED_RATE + 60
    began = time.time()
    tasks = [asyncio.ensure_future(one_watcher(u, gate, sink, state, horizon)) for u in urls]
    while state["settled"] < len(urls) and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    all_open_s = time.time() - began
    results = await asyncio.gather(*tasks)
    errors: dict[str, int] = {}
    for e in results:
        if e is not None:
            errors[e] = errors.get(e, 0) + 1
    probe = [(c, rcv, n_open) for oid, _, c, rcv, n_open in sink if kind_of.get(oid) == "probe"]
    # measured while every holder socket was still open
    held = [(c, rcv) for c, rcv, n_open in probe if n_open >= holder_watchers]
    burst = [(c, rcv) for oid, _, c, rcv, _ in sink if kind_of.get(oid) == "holder"]
    return {
        "watchers": watchers,
        "peakOpen": state["peak"],
        "connectAllS": round(all_open_s, 1),
        "connectRatePerS": round(len(state["connect"]) / all_open_s, 1) if all_open_s else None,
        "connectMs": stats_ms(state["connect"]),
        "orders": {k: len(v) for k, v in submitted.items()},
        "errors": errors,
        "probeDeliveryMs": stats_ms([rcv - c for c, rcv, _ in probe]),
        "heldDeliveryMs": stats_ms([rcv - c for c, rcv in held]),
        "burstDeliveryMs": stats_ms([rcv - c for c, rcv in burst]),
        "burstFanout": holder_watchers // holders_n if holders_n else 0,
    }


async def phase_watchers(ph: Phase, steps: list[int], budget_ms: float = 100.0) -> dict[str, Any]:
    client = OrderClient(ph.engine.url)
    rng = random.Random(7)
    results = []
    connect_rate = 80.0
    cpu = CpuMeter(ph.engine)
    cpu.start()
    try:
        for w in steps:
            log(f"watchers: {w} ...")
            cpu_step = CpuMeter(ph.engine)
            cpu_step.start()
            sampler = asyncio.ensure_future(ph.memory_sampler(f"watchers {w}", 5))
            try:
                step = await watcher_step(client, w, connect_rate, rng)
            finally:
                sampler.cancel()
            step["cpu"] = cpu_step.stop()
            results.append(step)
            p99 = step["heldDeliveryMs"]["p99"] or step["probeDeliveryMs"]["p99"]
            failed = sum(step["errors"].values())
            log(f"watchers: {w}: held p99 {p99 and round(p99, 1)} ms, burst p99 "
                f"{_r(step['burstDeliveryMs']['p99'])} ms, {failed} errors, connect {step['connectRatePerS']}/s")  # fmt: skip
            if step["connectRatePerS"]:
                connect_rate = step["connectRatePerS"]
            if p99 is None or p99 > budget_ms or failed > 0.01 * w:
                break
            await asyncio.sleep(2)
    finally:
        await client.aclose()
    ok = [s["watchers"] for s in results
          if (s["heldDeliveryMs"]["p99"] or s["probeDeliveryMs"]["p99"] or 1e9) <= budget_ms
          and sum(s["errors"].values()) <= 0.01 * s["watchers"]]  # fmt: skip
    return {"budgetMs": budget_ms, "steps": results, "maxWithinBudget": max(ok) if ok else 0,
            "cpu": cpu.stop(), "stoppedEarly": len(results) < len(steps)}  # fmt: skip


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    import subprocess

    import ray

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True,
                                  timeout=10).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "commit": f"{commit}{' (+ uncommitted changes)' if dirty else ''}" if commit else "unknown",
        "cpu": cpu_model,
        "cores": psutil.cpu_count(),
        "memoryGiB": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "os": platform.platform(),
        "load1": round(os.getloadavg()[0], 2),
    }


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def ms_row(name: str, s: dict[str, Any]) -> str:
    return f"| {name} | {s['n']} | {fmt(s['p50'])} | {fmt(s.get('p90'))} | {fmt(s['p99'])} | {fmt(s['max'])} |"


MS_HEAD = "| | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"


def cpu_line(c: dict[str, Any]) -> str:
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(c["engineByRole"].items())[:6])
    return (f"CPU over {c['seconds']:.0f} s, in cores of {c['cores']}: engine {c['engineCores']:.2f} "
            f"({top}); this client {c['clientCores']:.2f}; other processes on the machine "
            f"{c['otherCores']:.2f}; machine busy {c['machineCores']:.2f}.")  # fmt: skip


def write_report(data: dict[str, Any], path: Path, chart: Path | None) -> str:
    m = data["machine"]
    lines = [
        f"# Benchmark — {data['started']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB; Python {m['python']}, Ray {m['ray']}; "
        f"{m['os']}. Load average at start: {m['load1']}. Code: commit {m['commit']}.",
        f"Command: `{data['command']}` (total {data['elapsedS']:.0f} s).",
        "Client: one asyncio process (httpx + websockets) on the same machine, sharing its cores with the "
        "engine; timestamps: the engine's event `timestamp` (PostgreSQL `clock_timestamp()` at the history "
        "insert, just before commit) against the client's `time.time()` on arrival — one clock.",
        "",
    ]
    if chart is not None:
        lines += [f"![throughput and latency over time]({chart.name})", ""]
    summary = data["summary"]
    lines += ["## Figures", "", "| # | figure | value | limit / goal | ratio | limited by |", "|---|---|---|---|---|---|"]
    lines += [f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} | {row[5]} |" for row in summary]
    lines.append("")

    seed = data.get("seed")
    if seed:
        st = seed["settings"]
        lines += [
            "## 1. Seed defaults: sustained throughput",
            "",
            f"Engine: {st['executors']} executors, {st['ratePerMinute']} orders per {st['rateWindowS']:g} s, "
            f"quotes {st['quoteS']} s, execution {st['executionS'][0]}–{st['executionS'][1]} s, market "
            f"{'on' if st['market'] else 'off'}. A backlog of {seed['backlog']} orders in flight for "
            f"{seed['durationS']:.0f} s ({seed['submitted']} submitted, {seed['finished']} finished: "
            f"{seed['outcomes']}; {seed['retried']} retried).",
            "",
            f"- Mean order time (dispatcher start → final commit): **{seed['meanOrderS']} s** (simulated delays "
            f"{seed['simulatedMeanS']:.2f} s on average: engine overhead ≈ {fmt(seed['overheadMeanMs'])} ms per order; "
            f"p50 {fmt(seed['orderTimeMs']['p50'], 0)} ms, p99 {fmt(seed['orderTimeMs']['p99'], 0)} ms).",
            f"- Theoretical limit = min(rate limit {seed['rateLimitPerS']}/s, executors / mean order time "
            f"{seed['executorBoundPerS']}/s) = **{seed['limitPerS']}/s** — {seed['limitedBy']}.",
            f"- Sustained: {seed['completedInWindow']} orders completed in {seed['windowS']:.0f} s "
            f"({seed['wholeMinutes']} whole minute(s); the mean over {seed['windowsAveraged']} windows starting "
            f"1 s apart from the first start + one order time, counts {seed['completedRange']}) = "
            f"**{seed['throughputPerS']}/s ({seed['throughputPerMin']}/min), ratio {fmt(seed['ratio'], 3)}** "
            f"(goal ≥ 0.97{'; the run was under a whole minute of the limiter: no ratio' if seed['ratio'] is None else ''}). "
            f"Starts in the window: ratio {seed['startsRatio']}.",
            f"- The limiter: at most {seed['mostStartsInAWindow']} starts in any {st['rateWindowS']:g} s "
            f"(less 50 ms of stamp jitter; limit {st['ratePerMinute']}); the tightest {st['ratePerMinute'] + 1} "
            f"consecutive starts spanned {fmt(seed['tightestSpanOfLimitPlusOneS'], 3)} s (start stamps are "
            "taken by the dispatcher after the limiter's grant, on another clock and event loop).",
            f"- Client-side end to end (mostly queueing behind the limit): p50 {fmt(seed['e2eMs']['p50'], 0)} ms, "
            f"p99 {fmt(seed['e2eMs']['p99'], 0)} ms; queue wait p50 {fmt(seed['queueWaitMs']['p50'], 0)} ms.",
            f"- {cpu_line(seed['cpu'])}",
            "",
        ]
    eb = data.get("executorBound")
    if eb:
        lines += [
            "## 1b. Seed latencies without the rate limit: executor-bound",
            "",
            f"- Mean order time {eb['meanOrderS']} s; limit executors / order time = {eb['executorBoundPerS']}/s; "
            f"sustained {eb['throughputPerS']}/s over {eb['windowS']:.0f} s: **ratio {eb['ratio']}**.",
            f"- {cpu_line(eb['cpu'])}",
            "",
        ]
    ceil_ = data.get("ceiling")
    if ceil_:
        at, un = ceil_["atCeiling"], ceil_["unloaded"]
        lines += [
            "## 2. Engine ceiling: no simulated delay, no rate limit, no market",
            "",
            f"A closed loop of {ceil_['concurrency']} clients for {ceil_['durationS']:.0f} s, each: POST the order, "
            "open its WebSocket, wait for the final event, repeat. Throughput counts orders whose final event "
            f"reached the client. **{ceil_['throughputPerS']} orders/s end to end** ({ceil_['orders']} orders, "
            f"{ceil_['outcomes']}; {at['errors']} client errors {at['errorSamples']}).",
            "",
            "Per order — unloaded (one at a time: the engine's own overhead, the whole time is overhead at zero "
            f"latency; {un['orders']} orders) and at the ceiling:",
            "",
            MS_HEAD,
            ms_row("unloaded: POST → final event received (overhead)", un["e2eMs"]),
            ms_row("unloaded: POST answered (202)", un["postMs"]),
            ms_row("unloaded: accept → dispatcher start (queue)", un["queueWaitMs"]),
            ms_row("unloaded: dispatcher start → final commit (executor)", un["executorMs"]),
            ms_row("unloaded: accept commit → final commit", un["acceptToFinalCommitMs"]),
            ms_row("ceiling: POST → final event received", at["e2eMs"]),
            ms_row("ceiling: POST answered (202)", at["postMs"]),
            ms_row("ceiling: accept → dispatcher start (queue)", at["queueWaitMs"]),
            ms_row("ceiling: dispatcher start → final commit (executor)", at["executorMs"]),
            ms_row("ceiling: final commit → received (live)", at["finalDeliveryMs"]),
            "",
            f"At the ceiling {at['finalViaReplay']} final events were committed before the client's socket was "
            "open (they came from the replay). Stage times at the ceiling (server timestamps):",
            "",
            MS_HEAD,
            *[ms_row(k, v) for k, v in at["stagesMs"].items()],
            "",
            f"- {cpu_line(ceil_['cpu'])}",
            f"- Unloaded: {cpu_line(un['cpu'])}",
            "",
            f"Engine CPU per order at the ceiling: **{fmt(ceil_['engineCpuMsPerOrder'])} ms** (the client: "
            f"{fmt(ceil_['clientCpuMsPerOrder'])} ms) — by process role:",
            "",
            "| role | CPU ms per order |",
            "|---|---:|",
            *[f"| {k} | {v:.1f} |" for k, v in ceil_["cpuMsPerOrder"].items() if v >= 0.5],
            "",
        ]
        if ceil_["profiles"]:
            lines += ["py-spy (12 s, 50 Hz, at the ceiling) on the busiest Python processes: the share of samples "
                      "in which the process was busy, then where that time goes (own time: the innermost Python "
                      "frame; `Thread.run` / `Worker.main_loop` / `_run_user_code_event_loop` as innermost frame "
                      "mean native code under them — Ray's C++ core worker, gRPC, the event loop's C parts):",
                      ""]  # fmt: skip
            for p in ceil_["profiles"]:
                if "error" in p:
                    lines.append(f"- {p['role']} (pid {p['pid']}): py-spy failed: {p['error']}")
                    continue
                own = "; ".join(f"{f} {s:.0%}" for f, s in p["topOwn"][:6])
                inc = "; ".join(f"{f} {s:.0%}" for f, s in p["topInclusive"][:8])
                lines.append(f"- **{p['role']}** (pid {p['pid']}, busy {p['busyShare']:.0%} of samples). "
                             f"Own time: {own}. Inclusive: {inc}.")  # fmt: skip
            lines.append("")
    ws = data.get("ws")
    if ws:
        lines += [
            "## 3. WebSocket delivery latency (engine idle-ish)",
            "",
            f"One new order every {ws['intervalS']} s on the seed's latencies (market off, starts paced at 3/s), "
            f"each followed on its own socket; only events committed after the socket opened count "
            f"({ws['orders']} orders, {ws['errors']} errors).",
            "",
            MS_HEAD,
            ms_row("all live events", ws["deliveryMs"]),
            *[ms_row(k, v) for k, v in ws["byStatusMs"].items()],
            ms_row("WebSocket handshake (after the 202)", ws["connectMs"]),
            "",
            f"- {cpu_line(ws['cpu'])}",
            "",
        ]
    wt = data.get("watchers")
    if wt:
        lines += [
            "## 4. Concurrent WebSocket watchers on one node",
            "",
            "Each step holds N sockets at once: the engine starts 3 orders a second; fillers first (unwatched, "
            "time for the sockets to connect), then probe orders (2 watchers each) whose events are measured "
            "while all N are held, then 4 holder orders carrying the other watchers (held for the whole step; "
            "their events at the end fan out to N/4 sockets at once: the burst column). "
            f"Budget: p99 ≤ {wt['budgetMs']:.0f} ms. **Most watchers within budget: {wt['maxWithinBudget']}** "
            f"{'(stopped at the first step over budget)' if wt['stoppedEarly'] else '(the largest step tried)'}.",
            "",
            "| watchers | peak open | connect/s | connect p99 ms | held: n | p50 ms | p99 ms | burst fan-out | burst p50 ms | burst p99 ms | errors | engine cores | client cores |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for s in wt["steps"]:
            h = s["heldDeliveryMs"] if s["heldDeliveryMs"]["n"] else s["probeDeliveryMs"]
            b = s["burstDeliveryMs"]
            lines.append(
                f"| {s['watchers']} | {s['peakOpen']} | {fmt(s['connectRatePerS'])} | {fmt(s['connectMs']['p99'], 0)} | "
                f"{h['n']} | {fmt(h['p50'])} | {fmt(h['p99'])} | {s['burstFanout']} | {fmt(b['p50'])} | {fmt(b['p99'])} | "
                f"{s['errors'] or 0} | {s['cpu']['engineCores']:.2f} | {s['cpu']['clientCores']:.2f} |"
            )
        lines.append("")
    mem = data.get("memory")
    if mem:
        lines += ["## 5. Memory of the whole stack", "",
                  "Sum over the engine's process tree (the `dexengine up` process, Ray's GCS, raylet and agents, "
                  "Serve's controller, proxy and replica, every actor, PostgreSQL and its backends, Redis); "
                  "PSS counts shared pages once. Peak of the samples taken in each state.", "",
                  "| engine | state | PSS MB | RSS MB (sum) | processes | largest parts (PSS MB) |",
                  "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for phase, states in mem.items():
            for state, m in states.items():
                parts = ", ".join(f"{k} {v['MB']:.0f} ({v['processes']})" for k, v in list(m["byRole"].items())[:7])
                lines.append(f"| {phase} | {state} | {m['totalMB']:.0f} | {m['rssTotalMB']:.0f} | {m['processes']} | {parts} |")
        lines.append("")
    lines += ["## Notes", "",
              "- Every engine runs with the API's per-client limits off (order submissions per client and "
              "minute, WebSockets per client): the benchmark's one process stands for many clients.",
              *[f"- {n}" for n in data.get("notes", [])], ""]  # fmt: skip
    text = "\n".join(lines)
    path.write_text(text)
    return text


def chart(data: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [k for k in ("seed", "ceiling", "watchers") if data.get(k)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, key in zip(axes[:, 0], panels, strict=True):
        d = data[key]
        if key == "seed":
            cum = d["cumulative"]
            ax.step(cum["t"], cum["n"], where="post", color="tab:blue", label="orders completed (cumulative)")
            end = max(cum["t"]) if cum["t"] else 60
            ax.plot([0, end], [0, d["limitPerS"] * end], color="tab:red", ls="--",
                    label=f"limit {d['limitPerS']}/s from the first start")  # fmt: skip
            if d["wholeMinutes"]:
                m0 = d["meanOrderS"]
                ax.axvspan(m0, m0 + d["windowS"], color="tab:gray", alpha=0.12, label="measured window (first)")
            ax.set_xlabel("seconds since the first order started")
            ax.set_ylabel("orders")
            ratio = "n/a (under a minute)" if d["ratio"] is None else d["ratio"]
            ax.set_title(f"1. seed defaults: {d['throughputPerS']}/s sustained, ratio {ratio}")
            ax.legend(loc="upper left", fontsize=8)
            continue
        if key == "ceiling":
            s = d["series"]
            width = 3
            t = np.asarray(s["t"])
            c = np.asarray(s["completed"], dtype=float)
            if len(c):
                kernel = np.ones(width) / width
                smooth = np.convolve(c, kernel, mode="same")
                ax.plot(t, smooth, color="tab:blue", label=f"completed orders/s ({width}-s mean)")
            ax.set_title(f"2. engine ceiling (zero latency, no rate limit): {d['throughputPerS']} orders/s")
            ax.set_xlabel("seconds")
            ax.set_ylabel("orders/s")
            ax2 = ax.twinx()
            p50 = [np.nan if v is None else v for v in s["e2eP50"]]
            p99 = [np.nan if v is None else v for v in s["e2eP99"]]
            ax2.plot(t, p50, color="tab:green", alpha=0.6, lw=0.8, label="e2e p50 ms")
            ax2.plot(t, p99, color="tab:orange", alpha=0.6, lw=0.8, label="e2e p99 ms")
            ax2.set_ylabel("end-to-end latency, ms")
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
        else:
            steps = d["steps"]
            w = [s["watchers"] for s in steps]
            held = [(s["heldDeliveryMs"] if s["heldDeliveryMs"]["n"] else s["probeDeliveryMs"]) for s in steps]
            ax.plot(w, [h["p50"] for h in held], "o-", label="held: p50")
            ax.plot(w, [h["p99"] for h in held], "o-", label="held: p99")
            ax.plot(w, [s["burstDeliveryMs"]["p99"] for s in steps], "x--", label="burst fan-out: p99")
            ax.axhline(d["budgetMs"], color="tab:red", ls="--", label=f"{d['budgetMs']:.0f} ms")
            ax.set_yscale("log")
            ax.set_xlabel("concurrent WebSocket watchers")
            ax.set_ylabel("delivery latency, ms")
            ax.set_title(f"4. watchers: {d['maxWithinBudget']} within {d['budgetMs']:.0f} ms p99")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    seed = data.get("seed")
    if seed:
        rows.append(("1", "seed defaults: sustained throughput", f"{seed['throughputPerS']}/s ({seed['throughputPerMin']}/min)",
                     f"{seed['limitPerS']}/s = min(rate {seed['rateLimitPerS']}/s, executors/order time {seed['executorBoundPerS']}/s); goal ≥ 0.97",
                     fmt(seed["ratio"], 3), seed["limitedBy"]))  # fmt: skip
    eb = data.get("executorBound")
    if eb:
        rows.append(("1b", "seed latencies, no rate limit", f"{eb['throughputPerS']}/s",
                     f"{eb['executorBoundPerS']}/s = executors / {eb['meanOrderS']} s", fmt(eb["ratio"], 3),
                     "executors × order time"))  # fmt: skip
    c = data.get("ceiling")
    if c:
        un = c["unloaded"]
        rows.append(("2", "engine ceiling: orders/s end to end", f"{c['throughputPerS']}/s", "–", "–",
                     data.get("ceilingLimitedBy", "CPU (see §2)")))  # fmt: skip
        rows.append(("2", "engine overhead per order (unloaded) p50 / p99",
                     f"{fmt(un['e2eMs']['p50'])} / {fmt(un['e2eMs']['p99'])} ms", "–", "–",
                     "actor hops + PostgreSQL commits per status (see §2)"))  # fmt: skip
        at = c["atCeiling"]
        rows.append(("2", "at the ceiling: executor time per order p50 / p99",
                     f"{fmt(at['executorMs']['p50'])} / {fmt(at['executorMs']['p99'])} ms", "–", "–", "CPU contention"))  # fmt: skip
    ws = data.get("ws")
    if ws:
        d = ws["deliveryMs"]
        rows.append(("3", "WebSocket delivery p50 / p99", f"{fmt(d['p50'])} / {fmt(d['p99'])} ms", "seed claims < 10 ms",
                     fmt(d["p99"] / 10 if d["p99"] else None, 2) + " (p99/10 ms)",
                     "hops, not CPU: commit → Redis publish → the socket's own subscription in the API replica → "
                     "Serve proxy (a Ray streaming call per message) → client"))  # fmt: skip
    wt = data.get("watchers")
    if wt:
        rows.append(("4", "watchers held, events ≤ 100 ms p99", str(wt["maxWithinBudget"]),
                     f"tried {', '.join(str(s['watchers']) for s in wt['steps'])}", "–", data.get("watchersLimitedBy", "see §4")))  # fmt: skip
    mem = data.get("memory") or {}
    for phase, states in mem.items():
        idle = states.get("idle")
        loads = [v for k, v in states.items() if k != "idle"]
        peak = max(loads, key=lambda m: m["totalMB"]) if loads else None
        if idle or peak:
            ref = idle or peak
            parts = ", ".join(
                f"{k} {v['processes']} × {v['MB'] / v['processes']:.0f} MB" if v["processes"] > 1 else f"{k} {v['MB']:.0f} MB"
                for k, v in list(ref["byRole"].items())[:3]
            )
            rows.append(("5", f"memory, {phase} engine: idle / under load",
                         f"{fmt(idle and idle['totalMB'], 0)} / {fmt(peak and peak['totalMB'], 0)} MB {ref['kind']}",
                         "–", "–", f"a Python process per actor: {parts}"))  # fmt: skip
    return rows


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out = args.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / f"benchmark-{stamp}"
    prof_dir = out / f"benchmark-{stamp}-profiles"
    data: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m loadtest.benchmark " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "memory": {},
        "notes": [],
    }
    began = time.time()
    phases = args.phases
    # SIGTERM cancels the run: every engine is still stopped on the way out
    main_task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    logs = out / f"benchmark-{stamp}-logs"
    if "seed" in phases:
        with Phase("seed", PROFILES["seed"], logs) as ph:
            log(f"seed: {args.seed_duration:.0f} s with a backlog of {args.backlog}")
            data["seed"] = await phase_seed(ph, args.seed_duration, args.backlog)
            data["memory"]["seed (market on)"] = ph.memory
        log(f"seed: {data['seed']['throughputPerS']}/s, ratio {data['seed']['ratio']}")
    if args.executor_bound:
        with Phase("executor-bound", {"RATE_LIMIT_PER_MINUTE": "0"}, logs) as ph:
            data["executorBound"] = await phase_seed(ph, args.executor_bound, args.backlog)
        log(f"executor-bound: ratio {data['executorBound']['ratio']}")
    if "ceiling" in phases:
        with Phase("ceiling", PROFILES["zero"], logs) as ph:
            data["ceiling"] = await phase_ceiling(ph, args.ceiling_duration, args.concurrency, prof_dir,
                                                  not args.no_profile)  # fmt: skip
            data["memory"]["zero latency"] = ph.memory
        log(f"ceiling: {data['ceiling']['throughputPerS']} orders/s")
    if "ws" in phases or "watchers" in phases:
        with Phase("paced", PACED, logs) as ph:
            if "ws" in phases:
                log(f"ws: {args.ws_duration:.0f} s, an order every {args.ws_interval} s")
                data["ws"] = await phase_ws(ph, args.ws_duration, args.ws_interval)
                log(f"ws: p50 {_r(data['ws']['deliveryMs']['p50'])} ms, p99 {_r(data['ws']['deliveryMs']['p99'])} ms")
            if "watchers" in phases:
                data["watchers"] = await phase_watchers(ph, args.watchers)
            data["memory"]["paced (ws, watchers)"] = ph.memory
    data["elapsedS"] = time.time() - began
    data.update(limits(data))
    data["notes"] += notes(data)
    data["summary"] = summary_rows(data)
    base.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    png = chart(data, base.with_suffix(".png"))
    text = write_report(data, base.with_suffix(".md"), png)
    print("\n" + text)
    print(f"\nreport: {base.with_suffix('.md')}" + (f"\nchart:  {png}" if png else ""))
    return data


def cpu_text(c: dict[str, Any]) -> str:
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(c["engineByRole"].items())[:3])
    return (f"CPU: machine {c['machineCores']:.2f} of {c['cores']} cores busy (engine {c['engineCores']:.2f}: {top}; "
            f"client {c['clientCores']:.2f}; others {c['otherCores']:.2f})")  # fmt: skip


def limits(data: dict[str, Any]) -> dict[str, str]:
    out = {}
    if data.get("ceiling"):
        c = data["ceiling"]
        out["ceilingLimitedBy"] = (f"CPU: {fmt(c['engineCpuMsPerOrder'])} ms of engine CPU per order on "
                                   f"{c['cpu']['cores']} shared cores; " + cpu_text(c["cpu"]))  # fmt: skip
    wt = data.get("watchers")
    if wt and wt["steps"]:
        last = wt["steps"][-1]
        if wt["stoppedEarly"] or (last["heldDeliveryMs"]["p99"] or 0) > wt["budgetMs"]:
            why = f"over budget at {last['watchers']}: " + cpu_text(last["cpu"])
            if last["errors"]:
                why += f"; errors {last['errors']}"
        else:
            why = f"not reached (largest step tried; {cpu_text(last['cpu'])})"
        fan = [st for st in wt["steps"] if (st["burstDeliveryMs"]["p99"] or 0) > wt["budgetMs"]]
        if fan:
            why += (f". Fan-out of one order's events is the weaker spot: from {fan[0]['burstFanout']} sockets on one "
                    f"order, burst p99 {fmt(fan[0]['burstDeliveryMs']['p99'], 0)} ms")  # fmt: skip
        out["watchersLimitedBy"] = why
    return out


def notes(data: dict[str, Any]) -> list[str]:
    out = []
    for key, label in (("seed", "seed"), ("ceiling", "ceiling"), ("ws", "ws")):
        c = (data.get(key) or {}).get("cpu")
        if c and c["otherCores"] > 0.3:
            out.append(f"During the {label} phase other processes used {c['otherCores']:.2f} cores of the machine: "
                       "the figures are lower than on an idle machine.")  # fmt: skip
    if not py_spy_available():
        out.append("py-spy is not installed: no profiles (pip install py-spy).")
    return out


def rewrite(json_path: Path) -> None:
    """Write the report and chart again from a run's JSON (after a change to the report's code)."""
    data = json.loads(json_path.read_text())
    data["notes"] = [n for n in data.get("notes", []) if n not in notes(data)] + notes(data)
    data.update(limits(data))
    data["summary"] = summary_rows(data)
    png = chart(data, json_path.with_suffix(".png"))
    write_report(data, json_path.with_suffix(".md"), png)


def parse_steps(text: str) -> list[int]:
    steps = sorted({int(x) for x in text.split(",") if x.strip()})
    if not steps or steps[0] <= 0:
        raise argparse.ArgumentTypeError("watcher steps: positive integers, e.g. 100,400,800")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (a 75 s seed run: one whole minute)")
    parser.add_argument("--phases", default="seed,ceiling,ws,watchers",
                        help="which of seed,ceiling,ws,watchers (default: all)")
    parser.add_argument("--seed-duration", type=float, help="seconds of the seed run (default 200; quick 75)")
    parser.add_argument("--backlog", type=int, default=30, help="orders kept in flight in the seed run")
    parser.add_argument("--executor-bound", type=float, default=0, metavar="SECONDS",
                        help="also run the seed latencies without a rate limit for this long (default: skip)")
    parser.add_argument("--ceiling-duration", type=float, help="seconds at the ceiling (default 45; quick 20)")
    parser.add_argument("--concurrency", type=int, default=24, help="closed-loop clients at the ceiling")
    parser.add_argument("--ws-duration", type=float, help="seconds of the delivery-latency phase (default 30)")
    parser.add_argument("--ws-interval", type=float, default=0.5, help="seconds between its orders")
    parser.add_argument("--watchers", type=parse_steps, help="watcher steps, stopped at the first over budget (default 100,200,400,800,1200,1600)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rewrite", type=Path, metavar="JSON", help="only rewrite the report of an earlier run")
    args = parser.parse_args(argv)
    if args.rewrite:
        rewrite(args.rewrite)
        return 0
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = args.phases - {"seed", "ceiling", "ws", "watchers"}
    if unknown:
        parser.error(f"unknown phases: {sorted(unknown)}")
    q = args.quick
    args.seed_duration = args.seed_duration or (75.0 if q else 200.0)
    args.ceiling_duration = args.ceiling_duration or (20.0 if q else 45.0)
    args.ws_duration = args.ws_duration or (15.0 if q else 30.0)
    args.watchers = args.watchers or ([100, 200, 400, 800] if q else [100, 200, 400, 800, 1200, 1600])
    if max(args.watchers) > 1900:
        parser.error("at most 1900 watchers: the API replica takes 2000 requests at once (max_ongoing_requests)")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
