"""The chain's figures at one scrape, as Prometheus families (from ``GET /api/chain``'s info).

Counts since the chain actor started are counters (a restarted chain starts again at zero, which
Prometheus reads as a counter reset); the slot, the load and the recent fees are gauges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

OUTCOMES = ("submitted", "landed", "failed", "expired", "reverted", "sandwiched")


class ChainCollector:
    """Collects what ``info`` says (the chain desk's info, taken at the scrape); None: the chain is off."""

    def __init__(self, info: dict[str, Any] | None) -> None:
        self.info = info

    def collect(self) -> Iterator[Metric]:
        info = self.info
        if info is None:
            return
        slot = GaugeMetricFamily("dex_chain_slot", "The chain's current slot")
        slot.add_metric([], info["slot"])
        height = GaugeMetricFamily("dex_chain_block_height", "The chain's block height")
        height.add_metric([], info["blockHeight"])
        load = GaugeMetricFamily("dex_chain_load", "Other traffic's demand for block space, in blocks",
                                 labels=["congestion"])  # fmt: skip
        load.add_metric([info["congestion"]], info["load"])
        pending = GaugeMetricFamily("dex_chain_pending_transactions", "Our transactions waiting for a slot")
        pending.add_metric([], info["pending"])
        fees = GaugeMetricFamily("dex_chain_recent_priority_fee", "Percentiles of the compute-unit prices landed "
                                 "in the last 150 blocks (micro-lamports per CU)", labels=["percentile"])  # fmt: skip
        for name, value in info["recentFees"].items():
            if name.startswith("p") and isinstance(value, int | float):
                fees.add_metric([name], value)
        transactions = CounterMetricFamily("dex_chain_transactions", "Our transactions since the chain started, "
                                           "by outcome", labels=["outcome"])  # fmt: skip
        for outcome in OUTCOMES:
            transactions.add_metric([outcome], info[outcome])
        skipped = CounterMetricFamily("dex_chain_skipped_slots", "Slots skipped since the chain started")
        skipped.add_metric([], info["skippedSlots"])
        yield from (slot, height, load, pending, fees, transactions, skipped)
