"""One benchmark run: each phase on an engine of its own, then the report and chart."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.benchmark.at_rest import MOVING, STILL, phase_idle, phase_pools49
from loadtest.benchmark.ceiling import phase_ceiling
from loadtest.benchmark.chart import chart
from loadtest.benchmark.delivery import phase_ws
from loadtest.benchmark.figures import limits, notes, summary_rows
from loadtest.benchmark.machine import machine
from loadtest.benchmark.markdown import write_report
from loadtest.benchmark.phase import PACED, Phase, log
from loadtest.benchmark.scorecard import scorecard_lines
from loadtest.benchmark.seed import phase_seed
from loadtest.benchmark.stats import rounded
from loadtest.benchmark.watchers import phase_watchers
from loadtest.engine_process import PROFILES


def started(data: dict[str, Any], ph: Phase) -> None:
    data["starts"][ph.name] = round(ph.engine.started_s or 0.0, 1)


async def run_at_rest(args: argparse.Namespace, data: dict[str, Any], logs: Path) -> None:
    """The phases at rest: each engine of its own, nothing sent to it."""
    if "idle" in args.phases:
        data["idle"] = await phase_idle(args.idle_settle, args.idle_measure, logs)
        for label in (MOVING, STILL):
            if "memory" in data["idle"][label]:
                data["memory"][f"idle, {label}"] = {"idle": data["idle"][label]["memory"]}
        data["starts"]["idle, market still"] = data["idle"][STILL].get("startToHealthyS")
    if "pools49" in args.phases:
        data["pools49"] = await phase_pools49(args.idle_settle, args.idle_measure, logs)
        if "memory" in data["pools49"]:
            data["memory"]["49 pools"] = {"idle": data["pools49"]["memory"]}


async def run_phases(args: argparse.Namespace, data: dict[str, Any], logs: Path, prof_dir: Path) -> None:
    phases = args.phases
    await run_at_rest(args, data, logs)
    if "seed" in phases:
        with Phase("seed", PROFILES["seed"], logs) as ph:
            started(data, ph)
            log(f"seed: {args.seed_duration:.0f} s with a backlog of {args.backlog}")
            data["seed"] = await phase_seed(ph, args.seed_duration, args.backlog)
            data["memory"]["seed (market on)"] = ph.memory
        log(f"seed: {data['seed']['throughputPerS']}/s, ratio {data['seed']['ratio']}")
    if args.executor_bound:
        with Phase("executor-bound", {"DISPATCH__RATE_LIMIT_PER_MINUTE": "0"}, logs) as ph:
            started(data, ph)
            data["executorBound"] = await phase_seed(ph, args.executor_bound, args.backlog)
        log(f"executor-bound: ratio {data['executorBound']['ratio']}")
    if "ceiling" in phases:
        with Phase("ceiling", PROFILES["zero"], logs) as ph:
            started(data, ph)
            data["ceiling"] = await phase_ceiling(ph, args.ceiling_duration, args.concurrency, prof_dir,
                                                  not args.no_profile, args.ingress_duration)  # fmt: skip
            data["memory"]["zero latency"] = ph.memory
        log(f"ceiling: {data['ceiling']['throughputPerS']} orders/s; ingress {data['ceiling']['perIngress']}")
    if "ws" in phases or "watchers" in phases:
        with Phase("paced", PACED, logs) as ph:
            started(data, ph)
            if "ws" in phases:
                log(f"ws: {args.ws_duration:.0f} s, an order every {args.ws_interval} s")
                data["ws"] = await phase_ws(ph, args.ws_duration, args.ws_interval)
                delivery = data["ws"]["deliveryMs"]
                log(f"ws: p50 {rounded(delivery['p50'])} ms, p99 {rounded(delivery['p99'])} ms")
            if "watchers" in phases:
                data["watchers"] = await phase_watchers(ph, args.watchers)
            data["memory"]["paced (ws, watchers)"] = ph.memory


def tabulate(data: dict[str, Any]) -> None:
    """What limited each figure, then the table of figures."""
    data.update(limits(data))
    data["summary"] = summary_rows(data)


def write_outputs(data: dict[str, Any], base: Path) -> tuple[str, Path | None]:
    """The chart and the Markdown report beside ``base``; the report's text and the chart's path."""
    png = chart(data, base.with_suffix(".png"))
    return write_report(data, base.with_suffix(".md"), png), png


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out = args.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / f"benchmark-{stamp}"
    data: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m loadtest.benchmark " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "tree": args.tree,
        "quick": args.quick,
        "phases": sorted(args.phases),
        "memory": {},
        "starts": {},
        "notes": [],
    }
    began = time.time()
    # SIGTERM cancels the run: every engine is still stopped on the way out
    main_task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    await run_phases(args, data, out / f"benchmark-{stamp}-logs", out / f"benchmark-{stamp}-profiles")
    data["elapsedS"] = time.time() - began
    data["notes"] += notes(data)
    tabulate(data)
    base.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    text, png = write_outputs(data, base)
    print("\n" + text)
    print(f"\nreport: {base.with_suffix('.md')}" + (f"\nchart:  {png}" if png else ""))
    print("\n" + "\n".join(scorecard_lines(data)))
    return data


def rewrite(json_path: Path) -> None:
    """Write the report and chart again from a run's JSON (after a change to the report's code)."""
    data = json.loads(json_path.read_text())
    data["notes"] = [n for n in data.get("notes", []) if n not in notes(data)] + notes(data)
    tabulate(data)
    write_outputs(data, json_path)
