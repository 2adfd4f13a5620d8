"""Custom metrics exported through Ray's Prometheus endpoint (prefixed ``ray_``).

Metric objects must be made inside the process that records them, so each is
built on first use and cached per process.
"""

from __future__ import annotations

from functools import cache

from ray.util.metrics import Counter, Gauge, Histogram

from engine.lifecycle_figures import SECONDS_BUCKETS, stage_label
from engine.ports import LifecycleMetrics

_SECONDS = list(SECONDS_BUCKETS)


@cache
def orders_finished() -> Counter:
    return Counter(
        "dex_orders_finished_total",
        description="Orders that reached a final status, by status and DEX.",
        tag_keys=("status", "dex"),
    )


@cache
def order_retries() -> Counter:
    return Counter(
        "dex_order_retries_total",
        description="Transient failures sent back to the queue, by error code.",
        tag_keys=("code",),
    )


@cache
def order_latency() -> Histogram:
    return Histogram(
        "dex_order_latency_seconds",
        description="Accepted to final status.",
        boundaries=_SECONDS,
        tag_keys=("status",),
    )


@cache
def stage_latency() -> Histogram:
    return Histogram(
        "dex_order_stage_seconds",
        description="Time spent reaching each status from the previous one.",
        boundaries=_SECONDS,
        tag_keys=("stage",),
    )


@cache
def queue_depth() -> Gauge:
    return Gauge(
        "dex_queue_depth",
        description="Orders waiting in the Redis queue, by state.",
        tag_keys=("state",),
    )


@cache
def running_executors() -> Gauge:
    return Gauge(
        "dex_running_executors",
        description="Orders the executor actor runs now (at most its slots).",
        tag_keys=("executor",),
    )


@cache
def pool_price() -> Gauge:
    return Gauge(
        "dex_pool_spot_price",
        description="Spot price of the pool's base token in its quote token.",
        tag_keys=("pool",),
    )


@cache
def pool_reserve() -> Gauge:
    return Gauge(
        "dex_pool_reserve",
        description="Tokens held by the pool, in whole units.",
        tag_keys=("pool", "token"),
    )


@cache
def oldest_open_order() -> Gauge:
    return Gauge(
        "dex_oldest_open_order_seconds",
        description="The oldest non-final order: its age (measure=age) and the time since it last moved "
        "(measure=idle); 0 when every order is final.",
        tag_keys=("measure",),
    )


class LifecycleMetricsOnRay:
    """The lifecycle's ``LifecycleMetrics`` port on the metrics above, and on ``local`` too (the
    executor's own figures, which the API's ``/metrics`` gathers at a scrape)."""

    def __init__(self, local: LifecycleMetrics | None = None) -> None:
        self.local = local

    def stage(self, previous: str, to: str, seconds: float) -> None:
        stage_latency().observe(seconds, tags={"stage": stage_label(previous, to)})
        if self.local is not None:
            self.local.stage(previous, to, seconds)

    def retried(self, code: str) -> None:
        order_retries().inc(tags={"code": code})
        if self.local is not None:
            self.local.retried(code)

    def finished(self, status: str, dex: str, seconds: float) -> None:
        orders_finished().inc(tags={"status": str(status), "dex": dex})
        order_latency().observe(seconds, tags={"status": str(status)})
        if self.local is not None:
            self.local.finished(status, dex, seconds)


class DispatchMetricsOnRay:
    """The dispatcher's ``DispatchMetrics`` port on the queue-depth gauge."""

    def depth(self, *, waiting: int, delayed: int, running: int) -> None:
        gauge = queue_depth()
        gauge.set(waiting, tags={"state": "waiting"})
        gauge.set(delayed, tags={"state": "delayed"})
        gauge.set(running, tags={"state": "running"})

    def oldest_open(self, age_s: float, idle_s: float) -> None:
        gauge = oldest_open_order()
        gauge.set(age_s, tags={"measure": "age"})
        gauge.set(idle_s, tags={"measure": "idle"})
