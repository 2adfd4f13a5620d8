"""The smoke load scenario, as CI runs it: a short Locust run against an engine
started (and stopped) by ``python -m loadtest.run``.

It checks that the run produced Locust's CSVs and HTML report, that nothing
failed except what must (orders too large for the liquidity, 1-bps orders;
the Locust file counts those as successes when they end as they should),
and that the order, stage and WebSocket entries are reported.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _ray_and_servers() -> set[int]:
    """PIDs of the processes of load runs (to check the run left none of its own behind).

    A run's processes name its temp dir (``dxlt-*``) in their command line
    (Ray's, PostgreSQL's ``-D`` and ``cluster_name``, the config file in the
    title Redis gives itself) or have their working directory in it (a
    server's data dir, shown even once deleted).
    """
    pids = set()
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):  # None where access is denied
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        where = " ".join([*(p.info["cmdline"] or []), p.info["cwd"] or ""])
        if "dxlt-" in where:
            pids.add(p.info["pid"])
    return pids


def _left_behind(before: set[int], grace_s: float = 15.0) -> set[int]:
    """The run's processes still alive ``grace_s`` after it: servers signalled at its end take a moment."""
    deadline = time.monotonic() + grace_s
    while (left := _ray_and_servers() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("smoke") / "run"
    before = _ray_and_servers()
    cmd = [
        sys.executable, "-m", "loadtest.run", "smoke", "--users", "4", "--duration", "12s",
        "--stop-timeout", "30", "--out", str(out),
        # more of the orders that must fail, so that a short run surely has some
        "--", "--too-large-pct", "15", "--tight-pct", "10",
    ]  # fmt: skip
    # a guard against a hang only (the runner bounds Locust and the engine itself)
    proc = subprocess.run(cmd, cwd=ROOT, timeout=900, capture_output=True, text=True)
    print(proc.stdout[-4000:])
    print(proc.stderr[-4000:], file=sys.stderr)
    left = _left_behind(before)
    assert not left, f"the run left processes behind: {sorted(left)}"
    return proc.returncode, out


def test_the_run_succeeded_and_wrote_its_reports(smoke_run: tuple[int, Path]) -> None:
    code, out = smoke_run
    assert code == 0, f"loadtest.run exited {code}; see {out}"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "report.html",
                 "summary.json"):  # fmt: skip
        assert (out / name).is_file(), f"{name} missing in {out}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["locustExitCode"] == 0


def test_the_engine_shut_down_cleanly_on_sigterm(smoke_run: tuple[int, Path]) -> None:
    """Exit code 0: ``dexengine up`` ran its own shutdown. Ray's core worker used to put its SIGTERM handler
    over the engine's, and that one aborted the process mid-shutdown (exit -6): Ray's agents were left to
    notice for 15 s, which the load run waited out."""
    _, out = smoke_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engineExitCode"] == 0, summary.get("engineExitCode")


def test_no_failures_other_than_the_orders_meant_to_fail(smoke_run: tuple[int, Path]) -> None:
    _, out = smoke_run
    failures = _rows(out / "locust_failures.csv")
    assert failures == [], failures
    stats = {(r["Type"], r["Name"]): r for r in _rows(out / "locust_stats.csv")}
    assert all(int(r["Failure Count"]) == 0 for r in stats.values()), stats


def test_orders_stages_and_websocket_entries_appear(smoke_run: tuple[int, Path]) -> None:
    _, out = smoke_run
    stats = {(r["Type"], r["Name"]): int(r["Request Count"]) for r in _rows(out / "locust_stats.csv")}
    assert stats.get(("POST", "/api/orders/execute"), 0) > 0
    assert stats.get(("ORDER", "e2e normal -> confirmed"), 0) > 0, stats
    # the orders meant to fail did fail, as they should (reported as successes)
    assert stats.get(("ORDER", "e2e too_large -> failed"), 0) > 0, stats
    for stage in ("pending->routing", "routing->building", "building->submitted", "submitted->final"):
        assert stats.get(("STAGE", stage), 0) > 0, (stage, stats)
    assert stats.get(("WS", "connect"), 0) > 0
    assert stats.get(("WS", "delivery"), 0) > 0
    # the reader ran too
    assert any(kind == "GET" and count > 0 for (kind, _), count in stats.items()), stats
