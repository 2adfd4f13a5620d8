"""The benchmark's scorecard from a recorded run's data: the rows in the issue's order,
pass/fail against each must, the ingress-normalised ratio, CPU per order net of idle,
the watchers judged by their own events, the tree named; no engine, no clock."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loadtest.benchmark import cli
from loadtest.benchmark.ingress import ingress_ratios
from loadtest.benchmark.machine import dirty_files, tree_text
from loadtest.benchmark.per_order import cpu_per_order
from loadtest.benchmark.scorecard import scorecard, scorecard_lines
from loadtest.benchmark.watchers import held_within, own_p99

ISSUE_ROWS = [
    "ceiling, zero latencies, no limits",
    "one client, zero latencies, p50 / p99",
    "engine's own time per order (dispatch → final commit), p50",
    "idle CPU of the whole stack",
    "memory (PSS) of the whole stack, idle",
    "start to first healthy answer",
    "WebSocket watchers held, their own events p99 ≤ 100 ms",
    "seed defaults (10 slots, 100/min, 0.2 s quotes, 2–3 s execution) vs the limit",
    "a market of 49 pools: start, idle CPU, idle PSS",
]


def ms(p50: float | None, p99: float | None, n: int = 100) -> dict[str, Any]:
    return {"n": n if p50 is not None else 0, "p50": p50, "p90": p99, "p99": p99, "mean": p50, "max": p99}


def cpu(engine: float, client: float, by_role: dict[str, float], seconds: float = 30.0) -> dict[str, Any]:
    return {"seconds": seconds, "cores": 2, "engineCores": engine, "clientCores": client,
            "machineCores": engine + client + 0.05, "otherCores": 0.05, "engineByRole": by_role}  # fmt: skip


def memory(total: float, by_role: dict[str, tuple[float, int]]) -> dict[str, Any]:
    return {"kind": "PSS", "totalMB": total, "rssTotalMB": total * 1.6, "processes": sum(n for _, n in by_role.values()),
            "byRole": {k: {"MB": mb, "processes": n} for k, (mb, n) in by_role.items()}}  # fmt: skip


def at_rest(start_s: float, cores: float, total_mb: float, pools: int = 7) -> dict[str, Any]:
    return {
        "startToHealthyS": start_s,
        "cpu": cpu(cores, 0.002, {"Ray core (GCS, raylet, agents)": cores * 0.5, "actors: market": cores * 0.3,
                                  "actors: pools": cores * 0.2}),
        "memory": memory(total_mb, {"actors: executors": (690.0, 10), "actors: pools": (60.0 * pools, pools),
                                    "Ray core (GCS, raylet, agents)": (370.0, 6)}),
    }  # fmt: skip


def step(watchers: int, probe_p99: float, burst_p99: float, own: float | None, errors: int = 0) -> dict[str, Any]:
    s = {"watchers": watchers, "peakOpen": watchers, "connectRatePerS": 150.0, "connectMs": ms(40.0, 90.0),
         "errors": {"timeout": errors} if errors else {}, "heldDeliveryMs": ms(5.0, probe_p99),
         "probeDeliveryMs": ms(5.0, probe_p99), "burstDeliveryMs": ms(20.0, burst_p99),
         "burstFanout": max(0, watchers - 48) // 4, "cpu": cpu(0.5, 0.05, {"Serve replica (API)": 0.3})}  # fmt: skip
    if own is not None:
        s["ownDeliveryMs"] = ms(8.0, own)
    return s


def recorded_run() -> dict[str, Any]:
    """A run's data as the benchmark records it, with the figures of this machine at filing."""
    unloaded = {"orders": 189, "e2eMs": ms(51.0, 65.7), "postMs": ms(16.8, 25.0), "executorMs": ms(34.3, 47.1),
                "stagesMs": {"pending->routing": ms(20.4, 30.0), "submitted->final": ms(9.1, 14.0)}}  # fmt: skip
    load = cpu(1.80, 0.14, {"Serve replica (API)": 0.41, "actors: executors": 0.41, "Serve proxy": 0.34})
    idle = cpu(0.20, 0.0, {"Serve replica (API)": 0.02, "Ray core (GCS, raylet, agents)": 0.15}, seconds=8.0)
    ingress = {"concurrency": 24, "durationS": 10.0,
               "http": {"what": "GET /api/orders/ws", "perS": 520.0, "cpu": cpu(1.3, 0.6, {})},
               "ws": {"what": "WebSocket session", "perS": 260.0, "cpu": cpu(1.4, 0.5, {})}}  # fmt: skip
    seed = {"ratio": 0.997, "throughputPerS": 1.6624, "limitPerS": 1.6667, "limitedBy": "rate limit",
            "rateLimitPerS": 1.6667, "executorBoundPerS": 3.584,
            "meanOrderS": 2.79, "simulatedMeanS": 2.7, "cpu": cpu(0.4, 0.02, {}),
            "settings": {"executors": 10}}  # fmt: skip
    return {
        "machine": {"commit": "eec46ab"},
        "tree": {"commit": "eec46ab", "clean": True, "dirty": []},
        "quick": False,
        "ceiling": {"throughputPerS": 26.0, "durationS": 45.0, "concurrency": 24, "unloaded": unloaded,
                    **cpu_per_order(load, 26.0, idle), "ingress": ingress,
                    "perIngress": ingress_ratios(26.0, ingress)},  # fmt: skip
        "idle": {"settleS": 20.0, "measureS": 30.0, "market moving": at_rest(21.1, 0.24, 1663.0),
                 "market still": at_rest(20.5, 0.16, 1610.0)},  # fmt: skip
        "pools49": {**at_rest(51.5, 0.99, 4600.0, pools=49), "poolsTimes": 7,
                    "poolActor": {"pools": 49, "cpuMsPerS": 4.0, "MB": 60.0}},  # fmt: skip
        "watchers": {"budgetMs": 100.0, "maxWithinBudget": 100, "stoppedEarly": True,
                     "steps": [step(100, 9.9, 32.0, 30.1), step(200, 83.5, 1716.8, 1702.0)]},  # fmt: skip
        "seed": seed,
        "starts": {"ceiling": 22.3},
    }


