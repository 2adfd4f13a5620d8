"""Time series of a run, for the chart."""

from __future__ import annotations

from typing import Any

from loadtest.benchmark.client import OrderRun
from loadtest.benchmark.stats import pct


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
