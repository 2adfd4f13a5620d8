"""CPU and memory of the engine's process tree, by the role of each process."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol

import psutil

RAY_CORE = "Ray core (GCS, raylet, agents)"
# a marker in the process name or command line -> its role
ROLES = (
    ("ServeReplica", "Serve replica (API)"),
    ("ProxyActor", "Serve proxy"),
    ("ServeController", "Serve controller"),
    ("OrderExecutor", "actors: executors"),
    ("PoolActor", "actors: pools"),
    ("OrderRouter", "actors: router"),
    ("Dispatcher", "actors: dispatcher"),
    ("MarketMaker", "actors: market"),
    ("ray::IDLE", "Ray idle workers"),
    ("DashboardAgent", RAY_CORE),
    ("RuntimeEnvAgent", RAY_CORE),
    ("gcs_server", RAY_CORE),
    ("raylet", RAY_CORE),
    ("log_monitor", RAY_CORE),
    ("monitor.py", RAY_CORE),
    ("dashboard", RAY_CORE),
)


class EngineTree(Protocol):
    """What the meters need of an engine: its processes and its driver's pid."""

    proc: Any

    def processes(self) -> list[psutil.Process]: ...


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
    for marker, label in ROLES:
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


def is_python(pid: int) -> bool:
    """A process py-spy can sample."""
    try:
        p = psutil.Process(pid)
        return "python" in (p.exe() or "") or p.name().startswith("ray::")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class CpuMeter:
    """CPU seconds used between start() and stop(): by the engine's processes (by role),
    by this client, and by the whole machine."""

    def __init__(self, engine: EngineTree) -> None:
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


def started_meter(engine: EngineTree) -> CpuMeter:
    meter = CpuMeter(engine)
    meter.start()
    return meter