def by_measure(data: dict[str, Any]) -> dict[str, Any]:
    return {s.measure: s for s in scorecard(data)}


def test_the_rows_are_the_issues_in_its_order() -> None:
    assert [s.measure for s in scorecard(recorded_run())] == ISSUE_ROWS
    assert [s.measure for s in scorecard({"machine": {"commit": "x"}})] == ISSUE_ROWS


def test_a_run_without_a_phase_says_its_rows_were_not_measured() -> None:
    data = recorded_run()
    del data["pools49"], data["idle"]
    rows = by_measure(data)
    assert rows[ISSUE_ROWS[8]].value == "not measured in this run" and rows[ISSUE_ROWS[8]].verdict == "–"
    assert rows[ISSUE_ROWS[3]].value == "not measured in this run"
    assert rows[ISSUE_ROWS[0]].verdict == "**FAIL**"


@pytest.mark.parametrize(("orders_per_s", "verdict"), [(26.0, "**FAIL**"), (149.9, "**FAIL**"),
                                                       (150.0, "pass (goal not)"), (310.0, "pass (goal too)")])  # fmt: skip
def test_the_ceiling_is_judged_against_its_must_and_goal(orders_per_s: float, verdict: str) -> None:
    data = recorded_run()
    data["ceiling"]["throughputPerS"] = orders_per_s
    assert by_measure(data)[ISSUE_ROWS[0]].verdict == verdict


def test_one_client_needs_both_its_p50_and_its_p99() -> None:
    data = recorded_run()
    data["ceiling"]["unloaded"]["e2eMs"] = ms(18.0, 65.0)
    assert by_measure(data)[ISSUE_ROWS[1]].verdict == "**FAIL**"
    data["ceiling"]["unloaded"]["e2eMs"] = ms(18.0, 45.0)
    assert by_measure(data)[ISSUE_ROWS[1]].verdict == "pass (goal not)"
    data["ceiling"]["unloaded"]["e2eMs"] = ms(7.5, 19.0)
    assert by_measure(data)[ISSUE_ROWS[1]].verdict == "pass (goal too)"


