"""The lifecycle's in-process figures and how /metrics shows them (fake engine and stores, no Ray)."""

from __future__ import annotations

import asyncio

import pytest

from engine.lifecycle_figures import ExecutorFigures, HistogramFigures, LifecycleFigures
from serve.metrics import engine_figures
from tests.unit.metrics_fakes import FakeEngine, busy_executor, fake_services, samples


def scrape(services) -> dict:
    return samples(asyncio.run(engine_figures(services)).decode())


def test_a_histogram_counts_each_value_in_the_first_bucket_that_holds_it() -> None:
    histogram = HistogramFigures(bounds=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]  # le semantics: a value on a bound is in that bound's bucket
    assert histogram.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert histogram.count == 5 and histogram.total == pytest.approx(8.65)


def test_the_lifecycle_figures_are_the_lifecycle_metrics_port_and_a_snapshot_stays_put() -> None:
    figures = LifecycleFigures()
    figures.stage("submitted", "confirmed", 2.0)
    figures.retried("POOL_TIMEOUT")
    figures.finished("confirmed", "raydium", 2.5)
    taken = figures.snapshot()
    figures.stage("submitted", "confirmed", 2.0)
    figures.retried("POOL_TIMEOUT")
    assert taken.stages["submitted->confirmed"].count == 1 and figures.stages["submitted->confirmed"].count == 2
    assert taken.retries == {"POOL_TIMEOUT": 1} and taken.finished_orders == {("confirmed", "raydium"): 1}
    assert taken.latency["confirmed"].total == 2.5


def test_stage_histograms_retries_and_slots_are_real_prometheus_families_per_executor() -> None:
    got = scrape(fake_services())
    stage = (("executor", "0"), ("stage", "submitted->confirmed"))
    assert got[("dex_order_stage_seconds_count", stage)] == 3
    assert got[("dex_order_stage_seconds_sum", stage)] == pytest.approx(7.5)
    assert got[("dex_order_stage_seconds_bucket", (*stage[:1], ("le", "2.0"), *stage[1:]))] == 0
    assert got[("dex_order_stage_seconds_bucket", (*stage[:1], ("le", "3.0"), *stage[1:]))] == 3
    assert got[("dex_order_stage_seconds_bucket", (*stage[:1], ("le", "+Inf"), *stage[1:]))] == 3
    both = sum(v for (name, labels), v in got.items()
               if name == "dex_order_stage_seconds_count" and ("stage", "submitted->confirmed") in labels)  # fmt: skip
    assert both == 5  # summed over the executors: every order once
    assert got[("dex_order_retries_total", (("code", "SLIPPAGE_EXCEEDED"), ("executor", "1")))] == 1
    assert got[("dex_orders_finished_total", (("dex", "meteora"), ("executor", "0"), ("status", "confirmed")))] == 3
    assert got[("dex_order_latency_seconds_count", (("executor", "1"), ("status", "confirmed")))] == 2
    assert got[("dex_executor_running", (("executor", "0"),))] == 1
    assert got[("dex_executor_slots", (("executor", "1"),))] == 5
    assert got[("dex_engine_up", ())] == 1


def test_orders_by_status_and_dex_and_the_totals_by_status_come_from_one_query() -> None:
    got = scrape(fake_services())
    assert got[("dex_orders_by_dex", (("dex", "meteora"), ("status", "confirmed")))] == 3
    assert got[("dex_orders_by_dex", (("dex", "none"), ("status", "pending")))] == 1
    assert got[("dex_orders", (("status", "confirmed"),))] == 5
    assert got[("dex_orders", (("status", "failed"),))] == 0  # every status, zero included
    without = scrape(fake_services(by_dex=False))  # services without the figures: by status only
    assert without[("dex_orders", (("status", "confirmed"),))] == 5
    assert not [key for key in without if key[0] == "dex_orders_by_dex"]


def test_an_executor_that_does_not_answer_leaves_the_others_counted_and_the_engine_down() -> None:
    engine = FakeEngine(executors=[busy_executor(0, 3), ExecutorFigures("1")])
    got = scrape(fake_services(engine))
    assert got[("dex_engine_up", ())] == 0
    assert got[("dex_executor_up", (("executor", "0"),))] == 1 and got[("dex_executor_up", (("executor", "1"),))] == 0
    assert got[("dex_order_stage_seconds_count", (("executor", "0"), ("stage", "submitted->confirmed")))] == 3
    assert not [key for key in got if key[0].startswith("dex_order_stage") and ("executor", "1") in key[1]]
    assert got[("dex_pool_price", (("pool", "raydium:SOL-USDC"),))] == 150.0  # the rest of the engine still counts


def test_an_engine_that_is_away_still_gives_the_stores_figures() -> None:
    class Broken(FakeEngine):
        async def executor_figures(self) -> list[ExecutorFigures]:
            raise RuntimeError("not connected to Ray")

    got = scrape(fake_services(Broken(down=True)))
    assert got[("dex_engine_up", ())] == 0
    assert got[("dex_queue_orders", (("state", "delayed"),))] == 2
    assert got[("dex_oldest_active_order_seconds", ())] == 4.5
    assert not [key for key in got if key[0] in ("dex_pool_price", "dex_executor_up", "dex_dispatcher")]


def test_the_chain_gives_its_slot_fees_and_transactions_by_outcome_and_none_when_it_is_off() -> None:
    got = scrape(fake_services())
    assert got[("dex_chain_slot", ())] == 1_200 and got[("dex_chain_block_height", ())] == 1_150
    assert got[("dex_chain_load", (("congestion", "busy"),))] == 0.93
    assert got[("dex_chain_recent_priority_fee", (("percentile", "p95"),))] == 900_000
    assert not [key for key in got if key[0] == "dex_chain_recent_priority_fee" and ("percentile", "samples") in key[1]]
    assert got[("dex_chain_transactions_total", (("outcome", "landed"),))] == 6
    assert got[("dex_chain_transactions_total", (("outcome", "sandwiched"),))] == 1
    assert got[("dex_chain_skipped_slots_total", ())] == 50
    assert got[("dex_engine_up", ())] == 1

    off = scrape(fake_services(FakeEngine(chain=None)))
    assert off[("dex_engine_up", ())] == 1  # the chain off is a way to run, not a fault
    assert not [key for key in off if key[0].startswith("dex_chain")]


def test_a_chain_that_does_not_answer_leaves_its_figures_out_and_the_engine_down() -> None:
    got = scrape(fake_services(FakeEngine(chain_down=True)))
    assert got[("dex_engine_up", ())] == 0
    assert not [key for key in got if key[0].startswith("dex_chain")]
    assert got[("dex_pool_price", (("pool", "raydium:SOL-USDC"),))] == 150.0
