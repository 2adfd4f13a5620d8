"""The floors' arithmetic, and the counters they read from /proc (loadtest.floors)."""

from __future__ import annotations

import os
import time

from loadtest.floors import COMMITS_PER_ORDER, HOPS_PER_ORDER, OTHER_WORKERS, Floors, _wakeups, report


def floors(**changes: float) -> Floors:
    figures = dict(idle_actor_ms_per_s=8.0, idle_actor_wakeups_per_s=100.0, idle_actor_pss_mb=51.2,
                   actor_start_s=1.5, actor_start_cpu_s=1.0, call_p50_ms=1.0, call_cpu_ms=1.2, commit_p50_ms=2.5)  # fmt: skip
    return Floors(**{**figures, **changes})


def test_the_stack_floor_counts_every_pool_and_every_other_worker() -> None:
    seven, fortynine = floors().stack(7), floors().stack(49)
    assert seven["workers"] == 7 + OTHER_WORKERS == 18
    assert seven["idleCores"] == round(18 * 8.0 / 1000, 3)
    assert fortynine["workers"] == 60
    assert fortynine["pssGB"] == round(60 * 51.2 / 1024, 2) == 3.0
    assert fortynine["startCpuS"] == 60.0


def test_an_order_costs_its_hops_and_its_commits_one_after_the_other() -> None:
    assert floors().per_order_ms() == HOPS_PER_ORDER * 1.0 + COMMITS_PER_ORDER * 2.5
    assert floors(commit_p50_ms=0.5).per_order_ms() < floors().per_order_ms()


def test_the_report_names_each_floor() -> None:
    text = report(floors())
    assert "8.0 ms of CPU a second" in text and "100 wake-ups a second" in text
    assert "49 pools: 60 Ray workers, at least 0.480 cores idle, 3.00 GB PSS" in text
    assert "at least 13.0 ms" in text


def test_wakeups_count_this_process_going_to_sleep() -> None:
    before = _wakeups(os.getpid())
    for _ in range(5):
        time.sleep(0.002)
    assert _wakeups(os.getpid()) >= before + 5