def test_the_filing_figures_fail_where_the_issue_says_and_the_seed_ratio_passes() -> None:
    rows = by_measure(recorded_run())
    assert rows[ISSUE_ROWS[2]].verdict == "**FAIL**"  # 34.3 ms > 8 ms
    assert rows[ISSUE_ROWS[3]].verdict == "**FAIL**"  # 0.24 cores > 0.08
    assert rows[ISSUE_ROWS[4]].verdict == "**FAIL**"  # 1.66 GB > 1.5 GB
    assert rows[ISSUE_ROWS[5]].verdict == "**FAIL**"  # 21.1 s > 15 s
    assert rows[ISSUE_ROWS[8]].verdict == "**FAIL**"
    assert rows[ISSUE_ROWS[7]].verdict == "pass (goal too)"


def test_idle_rows_are_judged_on_the_defaults_and_show_the_market_still_apart() -> None:
    data = recorded_run()
    data["idle"]["market moving"] = at_rest(9.5, 0.025, 1150.0)
    rows = by_measure(data)
    assert rows[ISSUE_ROWS[3]].verdict == "pass (goal too)"
    assert "market still: 0.160 cores" in rows[ISSUE_ROWS[3]].value
    assert rows[ISSUE_ROWS[4]].verdict == "pass (goal too)"
    assert rows[ISSUE_ROWS[5]].verdict == "pass (goal too)"


def test_49_pools_pass_only_when_start_cpu_and_memory_all_do() -> None:
    data = recorded_run()
    data["pools49"].update(at_rest(24.0, 0.14, 2900.0, pools=49))
    assert by_measure(data)[ISSUE_ROWS[8]].verdict == "pass (goal not)"
    data["pools49"].update(at_rest(24.0, 0.16, 2900.0, pools=49))
    assert by_measure(data)[ISSUE_ROWS[8]].verdict == "**FAIL**"
    assert "a pool actor: 4.0 ms of CPU a second, 60 MB (49 pools)" in by_measure(data)[ISSUE_ROWS[8]].limited_by


def test_the_ingress_ratios() -> None:
    ingress = {"http": {"perS": 520.0}, "ws": {"perS": 260.0}}
    assert ingress_ratios(26.0, ingress) == {"perHttp": 0.05, "pairPerS": 173.3, "perPair": 0.15}
    assert ingress_ratios(0.0, ingress) == {} and ingress_ratios(26.0, None) == {}
    row = by_measure(recorded_run())[ISSUE_ROWS[0]]
    assert "orders/s ÷ trivial HTTP req/s = **0.050**" in row.ratio and "= 0.150" in row.ratio
    assert "client 0.14 cores" in row.value and "client 0.60 cores" in row.ratio


def test_cpu_per_order_does_not_charge_idle_work_to_orders() -> None:
    load = cpu(1.80, 0.14, {"Serve replica (API)": 0.41, "Ray core (GCS, raylet, agents)": 0.10})
    idle = cpu(0.20, 0.0, {"Serve replica (API)": 0.02, "Ray core (GCS, raylet, agents)": 0.15})
    out = cpu_per_order(load, 26.0, idle)
    assert out["engineCpuMsPerOrder"] == pytest.approx(1.60 * 1000 / 26, abs=0.05)
    assert out["engineCpuMsPerOrderGross"] == pytest.approx(1.80 * 1000 / 26, abs=0.05)
    assert out["cpuMsPerOrder"]["Serve replica (API)"] == pytest.approx(0.39 * 1000 / 26, abs=0.01)
    assert out["cpuMsPerOrder"]["Ray core (GCS, raylet, agents)"] == 0.0  # busier at rest: never negative
    assert out["clientCpuMsPerOrder"] == pytest.approx(0.14 * 1000 / 26, abs=0.05)
    assert cpu_per_order(load, 0.0, idle)["engineCpuMsPerOrder"] is None


