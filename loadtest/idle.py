"""At rest: how long a fresh engine takes to answer ``/health``, and what it costs doing nothing.

    .venv/bin/python -m loadtest.idle                       # the defaults (market moving)
    .venv/bin/python -m loadtest.idle --profile zero        # no market, zero latencies
    .venv/bin/python -m loadtest.idle --set MARKET__TICK_S=1 --measure 60 --json out.json
    .venv/bin/python -m loadtest.idle --pools-times 7       # 49 pools: each of the default 7, 7 times

Starts ``dexengine up`` in a world of its own (``loadtest.engine_process``),
times start → first healthy answer, lets it settle, then measures the CPU
of every process of the stack over a window (by role) and their memory
(PSS, shared pages counted once). Nothing is sent to it meanwhile, so every
CPU second is background work. The report names the commit and whether the
tree was clean.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtest.benchmark.machine import machine
from loadtest.benchmark.processes import memory_by_role, started_meter
from loadtest.engine_process import PROFILES, EngineProcess
from loadtest.market_copies import write_copied_market


def measure_idle(settings: dict[str, str], *, settle_s: float, measure_s: float,
                 log_path: Path | None = None) -> dict[str, Any]:  # fmt: skip
    engine = EngineProcess(settings, name="idle", log_path=log_path)
    try:
        engine.start()
        time.sleep(settle_s)
        meter = started_meter(engine)
        time.sleep(measure_s)
        cpu = meter.stop()
        memory = memory_by_role(engine.processes(), engine.proc.pid if engine.proc else 0)
    finally:
        engine.stop()
    return {"startToHealthyS": round(engine.started_s or 0.0, 1), "cpu": cpu, "memory": memory}


def pool_actor_cost(cpu: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any] | None:
    """What one pool actor costs at rest: CPU ms a second and PSS MB, the mean over the pools."""
    cores, held = cpu["engineByRole"].get("actors: pools"), memory["byRole"].get("actors: pools")
    if cores is None or not held or not held.get("processes"):
        return None
    n = held["processes"]
    return {"pools": n, "cpuMsPerS": round(1000 * cores / n, 2), "MB": round(held["MB"] / n, 1)}


def report_lines(figures: dict[str, Any]) -> list[str]:
    cpu, memory = figures["cpu"], figures["memory"]
    lines = [
        f"commit {figures['machine']['commit']} on {figures['machine']['cores']} cores;"
        f" settings: configs/engine.yaml + {figures['settings'] or 'nothing'}",
        f"start to first healthy answer   {figures['startToHealthyS']:.1f} s",
        f"idle CPU of the stack           {cpu['engineCores']:.3f} cores over {cpu['seconds']:.0f} s"
        f" (machine {cpu['machineCores']:.2f}, this meter {cpu['clientCores']:.3f})",
        f"memory of the stack ({memory['kind']})      {memory['totalMB']:.0f} MB in {memory['processes']} processes",
    ]
    pool = pool_actor_cost(cpu, memory)
    if pool is not None:
        lines.append(f"per pool actor                  {pool['cpuMsPerS']:.1f} ms of CPU a second, "
                     f"{pool['MB']:.1f} MB ({pool['pools']} pools)")  # fmt: skip
    lines.append("by role:")
    by_memory = memory["byRole"]
    for label, cores in sorted(cpu["engineByRole"].items(), key=lambda item: -item[1]):
        held = by_memory.get(label, {})
        lines.append(f"  {label:34s} {cores:6.3f} cores  {held.get('MB', 0):7.1f} MB  ×{held.get('processes', 0)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.idle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an engine setting (DEXENGINE_ without the prefix), e.g. MARKET__ENABLED=false")  # fmt: skip
    parser.add_argument("--settle", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--measure", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--pools-times", type=int, default=1, metavar="N",
                        help="each pool of the default market N times (7: 49 pools)")  # fmt: skip
    args = parser.parse_args(argv)
    settings = dict(PROFILES[args.profile])
    settings.update(dict(item.split("=", 1) for item in args.set))
    if args.pools_times > 1:
        market = write_copied_market(args.pools_times, Path(tempfile.mkdtemp(prefix="dexengine-market-")))
        settings["MARKET__CONFIG"] = str(market)
    figures = measure_idle(settings, settle_s=args.settle, measure_s=args.measure)
    figures.update(profile=args.profile, settings=settings, machine=machine())
    print("\n".join(report_lines(figures)))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
