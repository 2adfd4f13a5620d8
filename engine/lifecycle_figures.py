"""The lifecycle's figures, kept in the process that runs the orders: histograms and counters.

Each executor keeps its own (they implement the ``LifecycleMetrics`` port); a
scrape of the API's ``/metrics`` gathers them from every executor and shows
them as Prometheus histograms and counters. Ray's own metrics carry the same
observations, but only through Ray's export port and some seconds late.
Counting here costs a bisect and a few additions per status change.
"""

from __future__ import annotations

import copy
from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds, for every latency the lifecycle records (Ray's histograms use the same bounds).
SECONDS_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def stage_label(previous: str, to: str) -> str:
    """How a stage is named in every metric: ``submitted->confirmed``."""
    return f"{previous}->{to}"


@dataclass(slots=True)
class HistogramFigures:
    """Observations counted into buckets (``counts[i]``: at most ``bounds[i]``, not cumulative;
    the last one: above the top bound) with their sum."""

    bounds: tuple[float, ...] = SECONDS_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at most that)`` for every bound, then ``(inf, all)``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            running += n
            out.append((bound, running))
        return out


@dataclass(slots=True)
class LifecycleFigures:
    """One process's lifecycle figures since it started; the ``LifecycleMetrics`` port."""

    stages: dict[str, HistogramFigures] = field(default_factory=dict)  # by stage_label
    latency: dict[str, HistogramFigures] = field(default_factory=dict)  # accepted to final, by final status
    retries: dict[str, int] = field(default_factory=dict)  # by error code
    finished_orders: dict[tuple[str, str], int] = field(default_factory=dict)  # by (final status, dex)

    def stage(self, previous: str, to: str, seconds: float) -> None:
        _histogram(self.stages, stage_label(previous, to)).observe(seconds)

    def retried(self, code: str) -> None:
        self.retries[code] = self.retries.get(code, 0) + 1

    def finished(self, status: str, dex: str, seconds: float) -> None:
        key = (str(status), dex)
        self.finished_orders[key] = self.finished_orders.get(key, 0) + 1
        _histogram(self.latency, str(status)).observe(seconds)

    def snapshot(self) -> LifecycleFigures:
        """A copy that no later observation changes (what a scrape takes away)."""
        return copy.deepcopy(self)


def _histogram(by: dict[str, HistogramFigures], key: str) -> HistogramFigures:
    found = by.get(key)
    if found is None:
        found = by[key] = HistogramFigures()
    return found


@dataclass(frozen=True, slots=True)
class ExecutorFigures:
    """What one executor actor reports at a scrape; ``lifecycle`` None: it did not answer."""

    executor: str
    slots: int = 0
    running: int = 0
    lifecycle: LifecycleFigures | None = None

    @property
    def answered(self) -> bool:
        return self.lifecycle is not None