def test_watchers_are_judged_by_their_own_events_not_the_probes() -> None:
    data = recorded_run()
    # the probes were within budget at 200 (83.5 ms): the held watchers' own events were not
    row = by_measure(data)[ISSUE_ROWS[6]]
    assert row.value.startswith("100 ") and "at 200: p99 1702 ms" in row.value
    assert "the must (2,000) was not tried" in row.limited_by
    assert row.verdict == "**FAIL**"


def test_a_step_after_the_first_over_budget_does_not_count() -> None:
    steps = [step(100, 9.0, 30.0, 30.0), step(200, 80.0, 900.0, 890.0), step(400, 20.0, 60.0, 60.0)]
    assert held_within(steps, 100.0) == (100, steps[1])
    assert held_within(steps[:1], 100.0) == (100, None)
    assert held_within([step(100, 9.0, 30.0, 30.0, errors=5)], 100.0)[0] == 0  # 5% of sockets failed


def test_a_report_without_own_events_is_bounded_by_the_larger_part() -> None:
    old = step(200, 83.5, 1716.8, None)
    assert own_p99(old) == 1716.8
    assert own_p99(step(200, 83.5, 1716.8, 1650.0)) == 1650.0


def test_the_seed_ratio_is_labelled_an_identity_and_ratios_that_can_fail_are_beside_it() -> None:
    data = recorded_run()
    row = by_measure(data)[ISSUE_ROWS[7]]
    assert "shows the limiter works, nothing more" in row.value and "client 0.02 cores" in row.value
    assert "can fail: simulated delays / mean order time = 0.968" in row.ratio
    assert row.limited_by == "rate limit: 1.6667/s; executors / mean order time would allow 3.584/s"
    data["executorBound"] = {"throughputPerS": 3.64, "ratio": 1.004, "simulatedMeanS": 2.7, "settings": {"executors": 10}}
    row = by_measure(data)[ISSUE_ROWS[7]]
    assert "Little's law: an identity" in row.ratio
    assert "no rate limit ÷ executors / simulated delays = 0.983" in row.ratio


def test_the_scorecard_names_the_commit_and_a_dirty_tree() -> None:
    data = recorded_run()
    assert "commit eec46ab, clean tree" in scorecard_lines(data)[0]
    dirty = copy.deepcopy(data)
    dirty["tree"] = {"commit": "eec46ab", "clean": False, "dirty": ["loadtest/idle.py"]}
    assert "NOT a clean tree" in scorecard_lines(dirty)[0]
    assert tree_text(dirty["tree"]).endswith("(not a clean tree): loadtest/idle.py")
    assert len(scorecard_lines(data)) == 4 + len(ISSUE_ROWS) + 1  # title, blank, head, rule; rows; blank


def test_dirty_files_come_from_git_status_porcelain() -> None:
    assert dirty_files("") == []
    assert dirty_files(" M loadtest/idle.py\n?? loadtest/results/x.json\nM  README.md\n") == [
        "loadtest/idle.py", "loadtest/results/x.json", "README.md"]


