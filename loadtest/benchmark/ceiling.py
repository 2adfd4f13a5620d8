"""Phase 2, the engine's ceiling: no simulated delay, no rate limit, no market; a
closed loop of clients, the engine's overhead per order, its CPU per order net of
its idle CPU, the ingress's own ceiling on the same engine, py-spy on the busiest."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from pathlib import Path
from typing import Any

from loadtest.benchmark.client import FINAL, OrderClient, OrderRun, order_body
from loadtest.benchmark.ingress import ingress_ceiling, ingress_ratios
from loadtest.benchmark.per_order import cpu_per_order
from loadtest.benchmark.phase import Phase, log
from loadtest.benchmark.processes import CpuMeter, is_python, started_meter
from loadtest.benchmark.profiling import profile, py_spy_available
from loadtest.benchmark.series import series
from loadtest.benchmark.stats import rounded, stats_ms

WARM_UP_S = 5
# the engine's idle CPU, measured before any order, is taken off the CPU under load
IDLE_S = 8
UNLOADED_S = 10
PROFILE_S = 12
# completions in the first seconds of the loop are still the warm-up's
RAMP_S = 2.0


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
            name = f"{a.status}->{'final' if b.status in FINAL else b.status}"
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


async def profile_busiest(ph: Phase, client: OrderClient, cpu: CpuMeter, concurrency: int,
                          out: Path) -> list[dict[str, Any]]:  # fmt: skip
    """py-spy on the processes that used the most CPU, while the load goes on."""
    candidates = [pid for pid in cpu.top_pids if is_python(pid)][:4]
    log(f"ceiling: py-spy on the busiest processes {candidates} ({PROFILE_S} s, load continues)")
    prof_task = asyncio.ensure_future(profile(candidates, PROFILE_S, out, ph.engine.proc.pid))
    await closed_loop(client, concurrency, PROFILE_S + 2, seed=5)
    return await prof_task


async def phase_ceiling(ph: Phase, duration_s: float, concurrency: int, out: Path, do_profile: bool,
                        ingress_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
    await ph.settle()
    log(f"ceiling: the engine's idle CPU ({IDLE_S} s, no orders)")
    idle = started_meter(ph.engine)
    await asyncio.sleep(IDLE_S)
    idle_cpu = idle.stop()
    client = OrderClient(ph.engine.url)
    try:
        log(f"ceiling: warm-up ({WARM_UP_S} s)")
        await closed_loop(client, concurrency, WARM_UP_S, seed=2)
        log(f"ceiling: one order at a time (unloaded overhead, {UNLOADED_S} s)")
        cpu = started_meter(ph.engine)
        single, _, _ = await closed_loop(client, 1, UNLOADED_S, seed=3)
        single_cpu = cpu.stop()
        log(f"ceiling: closed loop of {concurrency} clients for {duration_s:.0f} s")
        cpu = started_meter(ph.engine)
        async with ph.sampling_memory("load", 5):
            runs, began, stop_at = await closed_loop(client, concurrency, duration_s, seed=4)
        load_cpu = cpu.stop()
        profiles: list[dict[str, Any]] = []
        if do_profile and py_spy_available():
            profiles = await profile_busiest(ph, client, cpu, concurrency, out)
    finally:
        await client.aclose()
    log(f"ceiling: the ingress's own ceiling, {concurrency} clients, {ingress_s:.0f} s each for HTTP and WebSocket")
    ingress = await ingress_ceiling(ph, concurrency, ingress_s)
    done = [r for r in runs if r.final is not None and began + RAMP_S <= r.done <= stop_at]
    throughput = len(done) / (stop_at - began - RAMP_S)
    return {
        "concurrency": concurrency,
        "durationS": duration_s,
        "orders": len(runs),
        "throughputPerS": rounded(throughput, 1),
        "outcomes": {s: sum(1 for r in runs if r.final and r.final.status == s) for s in FINAL},
        "atCeiling": breakdown(runs),
        "unloaded": {"orders": len(single), **breakdown(single), "cpu": single_cpu},
        **cpu_per_order(load_cpu, throughput, idle_cpu),
        "ingress": ingress,
        "perIngress": ingress_ratios(throughput, ingress),
        "profiles": profiles,
        "series": series(runs, began),
    }
