"""Phase 1, the seed defaults: a backlog of orders kept in flight, sustained throughput
over whole minutes against min(rate limit, executors / mean order time)."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadtest.benchmark.client import OrderClient, OrderRun, order_body
from loadtest.benchmark.phase import Phase
from loadtest.benchmark.processes import started_meter
from loadtest.benchmark.series import cumulative, series
from loadtest.benchmark.stats import rounded, stats_ms

# start stamps are taken by the dispatcher just after the limiter's grant,
# which runs on Redis's clock: allow them this much jitter
STAMP_JITTER_S = 0.05


@dataclass
class BacklogRun:
    """``backlog`` traders, each submitting its next order as soon as the last one ended."""

    runs: list[OrderRun]
    began: float
    stop_at: float
    cpu: dict[str, Any]


@dataclass
class SustainedWindow:
    """Completions counted over whole minutes of the limiter, from the first start."""

    t0: float
    window_s: float
    whole_minutes: int
    counts: list[int]  # completions in each window, one window start a second
    starts_in_window: int

    @property
    def completed(self) -> float:
        return float(np.mean(self.counts)) if self.counts else 0.0


async def phase_seed(ph: Phase, duration_s: float, backlog: int) -> dict[str, Any]:
    await ph.settle()
    run = await keep_backlog(ph, duration_s, backlog)
    return seed_figures(run, ph.settings, duration_s, backlog)


async def keep_backlog(ph: Phase, duration_s: float, backlog: int) -> BacklogRun:
    client = OrderClient(ph.engine.url)
    rng = random.Random(1)
    counter = itertools.count()
    runs: list[OrderRun] = []
    began = time.time()
    stop_at = began + duration_s
    cpu = started_meter(ph.engine)

    async def trader() -> None:
        while time.time() < stop_at:
            run = await client.submit(order_body(rng, next(counter)))
            runs.append(run)
            await client.follow(run, timeout_s=max(1.0, stop_at - time.time()))

    try:
        async with ph.sampling_memory("load", 10):
            await asyncio.gather(*(trader() for _ in range(backlog)))
    finally:
        await client.aclose()
    return BacklogRun(runs, began, stop_at, cpu.stop())


def sustained_window(finished: list[OrderRun], starts: list[float], run: BacklogRun,
                     mean_order_s: float) -> SustainedWindow:  # fmt: skip
    t0 = starts[0] if starts else run.began
    # whole minutes of completions, shifted by the time an order takes
    usable = run.stop_at - t0 - mean_order_s - 1.0
    minutes = int(usable // 60)
    window = minutes * 60.0 if minutes >= 1 else max(usable, 1.0)
    # Under the limiter, starts come in bursts (a minute's worth at once, then
    # a pause), so a window's count depends on where its edges fall: average
    # the count over every window start (1-s steps) that fits in the run.
    done_at = np.sort([r.final.committed for r in finished])
    offsets = np.arange(mean_order_s, max(mean_order_s, run.stop_at - t0 - window - 1.0) + 1e-9, 1.0)
    counts = [int(np.searchsorted(done_at, t0 + o + window) - np.searchsorted(done_at, t0 + o)) for o in offsets]
    started_in = [t for t in starts if t0 <= t < t0 + window]
    return SustainedWindow(t0, window, minutes, counts, len(started_in))


def most_starts_in_a_window(starts: list[float], window_s: float) -> int:
    """The limiter's check: the most starts in any sliding window of its length."""
    most = 0
    j = 0
    for i, t in enumerate(starts):
        while starts[j] <= t - window_s + STAMP_JITTER_S:
            j += 1
        most = max(most, i - j + 1)
    return most


def tightest_span(starts: list[float], limit: int) -> float | None:
    """The shortest span of ``limit`` + 1 consecutive starts (shorter than the window: a leak)."""
    if limit > 0 and len(starts) > limit:
        return min(starts[i + limit] - starts[i] for i in range(len(starts) - limit))
    return None


def seed_settings(s: Any) -> dict[str, Any]:
    d = s.dispatch
    return {"executors": d.executors, "ratePerMinute": d.rate_limit_per_minute,
            "rateWindowS": d.rate_limit_window_s, "quoteS": s.latency.quote_s,
            "executionS": [s.latency.execution_min_s, s.latency.execution_max_s],
            "market": s.market.enabled, "chain": s.chain_on}  # fmt: skip


def seed_figures(run: BacklogRun, s: Any, duration_s: float, backlog: int) -> dict[str, Any]:
    runs = run.runs
    finished = [r for r in runs if r.final is not None and r.started_at is not None]
    starts = sorted(r.started_at for r in runs if r.started_at is not None)
    occupancy = [r.final.committed - r.started_at for r in finished]
    mean_order_s = float(np.mean(occupancy)) if occupancy else float("nan")
    rate_per_s = s.dispatch.rate_limit_per_minute / s.dispatch.rate_limit_window_s if s.dispatch.rate_limit_per_minute > 0 else math.inf
    executor_bound = s.dispatch.executors / mean_order_s if occupancy else math.nan
    limit = min(rate_per_s, executor_bound)
    window = sustained_window(finished, starts, run, mean_order_s)
    throughput = window.completed / window.window_s
    # with the chain on, a swap lands when the chain's slots say, not after the execution latency:
    # the settings then tell no simulated time to subtract
    simulated = None if s.chain_on else s.latency.quote_s + (s.latency.execution_min_s + s.latency.execution_max_s) / 2
    retried = sum(1 for r in runs if any(e.status == "pending" and e.seq > 1 for e in r.events))
    counts = window.counts
    return {
        "settings": seed_settings(s),
        "durationS": duration_s,
        "backlog": backlog,
        "submitted": len(runs),
        "finished": len(finished),
        "outcomes": dict(Counter(r.final.status for r in finished)),
        "retried": retried,
        "meanOrderS": rounded(mean_order_s, 3),
        "orderTimeMs": stats_ms(occupancy),
        "simulatedMeanS": simulated,
        "overheadMeanMs": None if simulated is None else rounded((mean_order_s - simulated) * 1000, 1),
        "rateLimitPerS": rounded(rate_per_s, 4),
        "executorBoundPerS": rounded(executor_bound, 3),
        "limitPerS": rounded(limit, 4),
        "limitedBy": "rate limit" if rate_per_s <= executor_bound else "executors / order time",
        "windowS": window.window_s,
        "wholeMinutes": window.whole_minutes,
        "completedInWindow": round(window.completed, 1),
        "windowsAveraged": len(counts),
        "completedRange": [min(counts), max(counts)] if counts else None,
        "startsInWindow": window.starts_in_window,
        "throughputPerS": rounded(throughput, 4),
        "throughputPerMin": rounded(throughput * 60, 1),
        # under a whole window of the limiter the ratio means nothing (the first
        # window's burst): only whole minutes count
        "ratio": rounded(throughput / limit, 3) if window.whole_minutes >= 1 or math.isinf(rate_per_s) else None,
        "startsRatio": rounded(window.starts_in_window / window.window_s / limit, 3),
        "mostStartsInAWindow": most_starts_in_a_window(starts, s.dispatch.rate_limit_window_s),
        "tightestSpanOfLimitPlusOneS": rounded(tightest_span(starts, s.dispatch.rate_limit_per_minute), 3),
        "queueWaitMs": stats_ms([r.started_at - r.pending_at for r in finished if r.pending_at]),
        "e2eMs": stats_ms([r.done - r.posted for r in finished if r.done]),
        "cpu": run.cpu,
        "series": series(runs, run.began),
        "cumulative": cumulative(finished, window.t0),
        "t0Offset": window.t0 - run.began,
    }