def test_require_clean_refuses_to_start_on_a_dirty_tree(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(cli, "tree_state", lambda: {"commit": "eec46ab", "clean": False, "dirty": ["a.py"]})
    monkeypatch.setattr(cli, "run", lambda args: pytest.fail("the run started"))
    assert cli.main(["--require-clean", "--quick"]) == 2
    assert "not clean" in capsys.readouterr().err


def test_quick_leaves_pools49_out_unless_asked() -> None:
    parser = cli.build_parser()
    for argv, has_pools in ((["--quick"], False), ([], True), (["--quick", "--phases", "pools49"], True)):
        args = parser.parse_args(argv)
        cli.settle_options(parser, args)
        assert ("pools49" in args.phases) is has_pools


def test_the_start_row_says_what_the_engine_itself_took() -> None:
    from loadtest.benchmark.at_rest import engine_up_s

    assert engine_up_s("starting...\n\nengine up in 17.4s\n  API  http://127.0.0.1:8123\n") == 17.4
    assert engine_up_s("starting...\n") is None
    data = recorded_run()
    data["idle"]["market moving"]["engineUpS"] = 17.4
    row = by_measure(data)[ISSUE_ROWS[5]]
    assert "`dexengine up` says 17.4 s" in row.limited_by and "the other 3.7 s" in row.limited_by


def test_a_busy_machine_is_noted_for_the_phases_at_rest_too() -> None:
    from loadtest.benchmark.figures import notes

    data = recorded_run()
    data["idle"]["market moving"]["cpu"]["otherCores"] = 0.45
    assert any("idle (market moving) phase other processes used 0.45 cores" in n for n in notes(data))


def test_a_report_from_before_the_tree_was_recorded_is_not_taken_for_clean() -> None:
    data = recorded_run()
    del data["tree"]
    assert "the tree's state was not recorded" in scorecard_lines(data)[0]


def test_an_engine_that_did_not_come_up_fails_its_rows_and_the_report_is_still_written(tmp_path: Any) -> None:
    from loadtest.benchmark.figures import notes
    from loadtest.benchmark.markdown import write_report
    from loadtest.benchmark.runner import tabulate

    data = recorded_run()
    error = "the engine exited with 1 before it was healthy; see engine-pools49.log"
    data["pools49"] = {"error": error, "settings": {}, "settleS": 20.0, "measureS": 30.0, "poolsTimes": 7,
                       "poolActor": None}  # fmt: skip
    data["idle"]["market still"] = {"error": error, "settings": {"MARKET__ENABLED": "false"}}
    rows = by_measure(data)
    assert rows[ISSUE_ROWS[8]].verdict == "**FAIL**" and rows[ISSUE_ROWS[8]].limited_by == error
    assert "market still" not in rows[ISSUE_ROWS[3]].value
    data.update(machine={"commit": "eec46ab", "cpu": "x", "cores": 2, "memoryGiB": 23.5, "python": "3.11.7",
                         "ray": "2.60.0", "os": "Linux", "load1": 1.0},
                started="2026-12-01 22:10:01 UTC", command="python -m loadtest.benchmark", elapsedS=300.0,
                memory={}, notes=notes(data))  # fmt: skip
    del data["ceiling"], data["watchers"], data["seed"]  # their sections need a whole run's figures
    tabulate(data)
    text = write_report(data, tmp_path / "report.md", None)
    assert "the engine did not come up: " + error in text


def test_an_engine_that_did_not_come_up_is_told_by_its_last_error() -> None:
    from loadtest.benchmark.at_rest import last_raised

    log = "\n".join([
        "INFO postgres started on 127.0.0.1:30420 in 0.94s",
        "Traceback (most recent call last):",
        '  File "/work/actors/system.py", line 113, in start_actors',
        "ray.exceptions.RayTaskError(PoolTimeout): ray::PoolActor.ready() (pid=6564, ip=192.0.2.2)",
        '  File "/work/storage/db.py", line 65, in open_pool',
        "psycopg_pool.PoolTimeout: pool initialization incomplete after 30.0 sec",
        "",
    ])  # fmt: skip
    assert last_raised(log) == "psycopg_pool.PoolTimeout: pool initialization incomplete after 30.0 sec"
    assert last_raised("INFO all well\n") is None


def test_with_the_chain_on_the_seed_has_no_simulated_time_and_keeps_a_ratio_that_can_fail() -> None:
    data = recorded_run()
    data["seed"].update(ratio=1.0, throughputPerS=1.6667, meanOrderS=0.733, simulatedMeanS=None, executorBoundPerS=13.647)
    row = by_measure(data)[ISSUE_ROWS[7]]
    assert "the chain on: execution is the chain's, mean order time 0.733 s" in row.value
    assert "simulated delays" not in row.ratio
    assert "can fail: executors / mean order time ÷ the rate = 8.19" in row.ratio
    assert row.verdict == "pass (goal too)"


def test_simulated_delays_longer_than_the_order_time_are_not_made_a_ratio() -> None:
    data = recorded_run()
    data["seed"].update(meanOrderS=0.733, simulatedMeanS=2.7)  # a report of a run with the chain on, before it was known
    assert "exceed the order time measured (0.733 s)" in by_measure(data)[ISSUE_ROWS[7]].ratio
