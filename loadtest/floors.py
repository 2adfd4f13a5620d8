"""The floors under the performance rows: what Ray, Python and PostgreSQL cost here at the least.

    .venv/bin/python -m loadtest.floors [--json out.json]

Measured on a Ray of its own with nothing of the engine in it:

- an idle actor (an async actor that was asked one thing and is left alone):
  its CPU, its wake-ups a second and its memory (PSS). Every actor of the
  engine costs at least this, whatever its code does;
- an actor's start: from ``.remote()`` to its first answer, and the CPU its
  process spends getting there;
- an actor call: the round trip of a no-op method, and the CPU of caller and
  actor per call;
- a PostgreSQL commit (``synchronous_commit`` on, as the engine runs it): a
  one-row insert in its own transaction.

Then the floors of the engine's rows, from the engine's own counts: the idle
CPU and memory of its worker processes for a market of 7 and of 49 pools, and
the engine's time per order from its actor hops and commits. A row whose must
is under its floor cannot be met by the engine's code on this machine: only
by fewer processes, fewer hops or fewer commits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# The engine's processes and its hot path, counted in its code (actors/system.py, engine/lifecycle.py):
# Ray workers beside the pools: router, trigger book, 2 executors, launchpad, dispatcher, market maker,
# chain, and Serve's controller, proxy and API replica.
OTHER_WORKERS = 11
# dispatcher → executor, executor → router, executor → pool (the swap)
HOPS_PER_ORDER = 3
# routing, building, submitted, confirmed: each status is committed before it is published
COMMITS_PER_ORDER = 4


@dataclass
class Floors:
    idle_actor_ms_per_s: float
    idle_actor_wakeups_per_s: float
    idle_actor_pss_mb: float
    actor_start_s: float
    actor_start_cpu_s: float
    call_p50_ms: float
    call_cpu_ms: float
    commit_p50_ms: float

    def stack(self, pools: int) -> dict[str, float]:
        """The least the engine's Ray workers cost at rest with ``pools`` pools."""
        workers = pools + OTHER_WORKERS
        return {
            "workers": workers,
            "idleCores": round(workers * self.idle_actor_ms_per_s / 1000, 3),
            "pssGB": round(workers * self.idle_actor_pss_mb / 1024, 2),
            "startCpuS": round(workers * self.actor_start_cpu_s, 1),
        }

    def per_order_ms(self) -> float:
        """The least the engine's own time per order is: its hops and its commits, one after the other."""
        return round(HOPS_PER_ORDER * self.call_p50_ms + COMMITS_PER_ORDER * self.commit_p50_ms, 1)


