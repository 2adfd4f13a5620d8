"""The executors' figures at one scrape, as Prometheus families (a custom collector).

Every series carries the ``executor`` label: an executor that misses a scrape
then only leaves a gap in its own series, where a sum over all executors
would drop and read as a counter reset. Sum over ``executor`` when querying.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from engine.lifecycle_figures import ExecutorFigures, HistogramFigures


def _buckets(histogram: HistogramFigures) -> list[tuple[str, float]]:
    return [(floatToGoString(bound), float(n)) for bound, n in histogram.cumulative()]


class ExecutorCollector:
    """Collects what ``figures`` say (taken at the scrape; nothing is read here)."""

    def __init__(self, figures: Sequence[ExecutorFigures]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("dex_executor_up", "1 when the executor answered this scrape", labels=["executor"])
        slots = GaugeMetricFamily("dex_executor_slots", "Order slots of the executor", labels=["executor"])
        running = GaugeMetricFamily("dex_executor_running", "Orders the executor runs now", labels=["executor"])
        stages = HistogramMetricFamily(
            "dex_order_stage_seconds", "Time to reach each status from the previous one", labels=["stage", "executor"]
        )
        latency = HistogramMetricFamily(
            "dex_order_latency_seconds", "Accepted to final status, by final status", labels=["status", "executor"]
        )
        retries = CounterMetricFamily(
            "dex_order_retries", "Transient failures sent back to the queue, by error code", labels=["code", "executor"]
        )
        finished = CounterMetricFamily(
            "dex_orders_finished", "Orders that reached a final status, by status and DEX",
            labels=["status", "dex", "executor"],
        )  # fmt: skip
        for one in self.figures:
            ex = one.executor
            up.add_metric([ex], 1.0 if one.answered else 0.0)
            if one.lifecycle is None:
                continue
            slots.add_metric([ex], one.slots)
            running.add_metric([ex], one.running)
            for stage, histogram in sorted(one.lifecycle.stages.items()):
                stages.add_metric([stage, ex], _buckets(histogram), histogram.total)
            for status, histogram in sorted(one.lifecycle.latency.items()):
                latency.add_metric([status, ex], _buckets(histogram), histogram.total)
            for code, n in sorted(one.lifecycle.retries.items()):
                retries.add_metric([code, ex], n)
            for (status, dex), n in sorted(one.lifecycle.finished_orders.items()):
                finished.add_metric([status, dex, ex], n)
        yield from (up, slots, running, stages, latency, retries, finished)
