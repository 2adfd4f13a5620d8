"""CPU per order under load, net of the idle CPU measured on the same engine, so that
background work (Ray's agents, Serve's controller, PostgreSQL's checkpointer) is not
charged to orders; the client's own CPU beside it."""

from __future__ import annotations

from typing import Any


def net_by_role(load: dict[str, float], idle: dict[str, float]) -> dict[str, float]:
    """Cores by role under load less the same role's idle cores (never below zero)."""
    return {k: max(0.0, v - idle.get(k, 0.0)) for k, v in load.items()}


def cpu_per_order(load_cpu: dict[str, Any], throughput: float, idle_cpu: dict[str, Any] | None = None) -> dict[str, Any]:
    """CPU milliseconds per order, by role, for the engine (less its idle CPU) and for the client."""
    idle_cores = idle_cpu["engineCores"] if idle_cpu else 0.0
    by_role = net_by_role(load_cpu["engineByRole"], idle_cpu["engineByRole"] if idle_cpu else {})
    net_cores = max(0.0, load_cpu["engineCores"] - idle_cores)
    per = 1000 / throughput if throughput else None
    return {
        "cpu": load_cpu,
        "idleCpu": idle_cpu,
        "idleEngineCores": idle_cores,
        "cpuMsPerOrder": {k: round(v * per, 2) for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])}
        if per else {},
        "engineCpuMsPerOrder": round(net_cores * per, 1) if per else None,
        "engineCpuMsPerOrderGross": round(load_cpu["engineCores"] * per, 1) if per else None,
        "clientCpuMsPerOrder": round(load_cpu["clientCores"] * per, 1) if per else None,
    }