def _pss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_full_info().pss / 2**20


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _wakeups(pid: int) -> int:
    """Context switches of every thread of ``pid``: each is the thread going to sleep or being woken."""
    total = 0
    for thread in Path(f"/proc/{pid}/task").iterdir():
        for line in (thread / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def measure_ray(actors: int = 4, settle_s: float = 5.0, window_s: float = 10.0, calls: int = 500) -> dict[str, float]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", object_store_memory=256 * 2**20)
    try:

        @ray.remote(num_cpus=0)
        class Idle:
            async def pid(self) -> int:
                return os.getpid()

            async def nothing(self) -> None:
                return None

        started = time.monotonic()
        handles = [Idle.remote() for _ in range(actors)]
        pids = ray.get([h.pid.remote() for h in handles])
        start_s = (time.monotonic() - started) / actors  # they start two at a time on two cores
        start_cpu = statistics.mean(_cpu_s(p) for p in pids)
        time.sleep(settle_s)
        cpu0, wake0 = [_cpu_s(p) for p in pids], [_wakeups(p) for p in pids]
        time.sleep(window_s)
        idle_ms = statistics.mean((_cpu_s(p) - c) * 1000 / window_s for p, c in zip(pids, cpu0))
        wakeups = statistics.mean((_wakeups(p) - w) / window_s for p, w in zip(pids, wake0))
        pss = statistics.mean(_pss_mb(p) for p in pids)
        me, target = psutil.Process(), pids[0]
        cpu_before = sum(me.cpu_times()[:2]) + _cpu_s(target)
        latencies = []
        for _ in range(calls):
            t = time.perf_counter()
            ray.get(handles[0].nothing.remote())
            latencies.append((time.perf_counter() - t) * 1000)
        call_cpu = (sum(me.cpu_times()[:2]) + _cpu_s(target) - cpu_before) * 1000 / calls
    finally:
        ray.shutdown()
    return {"idle_actor_ms_per_s": round(idle_ms, 2), "idle_actor_wakeups_per_s": round(wakeups, 1),
            "idle_actor_pss_mb": round(pss, 1), "actor_start_s": round(start_s, 2),
            "actor_start_cpu_s": round(start_cpu, 2), "call_p50_ms": round(statistics.median(latencies), 2),
            "call_cpu_ms": round(call_cpu, 2)}  # fmt: skip


async def _commits(url: str, commits: int) -> list[float]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS floor_commits (id bigserial PRIMARY KEY, at timestamptz)")
        latencies = []
        for _ in range(commits):
            t = time.perf_counter()
            await conn.execute("INSERT INTO floor_commits (at) VALUES (clock_timestamp())")
            latencies.append((time.perf_counter() - t) * 1000)
        await conn.execute("DROP TABLE floor_commits")
    return latencies


def measure_commit(commits: int = 300) -> float:
    """p50 of a one-row insert committed on its own, on a durable local PostgreSQL (as the engine's)."""
    from localservers.postgres import LocalPostgres

    with tempfile.TemporaryDirectory(prefix="floors-") as data_dir:
        postgres = LocalPostgres(Path(data_dir) / "postgres", durable=True)
        try:
            return round(statistics.median(asyncio.run(_commits(postgres.start(detached=False), commits))), 2)
        finally:
            postgres.stop()


def report(floors: Floors) -> str:
    seven, fortynine = floors.stack(7), floors.stack(49)
    return "\n".join([
        f"an idle actor: {floors.idle_actor_ms_per_s:.1f} ms of CPU a second, "
        f"{floors.idle_actor_wakeups_per_s:.0f} wake-ups a second, {floors.idle_actor_pss_mb:.0f} MB PSS",
        f"an actor's start: {floors.actor_start_s:.2f} s each, {floors.actor_start_cpu_s:.2f} s of CPU in its process",
        f"an actor call: p50 {floors.call_p50_ms:.2f} ms, {floors.call_cpu_ms:.2f} ms of CPU (caller + actor)",
        f"a PostgreSQL commit: p50 {floors.commit_p50_ms:.2f} ms",
        f"7 pools: {seven['workers']} Ray workers, at least {seven['idleCores']:.3f} cores idle, "
        f"{seven['pssGB']:.2f} GB PSS, {seven['startCpuS']:.0f} s of CPU to start (Ray's own processes not counted)",
        f"49 pools: {fortynine['workers']} Ray workers, at least {fortynine['idleCores']:.3f} cores idle, "
        f"{fortynine['pssGB']:.2f} GB PSS, {fortynine['startCpuS']:.0f} s of CPU to start",
        f"one order: at least {floors.per_order_ms():.1f} ms of the engine's own time "
        f"({HOPS_PER_ORDER} hops, {COMMITS_PER_ORDER} commits, one after the other)",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    from loadtest.benchmark.machine import machine, tree_state, tree_text

    tree, host = tree_state(), machine()
    floors = Floors(**measure_ray(), commit_p50_ms=measure_commit())
    print(f"code: {tree_text(tree)}; {host['cpu']}, {host['cores']} cores, Ray {host['ray']}")
    print(report(floors))
    if args.json:
        args.json.write_text(json.dumps({**asdict(floors), "pools7": floors.stack(7), "pools49": floors.stack(49),
                                         "perOrderMs": floors.per_order_ms(), "tree": tree, "machine": host},
                                        indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
